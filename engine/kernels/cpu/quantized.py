"""CPU kernels of the quantized convolution and matrix multiply.

With INT8 (or FP8) codes on both sides and a weight scale that varies at most along the output
channels, the sum of products is computed on the codes themselves, exactly — TensorRT's INT8
arithmetic with INT32 accumulation — and scaled once at the end:

    y = (sum_k x_code * w_code) * input_scale * kernel_scale[channel] + bias

The codes are carried in float32 when every partial sum is an integer below 2**24 (float32
holds those exactly), else in float64 (exact below 2**53; FP8 products too). Scales that vary
along the reduced axes (block scales) and weight-only layers dequantize the weights first, as
TensorRT does for INT4 weights.

The fused layer (INT8 or FP8 codes, a per-channel weight scale) computes its epilogue in
float32 in a fixed order, ``((float32(sum) * float32(input_scale * kernel_scale)) + bias) +
residual``, then the activation and the quantization of ``Quantize`` layers (divide by the
scale, round half to even, saturate): each step one IEEE float32 rounding, which the GPU
tactic repeats with the same operations, so the two agree bit for bit (for INT8; FP8 sums
differ in their float rounding first).
"""

from __future__ import annotations

import numpy as np

from engine.kernels.cpu.fused_conv import Epilogue
from engine.kernels.cpu.math_contraction import matmul_with_ops
from engine.kernels.cpu.shape_quantize import SATURATION, broadcast_scale
from engine.kernels.cpu.spatial_conv import conv_im2col_gemm
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.math_contraction import MatrixOperation
from engine.network.layers.quantized import (
    CODE_TYPES,
    IFusedQuantizedConvolutionLayer,
    IQuantizedConvolutionLayer,
    IQuantizedMatrixMultiplyLayer,
)
from engine.network.layers.spatial_conv import weights_array
from engine.types import DataType, from_numpy_dtype, nptype

FLOAT32_EXACT = 2.0 ** 24


def accumulator_dtype(x_codes: np.ndarray, reduced: int) -> type:
    """float32 when ``reduced`` INT8 products cannot leave float32's exact integers."""
    if from_numpy_dtype(x_codes.dtype) == DataType.INT8 and 128 * 128 * reduced <= FLOAT32_EXACT:
        return np.float32
    return np.float64


def channel_scale(scale: np.ndarray, axis: int, channel_axis: int, rank: int
                  ) -> np.ndarray | None:
    """The weight scale as one value per output channel (a scalar or 1-D array), or None when
    it varies along a reduced axis (per-block scales) and cannot leave the sum."""
    if scale.size == 1:
        return scale.reshape(()).astype(np.float64)
    if scale.ndim == 1 and axis % rank == channel_axis % rank:
        return scale.astype(np.float64)
    return None


def _real_output(layer: IQuantizedConvolutionLayer | IQuantizedMatrixMultiplyLayer,
                 values: np.ndarray) -> np.ndarray:
    return values.astype(nptype(DataType(layer.output_type)))


# -- convolution -------------------------------------------------------------------------------
def _batch_flattened(layer: IQuantizedConvolutionLayer, x: np.ndarray
                     ) -> tuple[np.ndarray, tuple[int, ...]]:
    """``x`` as ``[B, C, *spatial]`` and the leading dims it had before the channels."""
    spatial = len(layer.kernel_size_nd)
    lead = x.shape[:x.ndim - spatial - 1]
    return x.reshape((-1,) + x.shape[x.ndim - spatial - 1:]), lead


def conv_code_sums(layer: IQuantizedConvolutionLayer, flat: np.ndarray) -> np.ndarray:
    """The exact sums of code products ``[B, K, *out]`` of codes ``flat`` ``[B, C, *in]``
    with the layer's weight codes (integers, in float32 or float64)."""
    codes = layer.kernel_codes()
    acc_type = accumulator_dtype(flat, int(np.prod(codes.shape[1:])))
    return conv_im2col_gemm(flat.astype(acc_type), codes.astype(acc_type),
                            layer.geometry(flat.shape[2:]), tuple(layer.stride_nd),
                            tuple(layer.dilation_nd), layer.num_groups)


def conv_channel_scale(layer: IQuantizedConvolutionLayer) -> np.ndarray | None:
    """The weight scale per output map (scalar or ``[K]``), None for per-block scales."""
    scale = np.asarray(layer.kernel_scale.numpy(), np.float32)
    return channel_scale(scale, layer.kernel_axis, 0, 2 + len(layer.kernel_size_nd))


@kernel(LayerType.QUANTIZED_CONVOLUTION, backend="cpu", name="cpu.quantized_convolution")
def quantized_convolution(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    assert isinstance(layer, IQuantizedConvolutionLayer)
    x = inputs[0]
    assert x is not None
    spatial = len(layer.kernel_size_nd)
    flat, lead = _batch_flattened(layer, x)
    per_channel = conv_channel_scale(layer)
    if from_numpy_dtype(x.dtype) in CODE_TYPES and per_channel is not None:
        acc = conv_code_sums(layer, flat)
        factor = float(layer.input_scale) * per_channel
        out = acc.astype(np.float64) * np.reshape(factor, (-1,) + (1,) * spatial)
    else:
        codes = layer.kernel_codes()
        scale = np.asarray(layer.kernel_scale.numpy(), np.float32)
        weights = codes.astype(np.float32) * broadcast_scale(scale, codes.shape,
                                                             layer.kernel_axis)
        real = flat.astype(np.float32)
        if from_numpy_dtype(x.dtype) in CODE_TYPES:
            real = real * np.float32(layer.input_scale)
        out = conv_im2col_gemm(real, weights, layer.geometry(flat.shape[2:]),
                               tuple(layer.stride_nd), tuple(layer.dilation_nd),
                               layer.num_groups)
    bias = weights_array(layer.bias)
    if bias.size:
        out = out + bias.astype(np.float32).reshape((-1,) + (1,) * spatial)
    return [_real_output(layer, out.reshape(lead + out.shape[1:]))]


def requantize(values: np.ndarray, scale: float, code_type: DataType = DataType.INT8
               ) -> np.ndarray:
    """Codes of float32 ``values`` with a per-tensor ``scale``, as the quantize layer's kernel
    makes them: INT8 ``clip(round_half_to_even(values / scale), -128, 127)``, FP8
    ``clip(values / scale, -448, 448)`` rounded to nearest even by the cast."""
    low, high = SATURATION[code_type]
    scaled = values.astype(np.float32, copy=False) / np.float32(scale)
    if code_type == DataType.FP8:
        return np.clip(scaled, low, high).astype(nptype(DataType.FP8))
    return np.clip(np.rint(scaled), low, high).astype(np.int8)


def dequantized_residual(layer: IFusedQuantizedConvolutionLayer, residual: np.ndarray
                         ) -> np.ndarray:
    """The residual as the layer adds it: as given, or INT8 codes dequantized as the
    dequantize layer they replace, ``output_type(float32(codes) * float32(residual_scale))``."""
    scale = float(getattr(layer, "residual_scale", 0.0))
    if scale <= 0:
        return residual
    return (residual.astype(np.float32) * np.float32(scale)).astype(
        nptype(DataType(layer.output_type)))


def _fused_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    """INT8 or FP8 codes on both sides (the same type), a per-channel weight scale."""
    assert isinstance(layer, IFusedQuantizedConvolutionLayer)
    x = inputs[0]
    return x is not None and x.dtype in CODE_TYPES and layer.kernel.dtype == x.dtype \
        and conv_channel_scale(layer) is not None


@kernel(LayerType.FUSED_QUANTIZED_CONVOLUTION, backend="cpu",
        name="cpu.fused_quantized_convolution", supports=_fused_fits)
def fused_quantized_convolution(layer: ILayer, inputs: list[np.ndarray | None]
                                ) -> list[np.ndarray]:
    assert isinstance(layer, IFusedQuantizedConvolutionLayer)
    x = inputs[0]
    assert x is not None
    spatial = len(layer.kernel_size_nd)
    flat, lead = _batch_flattened(layer, x)
    per_channel = conv_channel_scale(layer)
    assert per_channel is not None
    maps = (-1,) + (1,) * spatial
    factor = (float(layer.input_scale) * per_channel).astype(np.float32)
    # Exact integers below 2**24; above, float32() rounds them to nearest as the GPU does.
    out = conv_code_sums(layer, flat).astype(np.float32) * np.reshape(factor, maps)
    bias = weights_array(layer.bias)
    if bias.size:
        out += bias.astype(np.float32).reshape(maps)
    residual = inputs[1] if len(inputs) > 1 else None
    if residual is not None:
        out += dequantized_residual(layer, residual).astype(np.float32, copy=False) \
            .reshape(out.shape)
    Epilogue(activation=layer.activation, alpha=layer.alpha, beta=layer.beta).activate(out)
    out = out.reshape(lead + out.shape[1:])
    if float(layer.output_scale) > 0:
        return [requantize(out, float(layer.output_scale), DataType(layer.output_codes))]
    return [_real_output(layer, out)]


# -- matrix multiply ---------------------------------------------------------------------------
def output_channel_axis(op1: MatrixOperation) -> int | None:
    """The axis of the weights that indexes output columns (None for a vector)."""
    if op1 == MatrixOperation.NONE:
        return -1
    if op1 == MatrixOperation.TRANSPOSE:
        return -2
    return None


@kernel(LayerType.QUANTIZED_MATRIX_MULTIPLY, backend="cpu", name="cpu.quantized_matrix_multiply")
def quantized_matrix_multiply(layer: ILayer, inputs: list[np.ndarray | None]
                              ) -> list[np.ndarray]:
    assert isinstance(layer, IQuantizedMatrixMultiplyLayer)
    x = inputs[0]
    assert x is not None
    op0, op1 = MatrixOperation(layer.op0), MatrixOperation(layer.op1)
    codes = layer.kernel_codes()
    scale = np.asarray(layer.kernel_scale.numpy(), np.float32)
    channel = output_channel_axis(op1)
    per_channel = None
    if channel is not None or scale.size == 1:
        per_channel = channel_scale(scale, layer.kernel_axis, channel or 0, codes.ndim)
    if from_numpy_dtype(x.dtype) in CODE_TYPES and per_channel is not None:
        reduced = codes.shape[-2] if op1 == MatrixOperation.NONE else codes.shape[-1]
        acc_type = accumulator_dtype(x, int(reduced))
        acc = matmul_with_ops(x.astype(acc_type), op0, codes.astype(acc_type), op1)
        out = acc.astype(np.float64) * (float(layer.input_scale) * per_channel)
    else:
        weights = codes.astype(np.float32) * broadcast_scale(scale, codes.shape,
                                                             layer.kernel_axis)
        real = x.astype(np.float32)
        if from_numpy_dtype(x.dtype) in CODE_TYPES:
            real = real * np.float32(layer.input_scale)
        out = matmul_with_ops(real, op0, weights, op1)
    return [_real_output(layer, out)]
