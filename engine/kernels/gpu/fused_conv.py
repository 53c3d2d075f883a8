"""GPU tactics of the fused convolution and matrix-multiply layers, and a convolution tactic
without an output transpose.

The contraction runs on cuBLAS (FP16 on tensor cores, accumulating in FP32): an ungrouped
convolution gathers its windows into columns ``[B, C * taps, P]`` (none for a 1x1 stride-1
convolution, whose input already is that matrix) and multiplies them by the kernel
``[K, C * taps]`` in one strided-batched GEMM straight into the ``[B, K, P]`` output. The
epilogue, ``activation(y + bias + residual)``, is one generated kernel that updates the
product in place (cached per activation and operand set): a grid-stride RawKernel with flat
indices where the bias varies along one axis and the residual has the output's shape, else a
CuPy elementwise kernel (broadcasting by N-d indices).
"""

from __future__ import annotations

import cupy
import numpy as np

from engine.kernels.gpu.capabilities import both, contiguous
from engine.kernels.gpu.fused_pointwise import activation_expression
from engine.kernels.gpu.gemm import batched_matmul
from engine.kernels.gpu.rows import HALF_PRELUDE
from engine.kernels.gpu.spatial import conv_im2col, pad_for_windows, strided_windows
from engine.kernels.gpu.weights import device_weights
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.fused import (
    IFusedConvolutionLayer,
    IFusedMatrixMultiplyLayer,
    epilogue_of,
)
from engine.network.layers.math_contraction import MatrixOperation
from engine.network.layers.math_pointwise import ActivationType
from engine.network.layers.spatial_conv import IConvolutionLayer
from engine.network.layers.spatial_window import dilated_extent

_EPILOGUES: dict[tuple, cupy.ElementwiseKernel] = {}


def epilogue(y: cupy.ndarray, bias: cupy.ndarray | None, residual: cupy.ndarray | None,
             activation: ActivationType | None, alpha: float, beta: float) -> cupy.ndarray:
    """``y = activation(y + bias + residual)`` in place, in float32 (bias and residual
    broadcast against ``y``); returns ``y``."""
    if bias is None and residual is None and activation is None:
        return y
    kind = None if activation is None else ActivationType(activation).name
    if _row_epilogue(y, bias, residual, kind, alpha, beta):
        return y
    key = (kind, float(alpha), float(beta), bias is not None, residual is not None)
    compiled = _EPILOGUES.get(key)
    if compiled is None:
        params = [p for p, present in (("T b", bias is not None), ("T r", residual is not None))
                  if present]
        terms = ["(float)y"] + [t for t, present in (("(float)b", bias is not None),
                                                     ("(float)r", residual is not None))
                                if present]
        body = f"float v = {' + '.join(terms)};\n"
        if kind is not None:
            body += f"v = {activation_expression(kind, 'v', alpha, beta)};\n"
        body += "y = (T)v;"
        compiled = _EPILOGUES[key] = cupy.ElementwiseKernel(
            ", ".join(params) if params else "", "T y", body,
            f"engine_gemm_epilogue_{len(_EPILOGUES)}")
    args = [a for a in (bias, residual) if a is not None]
    compiled(*args, y)
    return y


_ROW_EPILOGUE = r"""
extern "C" __global__ void engine_bias_epilogue(T* y, const T* b, const T* r, long long n_,
                                                long long inner_, long long channels_) {
    IDX n = (IDX)n_, inner = (IDX)inner_, channels = (IDX)channels_;
    for (IDX i = (IDX)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (IDX)gridDim.x * blockDim.x) {
        float v = ld(y[i]);
        if (HAS_BIAS) v += ld(b[(i / inner) % channels]);
        if (HAS_RESIDUAL) v += ld(r[i]);
        ACTIVATE
        st(y + i, v);
    }
}
"""
# HALF, four elements per thread (8-byte loads and stores).
_ROW_EPILOGUE_HALF4 = r"""
extern "C" __global__ void engine_bias_epilogue_half4(
        unsigned long long* y, const unsigned short* b, const unsigned long long* r,
        long long n_, long long inner_, long long channels_) {
    IDX n4 = (IDX)(n_ / 4), inner = (IDX)inner_, channels = (IDX)channels_;
    for (IDX j = (IDX)blockIdx.x * blockDim.x + threadIdx.x; j < n4;
         j += (IDX)gridDim.x * blockDim.x) {
        unsigned long long raw = y[j];
        unsigned long long res = HAS_RESIDUAL ? r[j] : 0ull;
        unsigned long long packed = 0ull;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            float v = h2f((unsigned short)(raw >> (16 * k)));
            if (HAS_BIAS) v += h2f(b[((j * 4 + k) / inner) % channels]);
            if (HAS_RESIDUAL) v += h2f((unsigned short)(res >> (16 * k)));
            ACTIVATE
            packed |= (unsigned long long)f2h(v) << (16 * k);
        }
        y[j] = packed;
    }
}
"""
_ROW_KERNELS: dict[tuple, cupy.RawKernel] = {}


def _bias_layout(y: cupy.ndarray, bias: cupy.ndarray) -> tuple[int, int] | None:
    """(inner, channels) such that element i of contiguous ``y`` adds bias[(i // inner) %
    channels]: ``bias`` varies along one axis of ``y`` at most."""
    if bias.size == 1:
        return 1, 1
    shape = (1,) * (y.ndim - bias.ndim) + tuple(bias.shape)
    if len(shape) != y.ndim:
        return None
    varying = [a for a, d in enumerate(shape) if d != 1]
    if len(varying) != 1 or shape[varying[0]] != y.shape[varying[0]]:
        return None
    axis = varying[0]
    return int(np.prod(y.shape[axis + 1:], dtype=np.int64)), int(y.shape[axis])


def _row_epilogue(y: cupy.ndarray, bias: cupy.ndarray | None, residual: cupy.ndarray | None,
                  kind: str | None, alpha: float, beta: float) -> bool:
    """The epilogue as one grid-stride RawKernel with flat indices (the bias indexed by
    division, no N-d index arithmetic); False where the operands do not fit it."""
    if y.dtype.name not in ("float32", "float16") or not y.flags.c_contiguous or y.size == 0:
        return False
    layout = (1, 1)
    if bias is not None:
        found = _bias_layout(y, bias)
        if found is None or bias.dtype != y.dtype:
            return False
        layout = found
        bias = bias if bias.flags.c_contiguous else bias.copy()
    if residual is not None and (residual.shape != y.shape or residual.dtype != y.dtype
                                 or not residual.flags.c_contiguous):
        return False
    wide = y.size >= 2**31 - 2**24
    four = y.dtype.name == "float16" and y.size % 4 == 0 and y.data.ptr % 8 == 0 and (
        residual is None or residual.data.ptr % 8 == 0)
    key = (y.dtype.name, kind, float(alpha), float(beta), bias is not None,
           residual is not None, wide, four)
    compiled = _ROW_KERNELS.get(key)
    if compiled is None:
        activate = "" if kind is None else \
            f"v = {activation_expression(kind, 'v', alpha, beta)};"
        ctype = "float" if y.dtype.name == "float32" else "unsigned short"
        source = (f"#define T {ctype}\n#define IDX {'long long' if wide else 'int'}\n"
                  f"#define HAS_BIAS {int(bias is not None)}\n"
                  f"#define HAS_RESIDUAL {int(residual is not None)}\n"
                  f"#define ACTIVATE {activate}\n" + HALF_PRELUDE +
                  (_ROW_EPILOGUE_HALF4 if four else _ROW_EPILOGUE))
        compiled = _ROW_KERNELS[key] = cupy.RawKernel(
            source, "engine_bias_epilogue_half4" if four else "engine_bias_epilogue")
    threads = 256
    blocks = int(min(-(-(y.size // (4 if four else 1)) // threads), 132 * 16))
    compiled((blocks,), (threads,), (y, y if bias is None else bias,
                                     y if residual is None else residual, np.int64(y.size),
                                     np.int64(layout[0]), np.int64(layout[1])))
    return True


def _float_operands(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return all(i is None or i.dtype.name in ("FLOAT", "HALF") for i in inputs) and \
        all(t.name in ("FLOAT", "HALF") for t in layer._output_types.values())


def _weights_fit(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConvolutionLayer)
    return layer.check_weights(inputs)


def _ungrouped(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConvolutionLayer)
    return layer.num_groups == 1 and all(i is None for i in inputs[1:3])


def uniform_float_2d_convolution(layer: ILayer, inputs: list[TensorInfo | None],
                                 activations: tuple[ActivationType, ...],
                                 types: tuple[str, ...] = ("FLOAT", "HALF")) -> bool:
    """A 2-D ungrouped convolution (plain or fused) with its kernel and bias as weights, one
    float type (FLOAT or HALF, or one of ``types``) in and out, and no activation or one of
    ``activations``: what the cuDNN and generated implicit-GEMM convolution tactics take."""
    assert isinstance(layer, IConvolutionLayer)
    x = inputs[0]
    if x is None or x.dtype.name not in types or \
            any(t.name != x.dtype.name for t in layer._output_types.values()):
        return False
    activation = epilogue_of(layer)[0]
    return len(layer.kernel_size_nd) == 2 and _ungrouped(layer, inputs) and \
        _weights_fit(layer, inputs) and (activation is None or activation in activations)


def conv_columns_gemm(layer: IConvolutionLayer, x: cupy.ndarray) -> cupy.ndarray:
    """Ungrouped N-d convolution of ``x`` ``[B, C, *spatial]`` without bias: ``[B, K, *outs]``
    from one batched GEMM over the window columns (no im2col for 1x1 at stride 1, unpadded)."""
    kernel_shape = tuple(layer.kernel_size_nd)
    spatial = len(kernel_shape)
    strides, dilations = tuple(layer.stride_nd), tuple(layer.dilation_nd)
    geometry = layer.geometry(x.shape[2:])
    outs = [out for _, _, out in geometry]
    batch, channels = x.shape[:2]
    maps = layer.num_output_maps
    taps = int(np.prod(kernel_shape))
    w = device_weights(layer.kernel, x.dtype).reshape(1, maps, channels * taps)
    pointwise = taps == 1 and all(s == 1 for s in strides) and all(
        b == 0 and a == 0 for b, a, _ in geometry)
    if pointwise:
        cols = contiguous(x).reshape(batch, channels, -1)
    else:
        padded = pad_for_windows(x, geometry, dilated_extent(kernel_shape, dilations), strides)
        windows = strided_windows(padded, kernel_shape, strides, dilations, outs)
        # [B, C, *outs, *kernel] -> [B, C, *kernel, *outs]: the one copy.
        order = (0, 1) + tuple(range(2 + spatial, 2 + 2 * spatial)) + \
            tuple(range(2, 2 + spatial))
        cols = windows.transpose(order).copy().reshape(batch, channels * taps, -1)
    out = batched_matmul(w, cols)  # [B, K, P]
    return out.reshape(batch, maps, *outs)


def _flat(layer: IConvolutionLayer, x: cupy.ndarray) -> tuple[cupy.ndarray, tuple[int, ...]]:
    spatial = len(layer.kernel_size_nd)
    lead = x.shape[:x.ndim - spatial - 1]
    return x.reshape((int(np.prod(lead)),) + x.shape[x.ndim - spatial - 1:]), lead


def _bias(layer: IConvolutionLayer, dtype: np.dtype, spatial: int) -> cupy.ndarray | None:
    if not layer.bias.size:
        return None
    return device_weights(layer.bias, dtype).reshape((-1,) + (1,) * spatial)


@kernel(LayerType.CONVOLUTION, backend="gpu", name="gpu.conv_columns_cublas",
        supports=both(_float_operands, _weights_fit, _ungrouped), source="CUBLAS")
def convolution_columns(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IConvolutionLayer)
    x, lead = _flat(layer, inputs[0])  # type: ignore[arg-type]
    out = conv_columns_gemm(layer, x)
    out = epilogue(out, _bias(layer, x.dtype, out.ndim - 2), None, None, 0.0, 0.0)
    return [out.reshape(lead + out.shape[1:])]


def _run_fused_convolution(layer: IFusedConvolutionLayer, inputs: list[cupy.ndarray | None],
                           columns: bool) -> list[cupy.ndarray]:
    x, lead = _flat(layer, inputs[0])  # type: ignore[arg-type]
    if columns:
        out = conv_columns_gemm(layer, x)
        bias = _bias(layer, x.dtype, out.ndim - 2)
    else:  # grouped: the plain im2col tactic, which adds the bias itself
        (out,) = conv_im2col(layer, [x])
        bias = None
    residual = inputs[3] if len(inputs) > 3 else None
    if residual is not None:
        residual = residual.reshape(out.shape)
    out = epilogue(out, bias, residual, layer.activation, layer.alpha, layer.beta)
    return [out.reshape(lead + out.shape[1:])]


@kernel(LayerType.FUSED_CONVOLUTION, backend="gpu", name="gpu.fused_conv_columns_cublas",
        supports=both(_float_operands, _weights_fit, _ungrouped), source="CUBLAS")
def fused_convolution_columns(layer: ILayer, inputs: list[cupy.ndarray | None]
                              ) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedConvolutionLayer)
    return _run_fused_convolution(layer, inputs, columns=True)


@kernel(LayerType.FUSED_CONVOLUTION, backend="gpu", name="gpu.fused_conv_im2col_cublas",
        supports=both(_float_operands, _weights_fit), source="CUBLAS")
def fused_convolution_im2col(layer: ILayer, inputs: list[cupy.ndarray | None]
                             ) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedConvolutionLayer)
    return _run_fused_convolution(layer, inputs, columns=False)


@kernel(LayerType.FUSED_MATRIX_MULTIPLY, backend="gpu", name="gpu.fused_matmul_cublas",
        supports=_float_operands, source="CUBLAS")
def fused_matrix_multiply(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedMatrixMultiplyLayer)
    a, b = inputs[0], inputs[1]
    op0, op1 = MatrixOperation(layer.op0), MatrixOperation(layer.op1)
    if op0 == MatrixOperation.VECTOR:
        a = a[..., None, :]
    if op1 == MatrixOperation.VECTOR:
        b = b[..., :, None]
    if op0 == MatrixOperation.NONE and a.ndim > 2 and b.ndim >= 2 and a.flags.c_contiguous \
            and int(np.prod(b.shape[:-2])) == 1:
        # [..., M, K] @ [K, N]: one GEMM over all the rows instead of a batch of small ones.
        rows = a.reshape(1, -1, a.shape[-1])
        out = batched_matmul(rows, b.reshape(b.shape[-2:]),
                             transpose_b=op1 == MatrixOperation.TRANSPOSE)
        out = out.reshape(a.shape[:-1] + out.shape[-1:])
    else:
        out = batched_matmul(a, b, transpose_a=op0 == MatrixOperation.TRANSPOSE,
                             transpose_b=op1 == MatrixOperation.TRANSPOSE)
    if op1 == MatrixOperation.VECTOR:
        out = out[..., 0]
    if op0 == MatrixOperation.VECTOR:
        out = out[..., 0, :] if op1 != MatrixOperation.VECTOR else out[..., 0]
    out = contiguous(out)
    bias = inputs[2] if len(inputs) > 2 else None
    if bias is not None:
        bias = bias.astype(out.dtype, copy=False)
    residual = inputs[3] if len(inputs) > 3 else None
    if residual is not None:
        residual = contiguous(residual.astype(out.dtype, copy=False))
    return [epilogue(out, bias, residual, layer.activation, layer.alpha, layer.beta)]
