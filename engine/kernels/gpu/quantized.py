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

The input codes come from the quantize layer's kernel (``shape_quantize.py``: scale, round
half to even, saturate, in one kernel).

FP8 codes on both sides (E4M3 patterns, see ``fp8.py``) take the same im2col (it moves bytes)
and the same rescale, with the sums in float32 instead of INT32: on FP8 tensor cores through
cuBLASLt (``cublaslt.fp8_matmul_nt``, Ada/Hopper and later), or on FP16 tensor cores with the
codes widened to FP16 (exact) and FP32 accumulation (``gemm.half_matmul_nt_float``). The
products of two E4M3 codes are exact in float32. On FP16 tensor cores the sums round as
float32 sums do (the CPU kernel sums in float64: they agree to float32 rounding, relative to
the sum of the products' magnitudes); Hopper's and Ada's FP8 tensor cores accumulate with
about 13 mantissa bits between cuBLASLt's FP32 promotions, so that path agrees to about 1e-3
of those magnitudes.

Everything else — weight-only layers (real input; INT4, INT8 or FP8 weights), per-block
weight scales, grouped or non-2-D convolutions of codes — runs on dequantized weights, as
TensorRT runs INT4 weights: the weights are dequantized once (``codes * scale``, a device
constant of the computing type), input codes dequantized with their scale, and the product
is the float convolution or matrix multiply (FP32, or FP16 with FP32 accumulation for HALF
input).

Written without a GPU (2026-12-06), the FP8 and dequantized tactics: ``tests/gpu/test_fp8.py``
is their first check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cupy
import ml_dtypes
import numpy as np
from numpy.typing import DTypeLike

from engine.kernels.cpu.quantized import (
    channel_scale,
    conv_channel_scale,
    output_channel_axis,
)
from engine.kernels.cpu.shape_quantize import broadcast_scale
from engine.kernels.fp8_source import CONVERSIONS
from engine.kernels.gpu import cublaslt, fp8
from engine.kernels.gpu.capabilities import contiguous
from engine.kernels.gpu.gemm import batched_matmul, half_matmul_nt_float, int8_matmul_nt
from engine.kernels.gpu.rows import HALF_PRELUDE
from engine.kernels.gpu.spatial import im2col_convolution
from engine.kernels.gpu.weights import derived_constant
from engine.kernels.registry import KernelFn, kernel
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
        const ACC* acc, const float* factor, const float* bias, const R* residual, OUT* out,
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
#if RESIDUAL_CODES == 2  // FP8 patterns
            float r = __fmul_rn(engine_fp8_to_float(residual[i]), residual_scale);
#else
            float r = __fmul_rn((float)residual[i], residual_scale);
#endif
            v = __fadd_rn(v, HALF_OUT ? h2f(f2h(r)) : r);
        }
#else
        if (HAS_RESIDUAL) v = __fadd_rn(v, ld(residual[i]));
#endif
        if (RELU && v < 0.f) v = 0.f;  // NaN passes, as np.maximum lets it
#if REQUANTIZE == 2  // FP8: divide, then round to nearest even saturating at 448
        out[i] = engine_float_to_fp8(__fdiv_rn(v, output_scale), 1);
#elif REQUANTIZE
        int q = __float2int_rn(__fdiv_rn(v, output_scale));  // round half to even
        out[i] = (signed char)min(127, max(-128, q));
#else
        st(out + i, v);
#endif
    }
}
"""
_RESCALES: dict[tuple[str, str, bool, bool, bool, int, int], cupy.RawKernel] = {}
# The code types' numbers in the rescale kernel's REQUANTIZE and RESIDUAL_CODES (0: none).
_CODE_KINDS = {DataType.INT8: 1, DataType.FP8: 2}
_CODE_C_TYPES = {0: None, 1: "signed char", 2: "unsigned char"}


def _grid(count: int, threads: int = 256) -> tuple[int, ...]:
    return (int(min(max(-(-count // threads), 1), 132 * 16)),)


def _ceil4(n: int) -> int:
    return -(-n // 4) * 4


def rescale(acc: cupy.ndarray, factor: cupy.ndarray, bias: cupy.ndarray | None,
            out_shape: tuple[int, ...], rows: int, cols: int, per_row: bool,
            dtype: DTypeLike, residual: cupy.ndarray | None = None, relu: bool = False,
            output_scale: float = 0.0, residual_scale: float = 0.0,
            output_codes: DataType = DataType.INT8,
            residual_codes: DataType = DataType.INT8) -> cupy.ndarray:
    """The output from INT32 (or float32: FP8) sums ``acc`` ``[..., rows, ld]`` (``cols`` of
    each ``ld`` used): ``acc * factor[channel] + bias[channel] + residual``, channel the row
    (``per_row``) or the column, then ReLU if ``relu``; stored as ``dtype`` (float32 or
    float16, also the C-ordered ``residual``'s type) in ``out_shape``, or with a positive
    ``output_scale`` as ``output_codes``: INT8 ``clip(rint(y / output_scale), -128, 127)``,
    FP8 ``y / output_scale`` rounded to nearest even, saturating (uint8 patterns). With a
    positive ``residual_scale`` the residual is ``residual_codes`` (INT8, or FP8 patterns),
    added as ``dtype(codes * residual_scale)``."""
    requantize = _CODE_KINDS[DataType(output_codes)] if output_scale > 0 else 0
    codes = _CODE_KINDS[DataType(residual_codes)] \
        if residual is not None and residual_scale > 0 else 0
    key = (acc.dtype.name, np.dtype(dtype).name, bias is not None, residual is not None, relu,
           requantize, codes)
    compiled = _RESCALES.get(key)
    if compiled is None:
        ctype = "float" if np.dtype(dtype) == np.float32 else "unsigned short"
        defines = {"ACC": "float" if acc.dtype == np.float32 else "int", "T": ctype,
                   "OUT": _CODE_C_TYPES[requantize] or ctype,
                   "R": _CODE_C_TYPES[codes] or ctype,
                   "HAS_BIAS": int(bias is not None), "HAS_RESIDUAL": int(residual is not None),
                   "RELU": int(relu), "REQUANTIZE": requantize,
                   "RESIDUAL_CODES": codes, "HALF_OUT": int(ctype != "float")}
        compiled = _RESCALES[key] = cupy.RawKernel(
            "".join(f"#define {k} {v}\n" for k, v in defines.items()) + HALF_PRELUDE +
            CONVERSIONS + _RESCALE, "engine_int8_rescale")
    stored = {0: dtype, 1: np.int8, 2: fp8.STORAGE}[requantize]
    out = cupy.empty(out_shape, stored)
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


def _codes_of(layer: ILayer, inputs: list[TensorInfo | None], code_type: DataType) -> bool:
    """Codes of ``code_type`` on both sides (input and weights), a FLOAT or HALF output."""
    assert isinstance(layer, (IQuantizedConvolutionLayer, IQuantizedMatrixMultiplyLayer))
    x = inputs[0]
    return x is not None and x.dtype == code_type and layer.kernel.dtype == code_type and \
        DataType(layer.output_type) in (DataType.FLOAT, DataType.HALF)


def _int8_codes(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return _codes_of(layer, inputs, DataType.INT8)


def _fp8_codes(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return _codes_of(layer, inputs, DataType.FP8)


# -- convolution -------------------------------------------------------------------------------
def _conv_form_fits(layer: ILayer) -> bool:
    """2-D, ungrouped, a per-tensor or per-output-channel weight scale."""
    assert isinstance(layer, IQuantizedConvolutionLayer)
    return len(layer.kernel_size_nd) == 2 and layer.num_groups == 1 and \
        conv_channel_scale(layer) is not None


def _conv_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return _int8_codes(layer, inputs) and _conv_form_fits(layer)


def _conv_columns(layer: IQuantizedConvolutionLayer, x: cupy.ndarray, align: int
                  ) -> tuple[cupy.ndarray, tuple[int, int], int]:
    """The 1-byte codes ``x`` ``[B, C, H, W]`` (INT8 or FP8 patterns) gathered into K-major
    columns ``[B, P_padded, K_padded]`` (P to a multiple of 4, K to one of ``align``, a
    multiple of 4; zero bytes, which are zero codes, pad), the output's spatial size, and K."""
    batch, channels, height, width = x.shape
    (kh, kw) = tuple(layer.kernel_size_nd)
    (ph, _, oh), (pw, _, ow) = layer.geometry((height, width))
    (sh, sw), (dh, dw) = tuple(layer.stride_nd), tuple(layer.dilation_nd)
    positions, depth = oh * ow, channels * kh * kw
    positions_pad, depth_pad = _ceil4(positions), -(-depth // align) * align
    cols = cupy.empty((batch, positions_pad, depth_pad), x.dtype)
    total4 = cols.size // 4
    if total4:
        _im2col(_grid(total4), (256,),
                (contiguous(x), cols, np.int64(total4), np.int32(channels), np.int32(height),
                 np.int32(width), np.int32(kh), np.int32(kw), np.int32(ow), np.int32(sh),
                 np.int32(sw), np.int32(ph), np.int32(pw), np.int32(dh), np.int32(dw),
                 np.int32(positions), np.int32(positions_pad), np.int32(depth),
                 np.int32(depth_pad // 4)))
    return cols, (oh, ow), depth


def _padded_codes(codes_2d: np.ndarray, rows: int, depth: int, dtype: DTypeLike) -> np.ndarray:
    """``codes_2d`` ``[N, K]`` as ``dtype`` in a zero ``[rows, depth]`` array (FP8 codes as
    their patterns: zero is +0)."""
    if codes_2d.dtype == ml_dtypes.float8_e4m3fn and np.dtype(dtype) == np.uint8:
        codes_2d = codes_2d.view(np.uint8)
    padded = np.zeros((rows, depth), dtype)
    padded[:codes_2d.shape[0], :codes_2d.shape[1]] = codes_2d.astype(dtype)
    return padded


def conv_int8_accumulators(layer: IQuantizedConvolutionLayer, x: cupy.ndarray
                           ) -> tuple[cupy.ndarray, tuple[int, int]]:
    """The exact INT32 sums ``[B, K, P_padded]`` of the convolution of int8 codes ``x``
    ``[B, C, H, W]`` with the layer's codes, and the output's spatial size."""
    cols, spatial, depth = _conv_columns(layer, x, 4)
    maps = layer.num_output_maps
    w = derived_constant(layer, ("codes", cols.shape[-1]), lambda: _padded_codes(
        layer.kernel_codes().reshape(maps, depth), maps, cols.shape[-1], np.int8))
    return int8_matmul_nt(w, cols), spatial


def conv_fp8_accumulators(layer: IQuantizedConvolutionLayer, x: cupy.ndarray,
                          tensor_cores_fp8: bool) -> tuple[cupy.ndarray, tuple[int, int]]:
    """The float32 sums ``[B, K, P_padded]`` of the convolution of FP8 codes ``x`` (uint8
    patterns) with the layer's FP8 codes: on FP8 tensor cores where asked and cuBLASLt has
    an algorithm, else on FP16 tensor cores with the codes widened."""
    cols, spatial, depth = _conv_columns(layer, x, cublaslt.FP8_ALIGNMENT)
    return _fp8_sums(layer, layer.kernel_codes().reshape(layer.num_output_maps, depth),
                     layer.num_output_maps, cols, tensor_cores_fp8, codes_first=True), spatial


def _fp8_sums(layer: ILayer, codes_2d: np.ndarray, rows: int, other: cupy.ndarray,
              tensor_cores_fp8: bool, codes_first: bool) -> cupy.ndarray:
    """``codes @ other^T`` (``codes_first``) or ``other @ codes^T`` in float32: the layer's
    FP8 weight codes ``[N, K]`` zero-padded to ``[rows, K_padded]`` and FP8 patterns
    ``other`` ``[..., M, K_padded]``."""
    depth = other.shape[-1]
    if tensor_cores_fp8:
        w = derived_constant(layer, ("fp8 codes", rows, depth),
                             lambda: _padded_codes(codes_2d, rows, depth, np.uint8))
        sums = cublaslt.fp8_matmul_nt(w, other) if codes_first else \
            cublaslt.fp8_matmul_nt(other, w)
        if sums is not None:
            return sums
    w = derived_constant(layer, ("fp8 as half", rows, depth),
                         lambda: _padded_codes(codes_2d, rows, depth, np.float16))
    wide = fp8.widen_half(other)
    return half_matmul_nt_float(w, wide) if codes_first else half_matmul_nt_float(wide, w)


Accumulate = Callable[[IQuantizedConvolutionLayer, cupy.ndarray],
                      tuple[cupy.ndarray, tuple[int, int]]]


def _conv_rescaled(layer: IQuantizedConvolutionLayer, x: cupy.ndarray,
                   accumulate: Accumulate = conv_int8_accumulators,
                   residual: cupy.ndarray | None = None) -> cupy.ndarray:
    """The layer's output for int8 codes ``x`` ``[..., C, H, W]`` (or FP8 codes, with their
    ``accumulate``): the sums, rescaled with the epilogue (``rescale``) in one kernel — the
    fused layer's residual, ReLU and requantization too."""
    lead = x.shape[:-3]
    flat = x.reshape((-1,) + x.shape[-3:])
    acc, (oh, ow) = accumulate(layer, flat)
    maps = layer.num_output_maps
    per_channel = conv_channel_scale(layer)
    assert per_channel is not None
    bias = weights_array(layer.bias)
    device_bias = derived_constant(layer, "bias", lambda: bias.astype(np.float32)) \
        if bias.size else None
    epilogue: dict[str, Any] = {}
    if isinstance(layer, IFusedQuantizedConvolutionLayer):
        residual_tensor = layer._inputs[1] if len(layer._inputs) > 1 else None
        # The residual's codes type (INT8, or FP8 patterns) is the tensor's.
        residual_codes = residual_tensor.dtype if residual_tensor is not None and \
            float(layer.residual_scale) > 0 else DataType.INT8
        epilogue = {"residual": None if residual is None else contiguous(residual),
                    "relu": layer.activation == ActivationType.RELU,
                    "output_scale": float(layer.output_scale),
                    "residual_scale": float(layer.residual_scale),
                    "output_codes": DataType(layer.output_codes),
                    "residual_codes": DataType(residual_codes)}
    out = rescale(acc, _factor(layer, per_channel, maps), device_bias,
                  (flat.shape[0], maps, oh, ow), maps, oh * ow, True,
                  nptype(DataType(layer.output_type)), **epilogue)
    return out.reshape(lead + out.shape[1:])


@kernel(LayerType.QUANTIZED_CONVOLUTION, backend="gpu", name="gpu.quantized_conv_int8_cublas",
        supports=_conv_fits, source="CUBLAS")
def quantized_convolution(layer: ILayer, inputs: list[cupy.ndarray | None]
                          ) -> list[cupy.ndarray]:
    assert isinstance(layer, IQuantizedConvolutionLayer)
    x = inputs[0]
    assert x is not None
    return [_conv_rescaled(layer, x)]


def _epilogue_fits(layer: ILayer, inputs: list[TensorInfo | None], code_type: DataType
                   ) -> bool:
    """The fused layer's epilogue the rescale kernel computes: no activation or ReLU; a
    residual of the output type, or INT8 / FP8 codes with a residual scale; output codes of
    ``code_type`` (what the tactic's input codes are: INT8 tactics write INT8)."""
    assert isinstance(layer, IFusedQuantizedConvolutionLayer)
    residual = inputs[1] if len(inputs) > 1 else None
    if layer.activation not in (None, ActivationType.RELU):
        return False
    if float(layer.output_scale) > 0 and DataType(layer.output_codes) != code_type:
        return False
    if residual is None:
        return True
    if float(layer.residual_scale) > 0:
        return residual.dtype in (DataType.INT8, DataType.FP8)
    return residual.dtype == DataType(layer.output_type)


def _fused_conv_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return _conv_fits(layer, inputs[:1]) and _epilogue_fits(layer, inputs, DataType.INT8)


@kernel(LayerType.FUSED_QUANTIZED_CONVOLUTION, backend="gpu",
        name="gpu.fused_quantized_conv_int8_cublas", supports=_fused_conv_fits, source="CUBLAS")
def fused_quantized_convolution(layer: ILayer, inputs: list[cupy.ndarray | None]
                                ) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedQuantizedConvolutionLayer)
    x = inputs[0]
    assert x is not None
    return [_conv_rescaled(layer, x, residual=inputs[1] if len(inputs) > 1 else None)]


def _fp8_conv_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return _fp8_codes(layer, inputs) and _conv_form_fits(layer)


def _fp8_conv_lt_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return _fp8_conv_fits(layer, inputs) and cublaslt.fp8_supported()


def _fp8_convolution(tensor_cores_fp8: bool) -> KernelFn:
    """The FP8 quantized convolution (plain or fused) on FP8 tensor cores (FP16 ones where
    cuBLASLt has no algorithm), or on FP16 ones with the codes widened (exact), FP32
    accumulation."""
    def run(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
        assert isinstance(layer, IQuantizedConvolutionLayer)
        x = inputs[0]
        assert x is not None
        return [_conv_rescaled(layer, x, lambda lay, flat: conv_fp8_accumulators(
            lay, flat, tensor_cores_fp8), inputs[1] if len(inputs) > 1 else None)]
    return run


def _fused_fp8_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return _fp8_conv_fits(layer, inputs[:1]) and _epilogue_fits(layer, inputs, DataType.FP8)


def _fused_fp8_lt_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return _fused_fp8_fits(layer, inputs) and cublaslt.fp8_supported()


for _type, _fits_lt, _fits_half in (
        (LayerType.QUANTIZED_CONVOLUTION, _fp8_conv_lt_fits, _fp8_conv_fits),
        (LayerType.FUSED_QUANTIZED_CONVOLUTION, _fused_fp8_lt_fits, _fused_fp8_fits)):
    _prefix = "gpu.fused_quantized_conv" if _type == LayerType.FUSED_QUANTIZED_CONVOLUTION \
        else "gpu.quantized_conv"
    kernel(_type, backend="gpu", name=f"{_prefix}_fp8_cublaslt", supports=_fits_lt,
           source="CUBLAS_LT")(_fp8_convolution(True))
    kernel(_type, backend="gpu", name=f"{_prefix}_fp8_as_half", supports=_fits_half,
           source="CUBLAS")(_fp8_convolution(False))


# -- matrix multiply ---------------------------------------------------------------------------
_PLAIN = (MatrixOperation.NONE, MatrixOperation.TRANSPOSE)


def _matmul_per_channel(layer: IQuantizedMatrixMultiplyLayer) -> np.ndarray | None:
    scale = np.asarray(layer.kernel_scale.numpy(), np.float32)
    channel = output_channel_axis(MatrixOperation(layer.op1))
    if channel is None and scale.size != 1:
        return None
    return channel_scale(scale, layer.kernel_axis, channel or 0, len(layer.weights_shape))


def _matmul_form_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    """Plain or transposed operands, one weight matrix, a per-tensor or per-column scale."""
    assert isinstance(layer, IQuantizedMatrixMultiplyLayer)
    x = inputs[0]
    shape = tuple(layer.weights_shape)
    return x is not None and len(x.shape) >= 2 and \
        MatrixOperation(layer.op0) in _PLAIN and MatrixOperation(layer.op1) in _PLAIN and \
        2 <= len(shape) <= len(x.shape) and int(np.prod(shape[:-2])) == 1 and \
        _matmul_per_channel(layer) is not None


def _matmul_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return _int8_codes(layer, inputs) and _matmul_form_fits(layer, inputs)


def _matmul_rows(layer: IQuantizedMatrixMultiplyLayer, x: cupy.ndarray, align: int
                 ) -> tuple[cupy.ndarray, np.ndarray]:
    """The rows of ``op0(x)`` flattened into one K-major matrix ``[rows, K_padded]`` (K to
    a multiple of ``align``, zero codes), and the weight codes as ``[N, K]``."""
    if MatrixOperation(layer.op0) == MatrixOperation.TRANSPOSE:
        x = cupy.swapaxes(x, -1, -2)
    depth = x.shape[-1]
    codes_2d = layer.kernel_codes().reshape(tuple(layer.weights_shape)[-2:])
    if MatrixOperation(layer.op1) == MatrixOperation.NONE:
        codes_2d = codes_2d.T  # [N, K]: K-major, as the GEMMs take it
    depth_pad = -(-depth // align) * align
    rows = contiguous(x).reshape(-1, depth)
    if depth_pad != depth:
        padded = cupy.zeros((rows.shape[0], depth_pad), rows.dtype)
        padded[:, :depth] = rows
        rows = padded
    return rows, codes_2d


def matmul_int8_accumulators(layer: IQuantizedMatrixMultiplyLayer, x: cupy.ndarray
                             ) -> tuple[cupy.ndarray, int]:
    """The exact INT32 sums ``[rows, N_padded]`` of ``op0(x) @ op1(codes)`` with every row
    of ``op0(x)`` flattened into one matrix, and N."""
    rows, codes_2d = _matmul_rows(layer, x, 4)
    cols, depth_pad = codes_2d.shape[0], rows.shape[-1]
    w = derived_constant(layer, ("codes", depth_pad), lambda: _padded_codes(
        codes_2d, _ceil4(cols), depth_pad, np.int8))
    return int8_matmul_nt(rows, w), cols


def matmul_fp8_accumulators(layer: IQuantizedMatrixMultiplyLayer, x: cupy.ndarray,
                            tensor_cores_fp8: bool) -> tuple[cupy.ndarray, int]:
    """The float32 sums ``[rows, N_padded]`` of ``op0(x) @ op1(codes)`` of FP8 codes (as
    ``conv_fp8_accumulators``), and N."""
    rows, codes_2d = _matmul_rows(layer, x, cublaslt.FP8_ALIGNMENT)
    cols = codes_2d.shape[0]
    return _fp8_sums(layer, codes_2d, _ceil4(cols), rows, tensor_cores_fp8,
                     codes_first=False), cols


def _matmul_rescaled(layer: IQuantizedMatrixMultiplyLayer, x: cupy.ndarray,
                     acc: cupy.ndarray, cols: int) -> cupy.ndarray:
    rows = x.shape[-1] if MatrixOperation(layer.op0) == MatrixOperation.TRANSPOSE \
        else x.shape[-2]
    per_channel = _matmul_per_channel(layer)
    assert per_channel is not None
    return rescale(acc, _factor(layer, per_channel, cols), None,
                   tuple(x.shape[:-2]) + (rows, cols), rows, cols, False,
                   nptype(DataType(layer.output_type)))


@kernel(LayerType.QUANTIZED_MATRIX_MULTIPLY, backend="gpu",
        name="gpu.quantized_matmul_int8_cublas", supports=_matmul_fits, source="CUBLAS")
def quantized_matrix_multiply(layer: ILayer, inputs: list[cupy.ndarray | None]
                              ) -> list[cupy.ndarray]:
    assert isinstance(layer, IQuantizedMatrixMultiplyLayer)
    x = inputs[0]
    assert x is not None
    return [_matmul_rescaled(layer, x, *matmul_int8_accumulators(layer, x))]


def _fp8_matmul_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return _fp8_codes(layer, inputs) and _matmul_form_fits(layer, inputs)


def _fp8_matmul_lt_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return _fp8_matmul_fits(layer, inputs) and cublaslt.fp8_supported()


def _fp8_matrix_multiply(tensor_cores_fp8: bool) -> KernelFn:
    """The FP8 quantized matrix multiply, as ``_fp8_convolution``."""
    def run(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
        assert isinstance(layer, IQuantizedMatrixMultiplyLayer)
        x = inputs[0]
        assert x is not None
        return [_matmul_rescaled(layer, x, *matmul_fp8_accumulators(layer, x,
                                                                   tensor_cores_fp8))]
    return run


kernel(LayerType.QUANTIZED_MATRIX_MULTIPLY, backend="gpu",
       name="gpu.quantized_matmul_fp8_cublaslt", supports=_fp8_matmul_lt_fits,
       source="CUBLAS_LT")(_fp8_matrix_multiply(True))
kernel(LayerType.QUANTIZED_MATRIX_MULTIPLY, backend="gpu",
       name="gpu.quantized_matmul_fp8_as_half", supports=_fp8_matmul_fits,
       source="CUBLAS")(_fp8_matrix_multiply(False))


# -- dequantized weights -------------------------------------------------------------------------
def _exact_tactic_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    if isinstance(layer, IQuantizedConvolutionLayer):
        return _conv_fits(layer, inputs) or _fp8_conv_fits(layer, inputs)
    return _matmul_fits(layer, inputs) or _fp8_matmul_fits(layer, inputs)


def _dequantized_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    """Real (FLOAT, HALF) input or INT8 / FP8 codes, a FLOAT or HALF output, and no tactic
    on the codes themselves for this form (those are exact; this one rounds as float)."""
    x = inputs[0]
    if x is None or x.dtype not in (DataType.FLOAT, DataType.HALF, DataType.INT8,
                                    DataType.FP8) or \
            DataType(layer.output_type) not in (DataType.FLOAT, DataType.HALF):  # type: ignore[attr-defined]
        return False
    if isinstance(layer, IQuantizedMatrixMultiplyLayer) and \
            (MatrixOperation(layer.op0) not in _PLAIN or MatrixOperation(layer.op1) not in _PLAIN):
        return False
    return not _exact_tactic_fits(layer, inputs)


def _computing_type(layer: ILayer) -> np.dtype:
    """FP16 (FP32 accumulation) for HALF input, else FP32 (codes are dequantized in FP32)."""
    x = layer._inputs[0]
    assert x is not None
    return np.dtype(np.float16 if x.dtype == DataType.HALF else np.float32)


def _real_weights(layer: IQuantizedConvolutionLayer | IQuantizedMatrixMultiplyLayer,
                  dtype: np.dtype) -> cupy.ndarray:
    """The dequantized weights ``codes * kernel_scale`` as ``dtype``, shaped as the layer's
    codes (a device constant, made once)."""
    def make() -> np.ndarray:
        codes = layer.kernel_codes()
        scale = np.asarray(layer.kernel_scale.numpy(), np.float32)
        return (codes.astype(np.float32) *
                broadcast_scale(scale, codes.shape, layer.kernel_axis)).astype(dtype)

    return derived_constant(layer, ("dequantized", dtype.name), make)


def _real_input(layer: IQuantizedConvolutionLayer | IQuantizedMatrixMultiplyLayer,
                x: cupy.ndarray, dtype: np.dtype) -> cupy.ndarray:
    """The input as real values of ``dtype``: codes times ``input_scale`` (in FP32)."""
    tensor = layer._inputs[0]
    assert tensor is not None
    if tensor.dtype == DataType.FP8:
        return fp8.widen(x) * np.float32(layer.input_scale)
    if tensor.dtype == DataType.INT8:
        return x.astype(cupy.float32) * np.float32(layer.input_scale)
    return x.astype(dtype, copy=False)


@kernel(LayerType.QUANTIZED_CONVOLUTION, backend="gpu",
        name="gpu.quantized_conv_dequantized_cublas", supports=_dequantized_fits,
        source="CUBLAS")
def quantized_convolution_dequantized(layer: ILayer, inputs: list[cupy.ndarray | None]
                                      ) -> list[cupy.ndarray]:
    """Weight-only (or block-scaled, grouped, N-d) quantized convolution: the float
    convolution with the weights dequantized once."""
    assert isinstance(layer, IQuantizedConvolutionLayer)
    x = inputs[0]
    assert x is not None
    dtype = _computing_type(layer)
    spatial = len(layer.kernel_size_nd)
    lead = x.shape[:x.ndim - spatial - 1]
    flat = _real_input(layer, x, dtype).reshape((-1,) + x.shape[x.ndim - spatial - 1:])
    out = im2col_convolution(layer, flat, _real_weights(layer, dtype))
    bias = weights_array(layer.bias)
    if bias.size:
        out += derived_constant(layer, ("bias", dtype.name), lambda: bias.astype(dtype)) \
            .reshape((-1,) + (1,) * spatial)
    out = out.reshape(lead + out.shape[1:])
    return [out.astype(nptype(DataType(layer.output_type)), copy=False)]


@kernel(LayerType.QUANTIZED_MATRIX_MULTIPLY, backend="gpu",
        name="gpu.quantized_matmul_dequantized_cublas", supports=_dequantized_fits,
        source="CUBLAS")
def quantized_matrix_multiply_dequantized(layer: ILayer, inputs: list[cupy.ndarray | None]
                                          ) -> list[cupy.ndarray]:
    """Weight-only (INT4, INT8, FP8 weights; any scales) quantized matrix multiply: the float
    product with the weights dequantized once."""
    assert isinstance(layer, IQuantizedMatrixMultiplyLayer)
    x = inputs[0]
    assert x is not None
    dtype = _computing_type(layer)
    out = batched_matmul(_real_input(layer, x, dtype), _real_weights(layer, dtype),
                         transpose_a=MatrixOperation(layer.op0) == MatrixOperation.TRANSPOSE,
                         transpose_b=MatrixOperation(layer.op1) == MatrixOperation.TRANSPOSE)
    return [out.astype(nptype(DataType(layer.output_type)), copy=False)]
