"""The INT8 GPU tactics' integer sums against the CPU kernels' exact arithmetic: equal before
the final float rescale (tests/gpu/test_kernels.py compares the real outputs); the fused
convolution's epilogue, whose float32 steps are the CPU kernel's, equal to it bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernels.backends import gpu_available
from engine.kernels.cpu.quantized import matmul_with_ops
from engine.kernels.cpu.spatial_conv import conv_im2col_gemm
from engine.network.layer import LayerType
from tests.gpu.kernel_cases import CASES
from tests.gpu.test_kernels import make_layer

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not gpu_available(), reason="needs a GPU")


def _int8_cases(layer_type: LayerType) -> list:
    """The cases of INT8 codes on both sides that the cuBLAS INT8 tactic takes (the FP8,
    weight-only and grouped ones run on other tactics)."""
    def int8(case) -> bool:
        layer, arrays = make_layer(case)
        return arrays[0].dtype == np.int8 and layer.kernel.dtype.name == "INT8" and \
            getattr(layer, "num_groups", 1) == 1
    return [case for case in CASES[layer_type] if int8(case)]


def test_int8_gemm_sums_exactly_at_the_int8_extremes():
    from engine.kernels.gpu.gemm import int8_matmul_nt

    a = np.full((8, 4096), -128, np.int8)
    b = np.full((12, 4096), -128, np.int8)
    b[3] = 127
    got = cupy.asnumpy(int8_matmul_nt(cupy.asarray(a), cupy.asarray(b)))
    np.testing.assert_array_equal(got, a.astype(np.int64) @ b.astype(np.int64).T)


@pytest.mark.parametrize("case", _int8_cases(LayerType.QUANTIZED_CONVOLUTION),
                         ids=lambda c: c.name)
def test_convolution_sums_equal_the_cpu_integers(case):
    from engine.kernels.gpu.quantized import conv_int8_accumulators

    layer, (x,) = make_layer(case)
    acc, (oh, ow) = conv_int8_accumulators(layer, cupy.asarray(x))
    got = cupy.asnumpy(acc)[:, :, :oh * ow].reshape(x.shape[0], -1, oh, ow)
    want = conv_im2col_gemm(x.astype(np.float64), layer.kernel_codes().astype(np.float64),
                            layer.geometry(x.shape[2:]), tuple(layer.stride_nd),
                            tuple(layer.dilation_nd), 1)
    np.testing.assert_array_equal(got, want.astype(np.int64))


@pytest.mark.parametrize("case", _int8_cases(LayerType.QUANTIZED_MATRIX_MULTIPLY),
                         ids=lambda c: c.name)
def test_matrix_multiply_sums_equal_the_cpu_integers(case):
    from engine.kernels.gpu.quantized import matmul_int8_accumulators

    layer, (x,) = make_layer(case)
    acc, cols = matmul_int8_accumulators(layer, cupy.asarray(x))
    want = matmul_with_ops(x.astype(np.float64), layer.op0,
                           layer.kernel_codes().astype(np.float64), layer.op1)
    got = cupy.asnumpy(acc)[:, :cols].reshape(want.shape)
    np.testing.assert_array_equal(got, want.astype(np.int64))


def test_input_quantization_rounds_half_to_even_and_saturates():
    import engine as trt
    from engine.kernels.registry import tactics_for
    from tests.gpu.kernel_cases import KernelCase

    x = np.array([[0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1000.0, -1000.0, 12.7, -12.8]],
                 np.float32) * 0.1

    def define(net, t):
        scale = net.add_constant((), np.array(0.1, np.float32)).get_output(0)
        return net.add_quantize(t["x"], scale, trt.DataType.INT8)

    layer, arrays = make_layer(KernelCase("q", {"x": x}, define))
    (got,) = tactics_for("gpu", LayerType.QUANTIZE)[0].run(layer, [cupy.asarray(arrays[0]),
                                                                   cupy.asarray(arrays[1])])
    (want,) = tactics_for("cpu", LayerType.QUANTIZE)[0].run(layer, arrays)
    np.testing.assert_array_equal(cupy.asnumpy(got), want)
    np.testing.assert_array_equal(want[0, :8], [0, 2, 2, 0, -2, -2, 127, -128])


@pytest.mark.parametrize("case", _int8_cases(LayerType.FUSED_QUANTIZED_CONVOLUTION),
                         ids=lambda c: c.name)
def test_fused_convolution_equals_the_cpu_kernel_bit_for_bit(case):
    """INT8 codes (requantized), and HALF or FLOAT outputs with residual and ReLU: the same
    IEEE float32 operations in the same order, so the same bits."""
    from engine.kernels.registry import get_tactic

    layer, arrays = make_layer(case)
    (want,) = get_tactic("cpu", layer.layer_type, "cpu.fused_quantized_convolution").run(
        layer, arrays)
    (got,) = get_tactic("gpu", layer.layer_type, "gpu.fused_quantized_conv_int8_cublas").run(
        layer, [cupy.asarray(a) for a in arrays])
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(cupy.asnumpy(got), want)
    if want.dtype == np.int8 and layer.activation is None:
        assert (want == -128).any() and (want == 127).any()  # saturation on both sides


def test_fused_requantization_rounds_ties_to_even():
    import engine as trt
    from engine.kernels.registry import get_tactic
    from engine.network.layers.quantized import (
        IFusedQuantizedConvolutionLayer,
        IQuantizedConvolutionLayer,
        codes_as_weights,
    )

    codes = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 16, 16)
    net = trt.Builder(trt.Logger()).create_network(0)
    conv = IQuantizedConvolutionLayer(net, net.add_input("x", trt.int8, codes.shape), 1,
                                      (1, 1), codes_as_weights(np.ones((1, 1, 1, 1)), trt.int8),
                                      trt.Weights(np.zeros(0, np.float32)))
    conv.input_scale = 1.0
    layer = IFusedQuantizedConvolutionLayer.from_quantized_convolution(
        conv, None, None, output_scale=2.0)  # every code / 2 is a tie or exact
    (got,) = get_tactic("gpu", layer.layer_type, "gpu.fused_quantized_conv_int8_cublas").run(
        layer, [cupy.asarray(codes)])
    np.testing.assert_array_equal(cupy.asnumpy(got), np.rint(codes / 2.0).astype(np.int8))


@pytest.mark.parametrize("name", ["quantize-per-channel", "quantize-per-tensor"])
def test_quantize_keeps_a_channels_last_input_channels_last(name):
    """A channels-last input (what cuDNN's convolutions write) is quantized in memory order
    into a channels-last output with the values of the C-order kernel."""
    from engine.kernels.gpu.capabilities import channels_last, is_channels_last
    from engine.kernels.gpu.shape_quantize import dequantize, quantize

    [case] = [c for c in CASES[LayerType.QUANTIZE] if c.name == name]
    layer, (x, scale) = make_layer(case)
    x = np.random.default_rng(3).standard_normal((2, 3, 5, 4)).astype(np.float32) / 10
    want = cupy.asnumpy(quantize(layer, [cupy.asarray(x), cupy.asarray(scale)])[0])
    [got] = quantize(layer, [channels_last(cupy.asarray(x)), cupy.asarray(scale)])
    assert is_channels_last(got)
    np.testing.assert_array_equal(cupy.asnumpy(got), want)
    s = scale.reshape(1, -1, 1, 1) if scale.ndim else scale
    np.testing.assert_array_equal(want, np.clip(np.rint(x / s), -128, 127).astype(np.int8))
    [back] = dequantize(_dequantize_like(layer), [got, cupy.asarray(scale)])
    assert is_channels_last(back)
    np.testing.assert_array_equal(cupy.asnumpy(back), (want * s).astype(np.float32))


def _dequantize_like(quantize_layer):
    import engine as trt

    network = trt.Builder(trt.Logger()).create_network(0)
    q = network.add_input("q", trt.DataType.INT8, (2, 3, 5, 4))
    scale = quantize_layer._inputs[1]._producer.array()
    s = network.add_constant(scale.shape, np.asarray(scale)).get_output(0)
    layer = network.add_dequantize(q, s, trt.DataType.FLOAT)
    layer.axis = quantize_layer.axis
    return layer


@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=["half", "float"])
@pytest.mark.parametrize("shape", [(2, 8, 5, 3), (1, 3, 7, 7), (4099,)])
def test_per_tensor_quantize_in_vectors_equals_the_elementwise_kernel(dtype, shape):
    """The 16-byte vector kernel (with its scalar tail) gives the generic kernel's codes:
    ties to even, saturation at both ends, a zero point, channels-last in and out."""
    from engine.kernels.gpu.capabilities import channels_last, is_channels_last
    from engine.kernels.gpu.shape_quantize import _quantize, _quantize_vectors

    rng = np.random.default_rng(4)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    x.reshape(-1)[:6] = [0.25, -0.25, 0.75, 1e4, -1e4, 0.0]  # ties, saturation
    scale = cupy.asarray(np.float32(0.5))
    for zero in (np.float32(0.0), cupy.asarray(np.float32(3.0))):
        d = cupy.asarray(x)
        if d.ndim == 4:
            d = channels_last(d)
        got = _quantize_vectors(d, scale, zero)
        assert got is not None and (d.ndim != 4 or is_channels_last(got))
        want = cupy.empty(d.shape, cupy.int8)
        _quantize(d, scale, zero, want)
        np.testing.assert_array_equal(cupy.asnumpy(got), cupy.asnumpy(want))
        z = float(zero) if not isinstance(zero, cupy.ndarray) else float(zero.get())
        codes = np.clip(np.clip(np.rint(x.astype(np.float32) / np.float32(0.5)), -128, 127) + z,
                        -128, 127).astype(np.int8)
        np.testing.assert_array_equal(cupy.asnumpy(got), codes)
