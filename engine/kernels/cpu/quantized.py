"""CPU kernels of the quantized convolution and matrix multiply.

With INT8 (or FP8) codes on both sides and a weight scale that varies at most along the output
channels, the sum of products is computed on the codes themselves, exactly — TensorRT's INT8
arithmetic with INT32 accumulation — and scaled once at the end:

    y = (sum_k x_code * w_code) * input_scale * kernel_scale[channel] + bias

The codes are carried in float32 when every partial sum is an integer below 2**24 (float32
holds those exactly), else in float64 (exact below 2**53; FP8 products too). Scales that vary
along the reduced axes (block scales) and weight-only layers dequantize the weights first, as
TensorRT does for INT4 weights.
"""

from __future__ import annotations

import numpy as np

from engine.kernels.cpu.math_contraction import matmul_with_ops
from engine.kernels.cpu.shape_quantize import broadcast_scale
from engine.kernels.cpu.spatial_conv import conv_im2col_gemm
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.math_contraction import MatrixOperation
from engine.network.layers.quantized import (
    CODE_TYPES,
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
@kernel(LayerType.QUANTIZED_CONVOLUTION, backend="cpu", name="cpu.quantized_convolution")
def quantized_convolution(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    assert isinstance(layer, IQuantizedConvolutionLayer)
    x = inputs[0]
    assert x is not None
    spatial = len(layer.kernel_size_nd)
    lead = x.shape[:x.ndim - spatial - 1]
    flat = x.reshape((-1,) + x.shape[x.ndim - spatial - 1:])
    codes = layer.kernel_codes()
    scale = np.asarray(layer.kernel_scale.numpy(), np.float32)
    geometry = layer.geometry(flat.shape[2:])
    strides, dilations = tuple(layer.stride_nd), tuple(layer.dilation_nd)
    per_channel = channel_scale(scale, layer.kernel_axis, 0, codes.ndim)
    if from_numpy_dtype(x.dtype) in CODE_TYPES and per_channel is not None:
        acc_type = accumulator_dtype(x, int(np.prod(codes.shape[1:])))
        acc = conv_im2col_gemm(flat.astype(acc_type), codes.astype(acc_type), geometry,
                               strides, dilations, layer.num_groups)
        factor = float(layer.input_scale) * per_channel
        out = acc.astype(np.float64) * np.reshape(factor, (-1,) + (1,) * spatial)
    else:
        weights = codes.astype(np.float32) * broadcast_scale(scale, codes.shape,
                                                             layer.kernel_axis)
        real = flat.astype(np.float32)
        if from_numpy_dtype(x.dtype) in CODE_TYPES:
            real = real * np.float32(layer.input_scale)
        out = conv_im2col_gemm(real, weights, geometry, strides, dilations, layer.num_groups)
    bias = weights_array(layer.bias)
    if bias.size:
        out = out + bias.astype(np.float32).reshape((-1,) + (1,) * spatial)
    return [_real_output(layer, out.reshape(lead + out.shape[1:]))]


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
