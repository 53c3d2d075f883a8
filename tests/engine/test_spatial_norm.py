"""LRN, normalization (layer, instance, group) and scale layers against onnx's reference
(LRN, LayerNormalization, InstanceNormalization, GroupNormalization) and NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from tests.engine.test_spatial_layers import onnx_op, randn
from tests.support import CollectingLogger, run_network


# -- LRN --------------------------------------------------------------------------------------
@pytest.mark.parametrize("window", [1, 3, 5])
def test_lrn_matches_onnx(window):
    x = randn(2, 7, 3, 4)
    (y,) = run_network(lambda net, t: [net.add_lrn(t["x"], window, 0.5, 0.75, 2.0)
                                       .get_output(0)], {"x": x})
    # onnx's reference LRN loops over the batch instead of the channels; onnxruntime's is right.
    want = onnx_op("LRN", [x], size=window, alpha=0.5, beta=0.75, bias=2.0,
                   runtime="onnxruntime")
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_lrn_tensorrt_example_and_attributes():
    x = np.repeat(np.arange(5, dtype=np.float32), 4).reshape(1, 5, 2, 2)

    def define(net, t):
        layer = net.add_lrn(t["x"], 3, 1.0, 1.0, 0.1)
        assert (layer.window_size, layer.alpha, layer.beta, layer.k) == (3, 1.0, 1.0, 0.1)
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x.astype(np.float16)}, dynamic={"x": (-1, 5, 2, 2)})
    # TensorRT's documented output for this input.
    want = [0.0, 0.56603765, 0.4195804, 0.3071672, 0.47430828]
    np.testing.assert_allclose(y[0, :, 0, 0].astype(np.float32), want, rtol=2e-3)


def test_lrn_refuses_parameters_out_of_range():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (1, 4, 2, 2))
    with pytest.raises(trt.NetworkError, match=r"LRN.*window_size 4 must be odd"):
        net.add_lrn(x, 4, 1.0, 0.75, 1.0)
    with pytest.raises(trt.NetworkError, match="beta 0.001"):
        net.add_lrn(x, 3, 1.0, 0.001, 1.0)


# -- normalization ----------------------------------------------------------------------------
def _normalize(net, x, scale, bias, axes, groups=1, epsilon=None):
    s = net.add_constant(scale.shape, scale).get_output(0)
    b = net.add_constant(bias.shape, bias).get_output(0)
    layer = net.add_normalization(x, s, b, axes)
    layer.num_groups = groups
    if epsilon is not None:
        layer.epsilon = epsilon
    return layer


@pytest.mark.parametrize("axis", [-1, -2, 1])
def test_layer_normalization_matches_onnx(axis):
    x = randn(2, 3, 4, 5)
    normalized = x.shape[axis % 4:]
    scale, bias = randn(*normalized), randn(*normalized)
    mask = sum(1 << a for a in range(axis % 4, 4))
    shape = (1,) * (axis % 4) + normalized

    (y,) = run_network(lambda net, t: [_normalize(
        net, t["x"], scale.reshape(shape), bias.reshape(shape), mask, epsilon=1e-3)
        .get_output(0)], {"x": x})
    want = onnx_op("LayerNormalization", [x, scale, bias], axis=axis, epsilon=1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_instance_normalization_matches_onnx_with_dynamic_batch():
    x = randn(3, 4, 5, 6)
    scale, bias = randn(4), randn(4)

    (y,) = run_network(lambda net, t: [_normalize(
        net, t["x"], scale.reshape(1, 4, 1, 1), bias.reshape(1, 4, 1, 1), 0b1100)
        .get_output(0)], {"x": x}, dynamic={"x": (-1, 4, -1, -1)})
    want = onnx_op("InstanceNormalization", [x, scale, bias], epsilon=1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_group_normalization_with_per_group_coefficients_matches_onnx_18():
    x = randn(2, 6, 4, 3)
    scale, bias = randn(3), randn(3)

    (y,) = run_network(lambda net, t: [_normalize(
        net, t["x"], scale.reshape(1, 3, 1, 1), bias.reshape(1, 3, 1, 1), 0b1100, groups=3)
        .get_output(0)], {"x": x})
    want = onnx_op("GroupNormalization", [x, scale, bias], opset=18, num_groups=3,
                   epsilon=1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_group_normalization_with_per_channel_coefficients_matches_onnx_21():
    x = randn(2, 8, 5)
    scale, bias = randn(8), randn(8)

    (y,) = run_network(lambda net, t: [_normalize(
        net, t["x"], scale.reshape(1, 8, 1), bias.reshape(1, 8, 1), 0b100, groups=2)
        .get_output(0)], {"x": x})
    want = onnx_op("GroupNormalization", [x, scale, bias], opset=21, num_groups=2,
                   epsilon=1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, trt.nptype(trt.bfloat16)])
def test_normalization_in_low_precision(dtype):
    x = randn(2, 3, 8)
    scale, bias = randn(1, 1, 8), randn(1, 1, 8)

    def define(net, t):
        layer = _normalize(net, t["x"], scale.astype(dtype), bias.astype(dtype), 0b100)
        assert layer.compute_precision == trt.float32 and layer.epsilon == 1e-5
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x.astype(dtype)})
    assert y.dtype == dtype
    f32 = [a.astype(dtype).astype(np.float32) for a in (x, scale.reshape(8), bias.reshape(8))]
    want = onnx_op("LayerNormalization", f32, axis=-1)
    np.testing.assert_allclose(y.astype(np.float32), want, rtol=3e-2, atol=3e-2)


def _build_errors(define) -> list[str]:
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    x = net.add_input("x", trt.float32, (2, 6, 4))
    net.mark_output(define(net, x).get_output(0))
    assert builder.build_serialized_network(net, builder.create_builder_config()) is None
    return logger.errors()


def test_normalization_refusals():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (2, 6, 4))
    ones = net.add_constant((1, 6, 1), np.ones(6, np.float32)).get_output(0)
    wrong = net.add_constant((1, 5, 1), np.ones(5, np.float32)).get_output(0)
    with pytest.raises(trt.NetworkError, match=r"Normalization.*does not broadcast"):
        net.add_normalization(x, wrong, ones, 0b100)
    with pytest.raises(trt.NetworkError, match="axes mask is empty"):
        net.add_normalization(x, ones, ones, 0)
    with pytest.raises(trt.NetworkError, match="names axes beyond rank 3"):
        net.add_normalization(x, ones, ones, 0b1000)
    per_group = net.add_constant((1, 3, 1), np.ones(3, np.float32)).get_output(0)
    errors = _build_errors(lambda n, t: n.add_normalization(
        t, n.add_constant((1, 3, 1), np.ones(3, np.float32)).get_output(0),
        n.add_constant((1, 3, 1), np.ones(3, np.float32)).get_output(0), 0b100))
    assert any("does not broadcast" in e and "num_groups 1" in e for e in errors), errors
    layer = net.add_normalization(x, per_group, per_group, 0b100)
    layer.num_groups = 4
    with pytest.raises(trt.NetworkError, match="input has 6 channels, not divisible by "
                                               "num_groups 4"):
        layer.get_output(0).shape  # noqa: B018


# -- scale ------------------------------------------------------------------------------------
def test_scale_uniform_matches_tensorrts_example():
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)

    def define(net, t):
        layer = net.add_scale(t["x"], trt.ScaleMode.UNIFORM, np.array([1], np.float32),
                              np.array([2], np.float32), np.array([2], np.float32))
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x})
    np.testing.assert_allclose(y, (x * 2 + 1) ** 2)


def test_scale_per_channel_with_default_power_and_dynamic_batch():
    x = randn(3, 4, 2, 5)
    shift, scale = randn(4), randn(4)

    def define(net, t):
        layer = net.add_scale(t["x"], trt.ScaleMode.CHANNEL, shift, scale)
        assert layer.channel_axis == 1 and layer.power.size == 0
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x}, dynamic={"x": (-1, 4, 2, 5)})
    np.testing.assert_allclose(y, x * scale.reshape(4, 1, 1) + shift.reshape(4, 1, 1),
                               rtol=1e-6, atol=1e-6)


def test_scale_nd_elementwise_from_a_channel_axis_in_fp16():
    x = np.abs(randn(2, 3, 4, 5)) + 0.5
    scale, power = np.abs(randn(4, 5)) + 0.5, randn(4, 5)

    def define(net, t):
        layer = net.add_scale_nd(t["x"], trt.ScaleMode.ELEMENTWISE, None, scale, power, 2)
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x.astype(np.float16)})
    assert y.dtype == np.float16
    want = (x.astype(np.float16).astype(np.float32) * scale) ** power
    np.testing.assert_allclose(y.astype(np.float32), want, rtol=1e-2, atol=1e-2)


def test_scale_refusals():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (1, 3, 2, 2))
    with pytest.raises(trt.NetworkError, match="scale holds 2 values; CHANNEL mode expects 3"):
        net.add_scale(x, trt.ScaleMode.CHANNEL, None, np.ones(2, np.float32))
    with pytest.raises(trt.NetworkError, match="at least 4 dimensions"):
        net.add_scale(net.add_input("y", trt.float32, (3, 2, 2)), trt.ScaleMode.UNIFORM)
    with pytest.raises(trt.NetworkError, match="channel_axis 4 is out of range"):
        net.add_scale_nd(x, trt.ScaleMode.CHANNEL, channel_axis=4)
