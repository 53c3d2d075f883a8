"""Q/DQ folding into quantized convolution and matrix multiply: the layers the builder makes,
their exact integer arithmetic, and the redundant-pair removal; against NumPy and onnx's
reference evaluator."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import engine as trt
from tests.quantization.networks import constant, qdq
from tests.support import build_engine, run_network

RNG = np.random.default_rng(7)


def fake_quantize(x, scale, qmin=-128, qmax=127):
    return np.clip(np.rint(x / scale), qmin, qmax) * scale


def reference_conv(x, w, b, pads, strides, group):
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=pads, strides=strides,
                            group=group)
    graph = helper.make_graph([node], "conv", [
        helper.make_tensor_value_info(n, 1, a.shape) for n, a in (("x", x), ("w", w), ("b", b))],
        [helper.make_tensor_value_info("y", 1, None)])
    return ReferenceEvaluator(helper.make_model(graph)).run(
        None, {"x": x.astype(np.float32), "w": w.astype(np.float32), "b": b})[0]


def layer_types(define, inputs):
    engine = build_engine(define, inputs)
    return [layer.layer_type.name for layer in engine._network._layers]


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("group,stride", [(1, 1), (2, 2)])
def test_int8_convolution_is_folded_and_matches_the_dequantized_reference(per_channel, group,
                                                                        stride):
    x = RNG.standard_normal((2, 4, 9, 9)).astype(np.float32)
    w = RNG.standard_normal((6, 4 // group, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(6).astype(np.float32)
    sx = np.float32(0.02)
    sw = (np.abs(w).reshape(6, -1).max(1) / 127).astype(np.float32) if per_channel \
        else np.float32(np.abs(w).max() / 127)

    def define(net, t):
        conv = net.add_convolution_nd(qdq(net, t["x"], sx, trt.int8), 6, (3, 3), trt.Weights(),
                                      trt.Weights(b))
        conv.set_input(1, qdq(net, constant(net, w), sw, trt.int8,
                              axis=0 if per_channel else -1))
        conv.num_groups, conv.stride_nd, conv.padding_nd = group, (stride, stride), (1, 1)
        return [conv.get_output(0)]

    assert layer_types(define, {"x": x}) == ["CONSTANT", "QUANTIZE", "QUANTIZED_CONVOLUTION"]
    (y,) = run_network(define, {"x": x})
    wq = fake_quantize(w, sw.reshape(-1, 1, 1, 1) if per_channel else sw)
    expected = reference_conv(fake_quantize(x, sx), wq, b, [1] * 4, [stride] * 2, group)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_int8_matrix_multiply_sums_codes_exactly():
    """The result is the INT32 sum of code products, scaled once: computed here in int64."""
    x = RNG.standard_normal((5, 300)).astype(np.float32)
    w = RNG.standard_normal((300, 7)).astype(np.float32)
    sx, sw = np.float32(0.03), (np.abs(w).max(0) / 127).astype(np.float32)

    def define(net, t):
        return [net.add_matrix_multiply(
            qdq(net, t["x"], sx, trt.int8), trt.MatrixOperation.NONE,
            qdq(net, constant(net, w), sw, trt.int8, axis=1), trt.MatrixOperation.NONE
        ).get_output(0)]

    assert "QUANTIZED_MATRIX_MULTIPLY" in layer_types(define, {"x": x})
    (y,) = run_network(define, {"x": x})
    xq = np.clip(np.rint(x / sx), -128, 127).astype(np.int64)
    wq = np.clip(np.rint(w / sw), -128, 127).astype(np.int64)
    exact = (xq @ wq).astype(np.float64) * (np.float64(sx) * sw.astype(np.float64))
    np.testing.assert_array_equal(y, exact.astype(np.float32))


@pytest.mark.parametrize("op0,op1,a_shape,b_shape", [
    ("NONE", "TRANSPOSE", (2, 3, 8), (1, 5, 8)), ("TRANSPOSE", "NONE", (2, 8, 3), (1, 8, 5)),
    ("VECTOR", "TRANSPOSE", (2, 8), (1, 5, 8)), ("NONE", "VECTOR", (2, 3, 8), (1, 8))])
def test_int8_matrix_multiply_operations(op0, op1, a_shape, b_shape):
    x = RNG.standard_normal(a_shape).astype(np.float32)
    w = RNG.standard_normal(b_shape).astype(np.float32)
    sx, sw = np.float32(0.02), np.float32(np.abs(w).max() / 127)

    def define(net, t):
        return [net.add_matrix_multiply(
            qdq(net, t["x"], sx, trt.int8), trt.MatrixOperation[op0],
            qdq(net, constant(net, w), sw, trt.int8), trt.MatrixOperation[op1]).get_output(0)]

    assert "QUANTIZED_MATRIX_MULTIPLY" in layer_types(define, {"x": x})
    (y,) = run_network(define, {"x": x})
    a, b = fake_quantize(x, sx), fake_quantize(w, sw)
    a = a.swapaxes(-1, -2) if op0 == "TRANSPOSE" else a[..., None, :] if op0 == "VECTOR" else a
    b = b.swapaxes(-1, -2) if op1 == "TRANSPOSE" else b[..., :, None] if op1 == "VECTOR" else b
    expected = a @ b
    if op1 == "VECTOR":
        expected = expected[..., 0]
    if op0 == "VECTOR":
        expected = expected[..., 0] if op1 == "VECTOR" else expected[..., 0, :]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_int4_block_weights_are_packed_and_dequantized_before_the_product():
    x = RNG.standard_normal((3, 64)).astype(np.float32)
    codes = RNG.integers(-8, 8, (64, 6))
    scale = RNG.uniform(0.01, 0.1, (4, 6)).astype(np.float32)  # blocks of 16 along K

    def define(net, t):
        c = net.add_constant(codes.shape, trt.Weights(trt.pack_int4(codes), dtype=trt.int4))
        dq = net.add_dequantize(c.get_output(0), constant(net, scale), trt.float32)
        dq.set_block_shape((16, 1))
        return [net.add_matrix_multiply(t["x"], trt.MatrixOperation.NONE, dq.get_output(0),
                                        trt.MatrixOperation.NONE).get_output(0)]

    engine = build_engine(define, {"x": x})
    (fused,) = [la for la in engine._network._layers
                if la.layer_type == trt.LayerType.QUANTIZED_MATRIX_MULTIPLY]
    assert fused.kernel.dtype == trt.int4 and fused.kernel.numpy().nbytes == 64 * 6 // 2
    (y,) = run_network(define, {"x": x})
    expected = x @ (codes * np.repeat(scale, 16, axis=0))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_fp8_convolution_matches_the_dequantized_reference():
    x = RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)
    w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    sx, sw = np.float32(4 / 448), np.float32(np.abs(w).max() / 448)

    def define(net, t):
        conv = net.add_convolution_nd(qdq(net, t["x"], sx, trt.fp8), 4, (3, 3), trt.Weights(),
                                      trt.Weights(b))
        conv.set_input(1, qdq(net, constant(net, w), sw, trt.fp8))
        return [conv.get_output(0)]

    assert "QUANTIZED_CONVOLUTION" in layer_types(define, {"x": x})
    (y,) = run_network(define, {"x": x})

    def fp8(v, s):
        return np.clip(v / s, -448, 448).astype(ml_dtypes.float8_e4m3fn).astype(np.float32) * s

    expected = reference_conv(fp8(x, sx), fp8(w, sw), b, [0] * 4, [1, 1], 1)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_weights_given_as_real_values_stay_real_when_the_input_is_quantized():
    """Only weights from a dequantize layer are folded: a plain convolution keeps its Q/DQ."""
    x = RNG.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = RNG.standard_normal((3, 2, 3, 3)).astype(np.float32)

    def define(net, t):
        return [net.add_convolution_nd(qdq(net, t["x"], np.float32(0.05), trt.int8), 3, (3, 3),
                                       trt.Weights(w), trt.Weights()).get_output(0)]

    types = layer_types(define, {"x": x})
    assert "CONVOLUTION" in types and "QUANTIZED_CONVOLUTION" not in types
    (y,) = run_network(define, {"x": x})
    expected = reference_conv(fake_quantize(x, 0.05), w, np.zeros(3, np.float32), [0] * 4,
                              [1, 1], 1)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_redundant_dequantize_quantize_pairs_are_removed():
    x = RNG.standard_normal((4, 8)).astype(np.float32)
    s = np.float32(0.04)

    def define(net, t):
        once = qdq(net, t["x"], s, trt.int8)
        twice = qdq(net, once, s, trt.int8)  # DQ -> Q with the same scale: the same codes
        return [net.add_activation(twice, trt.ActivationType.RELU).get_output(0)]

    types = layer_types(define, {"x": x})
    assert types.count("QUANTIZE") == 1 and types.count("DEQUANTIZE") == 1
    (y,) = run_network(define, {"x": x})
    np.testing.assert_allclose(y, np.maximum(fake_quantize(x, s), 0), rtol=1e-6)


def test_requantizing_with_another_scale_is_kept():
    x = RNG.standard_normal((4, 8)).astype(np.float32)

    def define(net, t):
        return [qdq(net, qdq(net, t["x"], np.float32(0.01), trt.int8), np.float32(0.05),
                    trt.int8)]

    assert layer_types(define, {"x": x}).count("QUANTIZE") == 2
    (y,) = run_network(define, {"x": x})
    np.testing.assert_allclose(y, fake_quantize(fake_quantize(x, 0.01), 0.05), rtol=1e-6)


def test_quantized_layer_refuses_inconsistent_attributes_with_its_name():
    from engine.network.layers.quantized import IQuantizedMatrixMultiplyLayer, codes_as_weights

    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.int8, (2, 4))
    layer = IQuantizedMatrixMultiplyLayer(net, x, trt.MatrixOperation.NONE,
                                          codes_as_weights(np.ones((4, 3)), trt.int8), (4, 3),
                                          trt.MatrixOperation.NONE)
    layer.name = "qmm"
    with pytest.raises(trt.NetworkError, match=r"'qmm'.*input_scale is 0.0"):
        net._add_layer(layer)
