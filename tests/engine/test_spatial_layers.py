"""Convolution, deconvolution, pooling and padding layers, against onnx's ReferenceEvaluator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import engine as trt
from tests.support import CollectingLogger, run_network

RNG = np.random.default_rng(7)


def onnx_op(op: str, inputs: list[np.ndarray | None], opset: int = 21, *,
            runtime: str = "reference", **attrs: Any) -> np.ndarray:
    """The output of ONNX ``op`` with ``attrs`` on ``inputs`` (None: an omitted input), from
    onnx's ReferenceEvaluator or (``runtime="onnxruntime"``, for what the reference lacks,
    such as grouped ConvTranspose) from onnxruntime."""
    names = ["" if a is None else f"in{i}" for i, a in enumerate(inputs)]
    node = helper.make_node(op, names, ["out"], **attrs)
    graph_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
        for n, a in zip(names, inputs) if a is not None
    ]
    out = helper.make_tensor_value_info(
        "out", helper.np_dtype_to_tensor_dtype(inputs[0].dtype), None)
    model = helper.make_model(helper.make_graph([node], "g", graph_inputs, [out]),
                              opset_imports=[helper.make_opsetid("", opset)])
    feeds = {n: a for n, a in zip(names, inputs) if a is not None}
    if runtime == "onnxruntime":
        import onnxruntime

        session = onnxruntime.InferenceSession(model.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        return session.run(None, feeds)[0]
    return ReferenceEvaluator(model).run(None, feeds)[0]


def randn(*shape: int, dtype: Any = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


# -- convolution ------------------------------------------------------------------------------
CONV_CASES = [
    # (input shape, maps, kernel, stride, pre, post, dilation, groups)
    ((2, 3, 9, 8), 4, (3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1),
    ((1, 4, 10, 9), 6, (3, 2), (2, 3), (1, 0), (2, 1), (1, 1), 2),
    ((1, 4, 11, 11), 4, (3, 3), (2, 2), (1, 1), (1, 1), (2, 3), 4),  # depthwise, dilated
    ((2, 2, 5, 6, 7), 3, (2, 3, 2), (1, 2, 2), (0, 1, 1), (1, 0, 1), (1, 1, 2), 1),  # 3D
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}-k{c[2]}-g{c[7]}")
def test_convolution_matches_onnx_conv(case):
    shape, maps, kernel, stride, pre, post, dilation, groups = case
    x = randn(*shape)
    w = randn(maps, shape[1] // groups, *kernel)
    b = randn(maps)

    def define(net, t):
        conv = net.add_convolution_nd(t["x"], maps, kernel, trt.Weights(w), trt.Weights(b))
        conv.stride_nd = stride
        conv.pre_padding = pre
        conv.post_padding = post
        conv.dilation_nd = dilation
        conv.num_groups = groups
        return [conv.get_output(0)]

    (y,) = run_network(define, {"x": x})
    want = onnx_op("Conv", [x, w, b], strides=stride, pads=list(pre) + list(post),
                   dilations=dilation, group=groups)
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode,auto_pad", [(trt.PaddingMode.SAME_UPPER, "SAME_UPPER"),
                                           (trt.PaddingMode.SAME_LOWER, "SAME_LOWER")])
def test_convolution_same_padding_matches_onnx_auto_pad(mode, auto_pad):
    x = randn(1, 2, 7, 8)
    w = randn(3, 2, 4, 3)

    def define(net, t):
        conv = net.add_convolution_nd(t["x"], 3, (4, 3), w)
        conv.stride_nd = (2, 3)
        conv.padding_mode = mode
        return [conv.get_output(0)]

    (y,) = run_network(define, {"x": x})
    want = onnx_op("Conv", [x, w], strides=(2, 3), auto_pad=auto_pad)
    assert y.shape == (1, 3, 4, 3)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


def test_convolution_round_up_adds_the_partial_last_window():
    x = randn(1, 1, 6, 6)
    w = randn(1, 1, 2, 2)

    def define(net, t):
        conv = net.add_convolution_nd(t["x"], 1, (2, 2), w)
        conv.stride_nd = (3, 3)
        conv.padding_mode = trt.PaddingMode.EXPLICIT_ROUND_UP
        return [conv.get_output(0)]

    (y,) = run_network(define, {"x": x})
    # ceil((6 - 2) / 3) + 1 = 3 windows per axis; the last starts at 6, wholly past the input.
    padded = np.pad(x, [(0, 0), (0, 0), (0, 2), (0, 2)])
    want = onnx_op("Conv", [padded, w], strides=(3, 3))
    assert y.shape == (1, 1, 3, 3)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_convolution_padding_nd_sets_pre_and_post():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (1, 1, 5, 5))
    conv = net.add_convolution_nd(x, 2, (3, 3), np.ones((2, 1, 3, 3), np.float32))
    conv.padding_nd = (1, 2)
    assert tuple(conv.pre_padding) == (1, 2) and tuple(conv.post_padding) == (1, 2)
    assert tuple(conv.padding_nd) == (1, 2)
    assert tuple(conv.get_output(0).shape) == (1, 2, 5, 7)
    assert conv.padding_mode == trt.PaddingMode.EXPLICIT_ROUND_DOWN
    assert tuple(conv.stride_nd) == (1, 1) and tuple(conv.dilation_nd) == (1, 1)
    assert conv.num_groups == 1


def test_convolution_kernel_and_bias_as_tensors():
    x = randn(1, 2, 6, 6)
    w = randn(3, 2, 3, 3)
    b = randn(3)

    def define(net, t):
        conv = net.add_convolution_nd(t["x"], 3, (3, 3), trt.Weights())
        conv.set_input(1, t["w"])
        conv.set_input(2, t["b"])
        return [conv.get_output(0)]

    (y,) = run_network(define, {"x": x, "w": w, "b": b})
    np.testing.assert_allclose(y, onnx_op("Conv", [x, w, b]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float16, trt.nptype(trt.bfloat16)])
def test_convolution_in_low_precision(dtype):
    x = randn(1, 3, 6, 6)
    w = randn(2, 3, 3, 3)

    def define(net, t):
        return [net.add_convolution_nd(t["x"], 2, (3, 3), w).get_output(0)]

    (y,) = run_network(define, {"x": x.astype(dtype)})
    assert y.dtype == dtype
    want = onnx_op("Conv", [x.astype(dtype).astype(np.float32), w])
    np.testing.assert_allclose(y.astype(np.float32), want, rtol=2e-2, atol=5e-2)


def test_convolution_with_dynamic_batch_and_size():
    x = randn(3, 3, 9, 7)
    w = randn(5, 3, 3, 3)

    def define(net, t):
        conv = net.add_convolution_nd(t["x"], 5, (3, 3), w)
        conv.stride_nd = (2, 2)
        assert tuple(conv.get_output(0).shape) == (-1, 5, -1, -1)
        return [conv.get_output(0)]

    (y,) = run_network(define, {"x": x}, dynamic={"x": (-1, 3, -1, -1)})
    np.testing.assert_allclose(y, onnx_op("Conv", [x, w], strides=(2, 2)), rtol=1e-4, atol=1e-4)


def test_convolution_refusals_name_the_problem():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (1, 3, 8, 8))
    with pytest.raises(trt.NetworkError, match="input has 3 channels, kernel expects 4"):
        net.add_convolution_nd(x, 2, (3, 3), np.ones((2, 4, 3, 3), np.float32))
    with pytest.raises(trt.NetworkError, match="not divisible by num_groups"):
        conv = net.add_convolution_nd(x, 3, (1, 1), np.ones((3, 3, 1, 1), np.float32))
        conv.num_groups = 2
        conv.get_output(0).shape  # noqa: B018 - re-validates
    with pytest.raises(trt.NetworkError, match="bias weights hold 2 values, expected 4"):
        net.add_convolution_nd(x, 4, (3, 3), np.ones((4, 3, 3, 3), np.float32),
                               np.ones(2, np.float32))
    with pytest.raises(trt.NetworkError, match="2 or 3 dimensions"):
        net.add_convolution_nd(x, 1, (3,), np.ones((1, 3, 3), np.float32))
    with pytest.raises(trt.NetworkError, match="output would be empty"):
        # added (padding set afterwards could still fix it); its output's shape fails
        conv = net.add_convolution_nd(x, 1, (9, 9), np.ones((1, 3, 9, 9), np.float32))
        conv.get_output(0).shape  # noqa: B018
    with pytest.raises(trt.NetworkError, match=r"Convolution.*stride_nd"):
        conv = net.add_convolution_nd(x, 1, (3, 3), np.ones((1, 3, 3, 3), np.float32))
        conv.stride_nd = (0, 1)
        conv.get_output(0).shape  # noqa: B018


def test_a_kernel_larger_than_the_input_is_valid_once_padding_is_set():
    """TensorRT's order: add the convolution, then set its padding. A 3x3 kernel on a 2x2
    input is empty until padding (1, 1) makes it 2x2 again; one left empty fails the build with
    the reason."""
    x = randn(1, 4, 2, 2)
    w = randn(3, 4, 3, 3)

    def define(net, t):
        conv = net.add_convolution_nd(t["x"], 3, (3, 3), w)
        conv.padding_nd = (1, 1)
        return [conv.get_output(0)]

    (y,) = run_network(define, {"x": x})
    np.testing.assert_allclose(y, onnx_op("Conv", [x, w], pads=(1, 1, 1, 1)), rtol=1e-4,
                               atol=1e-4)
    errors = _build_errors(lambda net, x: net.add_convolution_nd(x, 3, (7, 7),
                                                                 randn(3, 4, 7, 7)))
    assert any("output would be empty" in e for e in errors), errors


def _build_errors(define) -> list[str]:
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    x = net.add_input("x", trt.float32, (1, 4, 6, 6))
    net.mark_output(define(net, x).get_output(0))
    assert builder.build_serialized_network(net, builder.create_builder_config()) is None
    return logger.errors()


def test_convolution_without_a_kernel_fails_to_build():
    errors = _build_errors(lambda net, x: net.add_convolution_nd(x, 2, (3, 3), trt.Weights()))
    assert any("kernel weights are empty and input 1" in e for e in errors), errors


def test_convolution_kernel_for_other_groups_fails_to_build_unless_groups_are_set():
    w = np.ones((4, 2, 3, 3), np.float32)  # a kernel for num_groups = 2
    errors = _build_errors(lambda net, x: net.add_convolution_nd(x, 4, (3, 3), w))
    assert any("input has 4 channels, kernel expects 2" in e for e in errors), errors

    def grouped(net, x):
        conv = net.add_convolution_nd(x, 4, (3, 3), w)
        conv.num_groups = 2
        return conv

    x = randn(1, 4, 6, 6)
    (y,) = run_network(lambda net, t: [grouped(net, t["x"]).get_output(0)], {"x": x})
    np.testing.assert_allclose(y, onnx_op("Conv", [x, w], group=2), rtol=1e-4, atol=1e-4)


# -- deconvolution ----------------------------------------------------------------------------
DECONV_CASES = [
    # (input shape, maps, kernel, stride, pre, post, dilation, groups)
    ((2, 3, 4, 5), 2, (3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1),
    ((1, 4, 4, 3), 6, (3, 2), (2, 3), (1, 0), (0, 1), (1, 1), 2),
    ((1, 2, 3, 4), 4, (2, 3), (2, 2), (0, 1), (1, 1), (2, 1), 2),
    ((1, 2, 3, 2, 3), 2, (2, 2, 3), (2, 1, 2), (0, 0, 1), (1, 0, 0), (1, 1, 1), 1),  # 3D
]


@pytest.mark.parametrize("case", DECONV_CASES, ids=lambda c: f"{c[0]}-k{c[2]}-g{c[7]}")
def test_deconvolution_matches_onnx_conv_transpose(case):
    shape, maps, kernel, stride, pre, post, dilation, groups = case
    x = randn(*shape)
    w = randn(shape[1], maps // groups, *kernel)
    b = randn(maps)

    def define(net, t):
        deconv = net.add_deconvolution_nd(t["x"], maps, kernel, w, b)
        deconv.stride_nd = stride
        deconv.pre_padding = pre
        deconv.post_padding = post
        deconv.dilation_nd = dilation
        deconv.num_groups = groups
        return [deconv.get_output(0)]

    (y,) = run_network(define, {"x": x})
    want = onnx_op("ConvTranspose", [x, w, b], strides=stride, pads=list(pre) + list(post),
                   dilations=dilation, group=groups, runtime="onnxruntime")
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", [trt.PaddingMode.SAME_UPPER, trt.PaddingMode.SAME_LOWER])
def test_deconvolution_same_padding_follows_tensorrts_formula(mode):
    x = randn(1, 2, 4, 5)
    w = randn(2, 3, 4, 3)

    def define(net, t):
        deconv = net.add_deconvolution_nd(t["x"], 3, (4, 3), w)
        deconv.stride_nd = (2, 2)
        deconv.padding_mode = mode
        return [deconv.get_output(0)]

    (y,) = run_network(define, {"x": x})
    # P = max(DK - S, 0) = (2, 1); O = (I - 1) * S + DK - P = (8, 10).
    pre = (1, 0) if mode == trt.PaddingMode.SAME_UPPER else (1, 1)
    post = (1, 1) if mode == trt.PaddingMode.SAME_UPPER else (1, 0)
    want = onnx_op("ConvTranspose", [x, w], strides=(2, 2), pads=list(pre) + list(post))
    assert y.shape == (1, 3, 8, 10)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


def test_deconvolution_fp16_with_dynamic_batch():
    x = randn(2, 2, 3, 3)
    w = randn(2, 4, 2, 2)

    def define(net, t):
        deconv = net.add_deconvolution_nd(t["x"], 4, (2, 2), w)
        deconv.stride_nd = (2, 2)
        return [deconv.get_output(0)]

    (y,) = run_network(define, {"x": x.astype(np.float16)}, dynamic={"x": (-1, 2, 3, 3)})
    assert y.dtype == np.float16 and y.shape == (2, 4, 6, 6)
    want = onnx_op("ConvTranspose", [x.astype(np.float16).astype(np.float32), w], strides=(2, 2))
    np.testing.assert_allclose(y.astype(np.float32), want, rtol=1e-2, atol=1e-2)


def test_deconvolution_refuses_a_kernel_of_the_wrong_layout():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (1, 3, 4, 4))
    with pytest.raises(trt.NetworkError, match=r"Deconvolution.*input has 3 channels, kernel "
                                               r"expects 2"):
        net.add_deconvolution_nd(x, 4, (2, 2), np.ones((2, 4, 2, 2), np.float32))


# -- pooling ----------------------------------------------------------------------------------
POOL_CASES = [
    # (input shape, window, stride, pre, post)
    ((2, 3, 8, 9), (2, 2), (2, 2), (0, 0), (0, 0)),
    ((1, 2, 7, 7), (3, 3), (2, 1), (1, 1), (1, 0)),
    ((1, 2, 5, 6, 7), (2, 3, 2), (1, 2, 2), (1, 0, 1), (0, 1, 1)),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0]}-w{c[1]}")
@pytest.mark.parametrize("excludes", [True, False])
def test_average_pooling_matches_onnx(case, excludes):
    shape, window, stride, pre, post = case
    x = randn(*shape)

    def define(net, t):
        pool = net.add_pooling_nd(t["x"], trt.PoolingType.AVERAGE, window)
        pool.stride_nd = stride
        pool.pre_padding = pre
        pool.post_padding = post
        pool.average_count_excludes_padding = excludes
        return [pool.get_output(0)]

    (y,) = run_network(define, {"x": x})
    want = onnx_op("AveragePool", [x], kernel_shape=window, strides=stride,
                   pads=list(pre) + list(post), count_include_pad=int(not excludes))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0]}-w{c[1]}")
def test_max_pooling_matches_onnx(case):
    shape, window, stride, pre, post = case
    x = randn(*shape)

    def define(net, t):
        pool = net.add_pooling_nd(t["x"], trt.PoolingType.MAX, window)
        pool.stride_nd = stride
        pool.pre_padding = pre
        pool.post_padding = post
        return [pool.get_output(0)]

    (y,) = run_network(define, {"x": x})
    want = onnx_op("MaxPool", [x], kernel_shape=window, strides=stride,
                   pads=list(pre) + list(post))
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("kind,onnx_name", [(trt.PoolingType.MAX, "MaxPool"),
                                            (trt.PoolingType.AVERAGE, "AveragePool")])
def test_pooling_round_up_matches_onnx_ceil_mode(kind, onnx_name):
    x = randn(1, 2, 7, 8)

    def define(net, t):
        pool = net.add_pooling_nd(t["x"], kind, (3, 3))
        pool.stride_nd = (2, 2)
        pool.padding_mode = trt.PaddingMode.EXPLICIT_ROUND_UP
        return [pool.get_output(0)]

    (y,) = run_network(define, {"x": x})
    want = onnx_op(onnx_name, [x], kernel_shape=(3, 3), strides=(2, 2), ceil_mode=1)
    assert y.shape == want.shape == (1, 2, 3, 4)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode,auto_pad", [(trt.PaddingMode.SAME_UPPER, "SAME_UPPER"),
                                           (trt.PaddingMode.SAME_LOWER, "SAME_LOWER")])
def test_max_pooling_same_padding_matches_onnx(mode, auto_pad):
    x = randn(1, 2, 7, 6)

    def define(net, t):
        pool = net.add_pooling_nd(t["x"], trt.PoolingType.MAX, (2, 3))
        pool.stride_nd = (2, 2)
        pool.padding_mode = mode
        return [pool.get_output(0)]

    (y,) = run_network(define, {"x": x})
    # onnx's reference gets SAME_LOWER pooling sizes wrong; onnxruntime does not.
    want = onnx_op("MaxPool", [x], kernel_shape=(2, 3), strides=(2, 2), auto_pad=auto_pad,
                   runtime="onnxruntime")
    np.testing.assert_array_equal(y, want)


def test_max_average_blend_mixes_both():
    x = randn(2, 3, 6, 6)

    def define(net, t):
        pool = net.add_pooling_nd(t["x"], trt.PoolingType.MAX_AVERAGE_BLEND, (2, 2))
        pool.stride_nd = (2, 2)
        pool.blend_factor = 0.25
        assert pool.average_count_excludes_padding is True
        return [pool.get_output(0)]

    (y,) = run_network(define, {"x": x})
    blocks = x.reshape(2, 3, 3, 2, 3, 2)
    want = 0.75 * blocks.max(axis=(3, 5)) + 0.25 * blocks.mean(axis=(3, 5))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_pooling_fp16_with_dynamic_shape():
    x = randn(3, 2, 6, 8).astype(np.float16)

    def define(net, t):
        pool = net.add_pooling_nd(t["x"], trt.PoolingType.MAX, (2, 2))
        pool.stride_nd = (2, 2)
        return [pool.get_output(0)]

    (y,) = run_network(define, {"x": x}, dynamic={"x": (-1, 2, -1, -1)})
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, x.reshape(3, 2, 3, 2, 4, 2).max(axis=(3, 5)))


def test_pooling_refusals():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (1, 1, 4, 4))
    with pytest.raises(trt.NetworkError, match="smaller than the window"):
        pool = net.add_pooling_nd(x, trt.PoolingType.MAX, (2, 2))
        pool.padding_nd = (2, 2)
        pool.get_output(0).shape  # noqa: B018
    with pytest.raises(trt.NetworkError, match="blend_factor"):
        pool = net.add_pooling_nd(x, trt.PoolingType.MAX_AVERAGE_BLEND, (2, 2))
        pool.blend_factor = 1.5
        pool.get_output(0).shape  # noqa: B018
    with pytest.raises(trt.NetworkError, match="output would be empty"):
        pool = net.add_pooling_nd(x, trt.PoolingType.AVERAGE, (5, 5))
        pool.get_output(0).shape  # noqa: B018


def test_pooling_window_larger_than_the_input_is_accepted_once_padded():
    # Validated when read, not on add: the padding is set after add_pooling_nd.
    x = randn(1, 2, 4, 4)

    def define(net, t):
        pool = net.add_pooling_nd(t["x"], trt.PoolingType.AVERAGE, (5, 5))
        pool.post_padding = (1, 1)
        pool.average_count_excludes_padding = True
        return [pool.get_output(0)]

    (y,) = run_network(define, {"x": x})
    assert y.shape == (1, 2, 1, 1)
    np.testing.assert_allclose(y[..., 0, 0], x.mean(axis=(2, 3)), rtol=1e-6)


# -- padding ----------------------------------------------------------------------------------
def test_padding_pads_with_zeros_and_crops_with_negatives():
    x = randn(2, 3, 5, 6)

    def define(net, t):
        return [net.add_padding_nd(t["x"], (1, -2), (2, 1)).get_output(0)]

    (y,) = run_network(define, {"x": x})
    cropped = x[:, :, :, 2:]
    want = onnx_op("Pad", [cropped, np.array([0, 0, 1, 0, 0, 0, 2, 1], np.int64)])
    assert y.shape == (2, 3, 8, 5)
    np.testing.assert_array_equal(y, want)


def test_padding_fp16_dynamic_and_attributes():
    x = randn(2, 1, 3, 3).astype(np.float16)

    def define(net, t):
        layer = net.add_padding_nd(t["x"], (0, 0), (0, 0))
        layer.pre_padding_nd = (1, 1)
        layer.post_padding_nd = (0, 2)
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x}, dynamic={"x": (-1, 1, 3, 3)})
    np.testing.assert_array_equal(y, np.pad(x, [(0, 0), (0, 0), (1, 0), (1, 2)]))


def test_padding_refusals():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (1, 1, 4, 4))
    with pytest.raises(trt.NetworkError, match="same number of dimensions"):
        net.add_padding_nd(x, (1, 1), (1,))
    with pytest.raises(trt.NetworkError, match="crops away"):
        net.add_padding_nd(x, (-2, 0), (-2, 0))


def test_deconvolution_kernel_and_bias_as_tensors():
    x = randn(1, 2, 3, 3)
    w = randn(2, 3, 2, 2)
    b = randn(3)

    def define(net, t):
        deconv = net.add_deconvolution_nd(t["x"], 3, (2, 2), trt.Weights())
        deconv.set_input(1, t["w"])
        deconv.set_input(2, t["b"])
        deconv.stride_nd = (2, 2)
        return [deconv.get_output(0)]

    (y,) = run_network(define, {"x": x, "w": w, "b": b})
    want = onnx_op("ConvTranspose", [x, w, b], strides=(2, 2))
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
