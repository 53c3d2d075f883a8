"""Fill (every FillOperation) and Quantize/Dequantize (INT8, FP8, INT4; per tensor, per
channel, per block) against NumPy and onnx's QuantizeLinear/DequantizeLinear."""

import ml_dtypes
import numpy as np
import pytest

import engine as trt
from tests.engine.test_shape_layers import constant, new_network, onnx_reference
from tests.support import run_network


def test_linspace_with_attributes():
    def define(net, t):
        layer = net.add_fill((5,), trt.FillOperation.LINSPACE, trt.float32)
        layer.alpha, layer.beta = 1000.0, -2.5
        return [layer.get_output(0), net.add_identity(t["x"]).get_output(0)]

    y, _ = run_network(define, {"x": np.zeros(1, np.float32)})
    np.testing.assert_array_equal(y, 1000.0 - 2.5 * np.arange(5, dtype=np.float32))


@pytest.mark.parametrize("dtype", [trt.float32, trt.int32, trt.int64])
def test_linspace_with_tensor_inputs_follows_alpha_plus_beta_dot_index(dtype):
    shape = np.array([3, 4, 5], np.int64)
    beta = np.array([100, 10, 1], trt.nptype(dtype))

    def define(net, t):
        layer = net.add_fill((1,), trt.FillOperation.LINSPACE, dtype)
        layer.set_input(0, constant(net, shape))
        layer.set_input(1, t["alpha"])
        layer.set_input(2, t["beta"])
        assert tuple(layer.get_output(0).shape) == (3, 4, 5)
        return [layer.get_output(0)]

    alpha = np.array(7, trt.nptype(dtype))
    (y,) = run_network(define, {"alpha": alpha, "beta": beta})
    i, j, k = np.indices((3, 4, 5))
    assert y.dtype == trt.nptype(dtype)
    np.testing.assert_array_equal(y, (7 + 100 * i + 10 * j + k).astype(trt.nptype(dtype)))


def test_linspace_length_from_a_dynamic_shape_is_an_arange():
    x = np.zeros((6, 2), np.float32)

    def define(net, t):
        rows = net.add_slice(net.add_shape(t["x"]).get_output(0), (0,), (1,), (1,))
        layer = net.add_fill((0,), trt.FillOperation.LINSPACE, trt.int64)
        layer.set_input(0, rows.get_output(0))
        layer.set_input(1, constant(net, np.array(0, np.int64)))
        layer.set_input(2, constant(net, np.array(1, np.int64)))
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x}, dynamic={"x": (-1, 2)})
    np.testing.assert_array_equal(y, np.arange(6))


@pytest.mark.parametrize("op", [trt.FillOperation.RANDOM_UNIFORM, trt.FillOperation.RANDOM_NORMAL])
@pytest.mark.parametrize("dtype", [trt.float32, trt.float16])
def test_random_fills_are_deterministic_per_seed_and_have_the_right_distribution(op, dtype):
    def define_with(seed):
        def define(net, t):
            layer = net.add_fill((200, 50), op, dtype)
            layer.alpha, layer.beta = 2.0, 3.0
            layer.seed = seed
            return [layer.get_output(0), net.add_identity(t["x"]).get_output(0)]
        return define

    feeds = {"x": np.zeros(1, np.float32)}
    first, _ = run_network(define_with(0), feeds)
    again, _ = run_network(define_with(0), feeds)
    other, _ = run_network(define_with(1), feeds)
    assert first.dtype == trt.nptype(dtype) and first.shape == (200, 50)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    values = first.astype(np.float64)
    if op == trt.FillOperation.RANDOM_UNIFORM:
        assert values.min() >= 2.0 and values.max() <= 3.0 and abs(values.mean() - 2.5) < 0.02
    else:
        assert abs(values.mean() - 2.0) < 0.1 and abs(values.std() - 3.0) < 0.1


def test_fill_refusals():
    net = new_network()
    with pytest.raises(trt.NetworkError, match=r"FILL\): RANDOM_UNIFORM cannot produce INT32"):
        _ = net.add_fill((2,), trt.FillOperation.RANDOM_UNIFORM, trt.int32).get_output(0).shape
    with pytest.raises(trt.NetworkError, match="LINSPACE of rank 2 needs a beta"):
        _ = net.add_fill((2, 3), trt.FillOperation.LINSPACE).get_output(0).shape
    with pytest.raises(trt.NetworkError, match="must not be negative"):
        _ = net.add_fill((-1,), trt.FillOperation.LINSPACE).get_output(0).shape


def _qdq(quantized, scale, axis=-1, block_shape=None, zero_point=None):
    def define(net, t):
        q = net.add_quantize(t["x"], constant(net, scale), quantized)
        dq = net.add_dequantize(q.get_output(0), constant(net, scale), trt.float32)
        for layer in (q, dq):
            layer.axis = axis
            if block_shape is not None:
                layer.set_block_shape(block_shape)
            if zero_point is not None:
                layer.set_input(2, constant(net, zero_point))
        return [q.get_output(0), dq.get_output(0)]
    return define


def test_int8_per_tensor_rounds_half_to_even_and_saturates_like_onnx():
    x = np.array([[-300.0, -2.5, -0.5, 0.5, 1.5, 2.5], [3.49, 126.6, 127.5, 200, 0, -128.4]],
                 np.float32)
    scale = np.array(1.0, np.float32)
    q, dq = run_network(_qdq(trt.int8, scale), {"x": x})
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q, onnx_reference("QuantizeLinear", [x, scale,
                                                                       np.array(0, np.int8)]))
    np.testing.assert_array_equal(q[0], [-128, -2, 0, 0, 2, 2])
    np.testing.assert_array_equal(dq, onnx_reference("DequantizeLinear", [q, scale]))


def test_int8_per_channel_along_an_axis_matches_onnx():
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32) * 4
    scale = np.array([0.02, 0.05, 0.1, 0.2], np.float32)
    zero = np.zeros(4, np.int8)
    q, dq = run_network(_qdq(trt.int8, scale, axis=1, zero_point=zero), {"x": x})
    np.testing.assert_array_equal(
        q, onnx_reference("QuantizeLinear", [x, scale, zero], axis=1))
    np.testing.assert_allclose(
        dq, onnx_reference("DequantizeLinear", [q, scale, zero], axis=1), rtol=1e-6)


def test_fp8_saturates_and_rounds_like_onnx():
    x = np.array([-1000.0, -3.3, 0.013, 1.0625, 17.0, 500.0], np.float32)
    scale = np.array(0.5, np.float32)
    q, dq = run_network(_qdq(trt.fp8, scale), {"x": x})
    assert q.dtype == ml_dtypes.float8_e4m3fn
    expected = onnx_reference("QuantizeLinear",
                              [x, scale, np.array(0, ml_dtypes.float8_e4m3fn)], saturate=1)
    np.testing.assert_array_equal(q.astype(np.float32), expected.astype(np.float32))
    assert q.astype(np.float32).min() == -448.0 and q.astype(np.float32).max() == 448.0
    np.testing.assert_array_equal(dq, q.astype(np.float32) * 0.5)


def test_int4_block_quantization_repeats_each_scale_over_its_block():
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32) * 3
    scale = np.array([[0.5, 1.0], [0.25, 2.0], [1.0, 1.0], [0.1, 0.4]], np.float32)
    define = _qdq(trt.int4, scale, block_shape=(1, 4))
    # INT4 codes are read back through the dequantized output (the pointer path of
    # tests.support cannot hold packed INT4 outputs).
    (dq,) = run_network(lambda net, t: define(net, t)[1:], {"x": x})
    full_scale = np.repeat(scale, 4, axis=1)
    q = np.rint(dq / full_scale)
    expected = np.clip(np.rint(x / full_scale), -8, 7)
    np.testing.assert_array_equal(q.astype(np.float32), expected)
    np.testing.assert_allclose(dq, expected * full_scale, rtol=1e-6)
    reference = onnx_reference("QuantizeLinear", [x, scale, np.zeros_like(scale, np.int8)
                                                  .astype(ml_dtypes.int4)], axis=1, block_size=4)
    np.testing.assert_array_equal(q.astype(np.float32), reference.astype(np.float32))


@pytest.mark.parametrize("real", [trt.float16, trt.bfloat16])
def test_half_and_bf16_inputs_and_outputs(real):
    x = (np.arange(-6, 6, dtype=np.float32) * 0.75).astype(trt.nptype(real))
    scale = np.array(0.5, np.float32)

    def define(net, t):
        q = net.add_quantize(t["x"], constant(net, scale))
        return [net.add_dequantize(q.get_output(0), constant(net, scale), real).get_output(0)]

    (y,) = run_network(define, {"x": x})
    assert y.dtype == trt.nptype(real)
    expected = np.rint(x.astype(np.float32) / 0.5) * 0.5
    np.testing.assert_array_equal(y.astype(np.float32), expected)


def test_quantize_refusals():
    net = new_network()
    x = net.add_input("x", trt.float32, (3, 4))
    scale = constant(net, np.array([0.1, 0.2, 0.3, 0.4], np.float32))
    layer = net.add_quantize(x, scale)
    with pytest.raises(trt.NetworkError, match=r"QUANTIZE\): a per-channel scale .* needs axis"):
        _ = layer.get_output(0).shape
    layer.axis = 0
    with pytest.raises(trt.NetworkError, match="per-channel scale has 4 values, axis 0 .* has 3"):
        _ = layer.get_output(0).shape
    layer.axis = 1
    assert layer.get_output(0).dtype == trt.int8
    with pytest.raises(trt.NetworkError, match="to_type FLOAT is not one of"):
        _ = net.add_quantize(x, scale, trt.float32).get_output(0).shape
    with pytest.raises(trt.NetworkError, match="scale values must be positive"):
        _ = net.add_quantize(x, constant(net, np.array(-1.0, np.float32))).get_output(0).shape
    with pytest.raises(trt.NetworkError, match="does not divide"):
        _ = net.add_quantize(x, constant(net, np.ones((2, 4), np.float32))).get_output(0).shape
    ints = net.add_input("i", trt.int32, (3, 4))
    with pytest.raises(trt.NetworkError, match=r"DEQUANTIZE\): input type INT32"):
        _ = net.add_dequantize(ints, constant(net, np.array(1.0, np.float32))).get_output(0).shape
    nonzero = net.add_quantize(x, constant(net, np.array(1.0, np.float32)))
    nonzero.set_input(2, constant(net, np.array(3, np.int8)))
    with pytest.raises(trt.NetworkError, match="zero points must be zero"):
        _ = nonzero.get_output(0).shape
