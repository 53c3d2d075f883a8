"""GPU tactics of the quantized convolution and matrix multiply (INT8 codes on both sides).

The sum of products runs on cuBLAS's INT8 tensor cores with exact INT32 accumulation
(``gemm.int8_matmul_nt``), the same integers the CPU kernel computes; one elementwise kernel
then scales them to the real output, ``acc * input_scale * kernel_scale[channel] + bias``,
in float32 and stores FLOAT or HALF. A convolution gathers its int8 windows first into
K-major columns ``[B, P, C * taps]`` (one kernel, four codes per thread), which is the
operand layout cuBLAS's INT8 GEMM takes; the reduced length and the GEMM's column count are
padded to multiples of 4 with zeros, as cuBLAS requires for INT8.

The fused convolution (``IFusedQuantizedConvolutionLayer``) does its whole epilogue in that
one kernel: ``+ residual``, ReLU, and for an INT8 output the quantization of the next layer
(divide, round half to even, saturate). Each float step is one IEEE float32 operation
(``__fmul_rn``, ``__fadd_rn``, ``__fdiv_rn``: never contracted into an FMA) in the CPU
kernel's order, so INT8 outputs equal the CPU kernel's bit for bit.

Per-block scales, FP8 or INT4 codes and real (weight-only) inputs stay with the CPU kernel.
The input codes come from the quantize layer's kernel (``shape_quantize.py``: scale, round
half to even, saturate, in one kernel).
"""

from __future__ import annotations

import cupy
import numpy as np
from numpy.typing import DTypeLike

from engine.kernels.cpu.quantized import (
    channel_scale,
    conv_channel_scale,
    output_channel_axis,
)
from engine.kernels.gpu.capabilities import contiguous
from engine.kernels.gpu.gemm import int8_matmul_nt
from engine.kernels.gpu.rows import HALF_PRELUDE
from engine.kernels.gpu.weights import derived_constant
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.math_contraction import MatrixOperation
from engine.network.layers.math_pointwise import ActivationType
from engine.network.layers.quantized import (
    IFusedQuantizedConvolutionLayer,
    IQuantizedConvolutionLayer,
    IQuantizedMatrixMultiplyLayer,
)
from engine.network.layers.spatial_conv import weights_array
from engine.types import DataType, nptype

_IM2COL = r"""
extern "C" __global__ void engine_im2col_int8(
        const signed char* x, unsigned int* cols, long long total4, int C, int H, int W,
        int KH, int KW, int OW, int sh, int sw, int ph, int pw, int dh, int dw,
        int P, int Ppad, int K, int Kpad4) {
    for (long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x; j < total4;
         j += (long long)gridDim.x * blockDim.x) {
        int k4 = (int)(j % Kpad4);
        long long rest = j / Kpad4;
        int p = (int)(rest % Ppad);
        long long b = rest / Ppad;
        unsigned int packed = 0u;
        if (p < P) {
            int oh = p / OW, ow = p % OW;
#pragma unroll
            for (int t = 0; t < 4; ++t) {
                int k = k4 * 4 + t;
                if (k < K) {
                    int c = k / (KH * KW), r = k % (KH * KW);
                    int ih = oh * sh - ph + (r / KW) * dh, iw = ow * sw - pw + (r % KW) * dw;
                    if (ih >= 0 && ih < H && iw >= 0 && iw < W) {
                        unsigned int v = (unsigned char)x[((b * C + c) * H + ih) * W + iw];
                        packed |= v << (8 * t);
                    }
                }
            }
        }
        cols[j] = packed;
    }
}
"""
_im2col = cupy.RawKernel(_IM2COL, "engine_im2col_int8")

_RESCALE = r"""
extern "C" __global__ void engine_int8_rescale(
        const int* acc, const float* factor, const float* bias, const R* residual, OUT* out,
        long long n, int cols, int lda, int rows, int per_row, float output_scale,
        float residual_scale) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        int col = (int)(i % cols);
        long long line = i / cols;
        int channel = per_row ? (int)(line % rows) : col;
        float v = __fmul_rn((float)acc[line * lda + col], factor[channel]);
        if (HAS_BIAS) v = __fadd_rn(v, bias[channel]);
#if RESIDUAL_CODES  // dequantized as the dequantize layer: T(float32(code) * scale)
        if (HAS_RESIDUAL) {
            float r = __fmul_rn((float)residual[i], residual_scale);
            v = __fadd_rn(v, HALF_OUT ? h2f(f2h(r)) : r);
        }
#else
        if (HAS_RESIDUAL) v = __fadd_rn(v, ld(residual[i]));
#endif
        if (RELU && v < 0.f) v = 0.f;  // NaN passes, as np.maximum lets it
#if REQUANTIZE
        int q = __float2int_rn(__fdiv_rn(v, output_scale));  // round half to even
        out[i] = (signed char)min(127, max(-128, q));
#else
        st(out + i, v);
#endif
    }
}
"""
_RESCALES: dict[tuple[str, bool, bool, bool, bool, bool], cupy.RawKernel] = {}


def _grid(count: int, threads: int = 256) -> tuple[int, ...]:
    return (int(min(max(-(-count // threads), 1), 132 * 16)),)


def _ceil4(n: int) -> int:
    return -(-n // 4) * 4


def rescale(acc: cupy.ndarray, factor: cupy.ndarray, bias: cupy.ndarray | None,
            out_shape: tuple[int, ...], rows: int, cols: int, per_row: bool,
            dtype: DTypeLike, residual: cupy.ndarray | None = None, relu: bool = False,
            output_scale: float = 0.0, residual_scale: float = 0.0) -> cupy.ndarray:
    """The output from INT32 sums ``acc`` ``[..., rows, ld]`` (``cols`` of each ``ld``
    used): ``acc * factor[channel] + bias[channel] + residual``, channel the row
    (``per_row``) or the column, then ReLU if ``relu``; stored as ``dtype`` (float32 or
    float16, also the C-ordered ``residual``'s type) in ``out_shape``, or with a positive
    ``output_scale`` as INT8 codes ``clip(rint(y / output_scale), -128, 127)``. With a
    positive ``residual_scale`` the residual is INT8 codes, added as
    ``dtype(codes * residual_scale)``."""
    requantize = output_scale > 0
    codes = residual is not None and residual_scale > 0
    key = (np.dtype(dtype).name, bias is not None, residual is not None, relu, requantize,
           codes)
    compiled = _RESCALES.get(key)
    if compiled is None:
        ctype = "float" if np.dtype(dtype) == np.float32 else "unsigned short"
        defines = {"T": ctype, "OUT": "signed char" if requantize else ctype,
                   "R": "signed char" if codes else ctype,
                   "HAS_BIAS": int(bias is not None), "HAS_RESIDUAL": int(residual is not None),
                   "RELU": int(relu), "REQUANTIZE": int(requantize),
                   "RESIDUAL_CODES": int(codes), "HALF_OUT": int(ctype != "float")}
        compiled = _RESCALES[key] = cupy.RawKernel(
            "".join(f"#define {k} {v}\n" for k, v in defines.items()) + HALF_PRELUDE +
            _RESCALE, "engine_int8_rescale")
    out = cupy.empty(out_shape, np.int8 if requantize else dtype)
    if out.size:
        compiled(_grid(out.size), (256,),
                 (acc, factor, factor if bias is None else bias,
                  factor if residual is None else residual, out, np.int64(out.size),
                  np.int32(cols), np.int32(acc.shape[-1]), np.int32(rows), np.int32(per_row),
                  np.float32(output_scale), np.float32(residual_scale)))
    return out


def _factor(layer: IQuantizedConvolutionLayer | IQuantizedMatrixMultiplyLayer,
            per_channel: np.ndarray, channels: int) -> cupy.ndarray:
    """``input_scale * kernel_scale`` per output channel, float32 on the device."""
    return derived_constant(layer, "factor", lambda: np.broadcast_to(
        (float(layer.input_scale) * per_channel).astype(np.float32), (channels,)))


def _int8_codes(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    x = inputs[0]
    return x is not None and x.dtype == DataType.INT8 and \
        layer.kernel.dtype == DataType.INT8 and \
        DataType(layer.output_type) in (DataType.FLOAT, DataType.HALF)  # type: ignore[attr-defined]


# -- convolution -------------------------------------------------------------------------------
def _conv_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IQuantizedConvolutionLayer)
    return _int8_codes(layer, inputs) and len(layer.kernel_size_nd) == 2 and \
        layer.num_groups == 1 and conv_channel_scale(layer) is not None


def conv_int8_accumulators(layer: IQuantizedConvolutionLayer, x: cupy.ndarray
                           ) -> tuple[cupy.ndarray, tuple[int, int]]:
    """The exact INT32 sums ``[B, K, P_padded]`` of the convolution of int8 codes ``x``
    ``[B, C, H, W]`` with the layer's codes, and the output's spatial size."""
    batch, channels, height, width = x.shape
    (kh, kw), maps = tuple(layer.kernel_size_nd), layer.num_output_maps
    (ph, _, oh), (pw, _, ow) = layer.geometry((height, width))
    (sh, sw), (dh, dw) = tuple(layer.stride_nd), tuple(layer.dilation_nd)
    positions, depth = oh * ow, channels * kh * kw
    positions_pad, depth_pad = _ceil4(positions), _ceil4(depth)

    def padded_codes() -> np.ndarray:
        codes = np.zeros((maps, depth_pad), np.int8)
        codes[:, :depth] = layer.kernel_codes().reshape(maps, depth)
        return codes

    w = derived_constant(layer, ("codes", depth_pad), padded_codes)
    cols = cupy.empty((batch, positions_pad, depth_pad), cupy.int8)
    total4 = cols.size // 4
    if total4:
        _im2col(_grid(total4), (256,),
                (contiguous(x), cols, np.int64(total4), np.int32(channels), np.int32(height),
                 np.int32(width), np.int32(kh), np.int32(kw), np.int32(ow), np.int32(sh),
                 np.int32(sw), np.int32(ph), np.int32(pw), np.int32(dh), np.int32(dw),
                 np.int32(positions), np.int32(positions_pad), np.int32(depth),
                 np.int32(depth_pad // 4)))
    return int8_matmul_nt(w, cols), (oh, ow)


def _conv_rescaled(layer: IQuantizedConvolutionLayer, x: cupy.ndarray,
                   residual: cupy.ndarray | None = None, relu: bool = False,
                   output_scale: float = 0.0, residual_scale: float = 0.0) -> cupy.ndarray:
    """The layer's output for int8 codes ``x`` ``[..., C, H, W]``: the INT32 sums, rescaled
    with the epilogue (``rescale``) in one kernel."""
    lead = x.shape[:-3]
    flat = x.reshape((-1,) + x.shape[-3:])
    acc, (oh, ow) = conv_int8_accumulators(layer, flat)
    maps = layer.num_output_maps
    per_channel = conv_channel_scale(layer)
    assert per_channel is not None
    bias = weights_array(layer.bias)
    device_bias = derived_constant(layer, "bias", lambda: bias.astype(np.float32)) \
        if bias.size else None
    out = rescale(acc, _factor(layer, per_channel, maps), device_bias,
                  (flat.shape[0], maps, oh, ow), maps, oh * ow, True,
                  nptype(DataType(layer.output_type)),
                  None if residual is None else contiguous(residual), relu, output_scale,
                  residual_scale)
    return out.reshape(lead + out.shape[1:])


@kernel(LayerType.QUANTIZED_CONVOLUTION, backend="gpu", name="gpu.quantized_conv_int8_cublas",
        supports=_conv_fits, source="CUBLAS")
def quantized_convolution(layer: ILayer, inputs: list[cupy.ndarray | None]
                          ) -> list[cupy.ndarray]:
    assert isinstance(layer, IQuantizedConvolutionLayer)
    x = inputs[0]
    assert x is not None
    return [_conv_rescaled(layer, x)]


def _fused_conv_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IFusedQuantizedConvolutionLayer)
    residual = inputs[1] if len(inputs) > 1 else None
    return _conv_fits(layer, inputs[:1]) and \
        layer.activation in (None, ActivationType.RELU) and \
        (residual is None or residual.dtype == (
            DataType.INT8 if float(layer.residual_scale) > 0 else DataType(layer.output_type)))


@kernel(LayerType.FUSED_QUANTIZED_CONVOLUTION, backend="gpu",
        name="gpu.fused_quantized_conv_int8_cublas", supports=_fused_conv_fits, source="CUBLAS")
def fused_quantized_convolution(layer: ILayer, inputs: list[cupy.ndarray | None]
                                ) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedQuantizedConvolutionLayer)
    x = inputs[0]
    assert x is not None
    residual = inputs[1] if len(inputs) > 1 else None
    return [_conv_rescaled(layer, x, residual, layer.activation == ActivationType.RELU,
                           float(layer.output_scale), float(layer.residual_scale))]


# -- matrix multiply ---------------------------------------------------------------------------
_PLAIN = (MatrixOperation.NONE, MatrixOperation.TRANSPOSE)


def _matmul_per_channel(layer: IQuantizedMatrixMultiplyLayer) -> np.ndarray | None:
    scale = np.asarray(layer.kernel_scale.numpy(), np.float32)
    channel = output_channel_axis(MatrixOperation(layer.op1))
    if channel is None and scale.size != 1:
        return None
    return channel_scale(scale, layer.kernel_axis, channel or 0, len(layer.weights_shape))


def _matmul_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IQuantizedMatrixMultiplyLayer)
    x = inputs[0]
    shape = tuple(layer.weights_shape)
    return _int8_codes(layer, inputs) and x is not None and len(x.shape) >= 2 and \
        MatrixOperation(layer.op0) in _PLAIN and MatrixOperation(layer.op1) in _PLAIN and \
        2 <= len(shape) <= len(x.shape) and int(np.prod(shape[:-2])) == 1 and \
        _matmul_per_channel(layer) is not None


def matmul_int8_accumulators(layer: IQuantizedMatrixMultiplyLayer, x: cupy.ndarray
                             ) -> tuple[cupy.ndarray, int]:
    """The exact INT32 sums ``[rows, N_padded]`` of ``op0(x) @ op1(codes)`` with every row
    of ``op0(x)`` flattened into one matrix, and N."""
    if MatrixOperation(layer.op0) == MatrixOperation.TRANSPOSE:
        x = cupy.swapaxes(x, -1, -2)
    depth = x.shape[-1]
    codes_2d = layer.kernel_codes().reshape(tuple(layer.weights_shape)[-2:])
    if MatrixOperation(layer.op1) == MatrixOperation.NONE:
        codes_2d = codes_2d.T  # [N, K]: K-major, as the INT8 GEMM takes it
    cols = codes_2d.shape[0]
    depth_pad, cols_pad = _ceil4(depth), _ceil4(cols)

    def padded_codes() -> np.ndarray:
        codes = np.zeros((cols_pad, depth_pad), np.int8)
        codes[:cols, :depth] = codes_2d
        return codes

    w = derived_constant(layer, ("codes", depth_pad), padded_codes)
    rows = contiguous(x).reshape(-1, depth)
    if depth_pad != depth:
        padded = cupy.zeros((rows.shape[0], depth_pad), cupy.int8)
        padded[:, :depth] = rows
        rows = padded
    return int8_matmul_nt(rows, w), cols


@kernel(LayerType.QUANTIZED_MATRIX_MULTIPLY, backend="gpu",
        name="gpu.quantized_matmul_int8_cublas", supports=_matmul_fits, source="CUBLAS")
def quantized_matrix_multiply(layer: ILayer, inputs: list[cupy.ndarray | None]
                              ) -> list[cupy.ndarray]:
    assert isinstance(layer, IQuantizedMatrixMultiplyLayer)
    x = inputs[0]
    assert x is not None
    acc, cols = matmul_int8_accumulators(layer, x)
    rows = x.shape[-1] if MatrixOperation(layer.op0) == MatrixOperation.TRANSPOSE \
        else x.shape[-2]
    per_channel = _matmul_per_channel(layer)
    assert per_channel is not None
    out = rescale(acc, _factor(layer, per_channel, cols), None,
                  tuple(x.shape[:-2]) + (rows, cols), rows, cols, False,
                  nptype(DataType(layer.output_type)))
    return [out]
