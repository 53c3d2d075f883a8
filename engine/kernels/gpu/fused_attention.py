"""GPU kernels of the fused attention and RMS normalization layers.

Attention is two batched cuBLAS GEMMs around one softmax kernel (a block per row computing
``scores * scale + mask`` on the fly, ``rows.softmax_rows``); where it does not apply, the row
maximum and the row sum of exponentials are two reduction kernels and one elementwise kernel
writes the probabilities in the input type; everything is float32 inside. A sequence-major
layer's q, k and v are read as ``[B, H, S, D]`` views (the GEMMs copy them) and its output is
written back as ``[B, S, H, D]``. RMS normalization
is one reduction (mean of squares) and one elementwise kernel.
"""

from __future__ import annotations

import cupy
import numpy as np

from engine.kernels.gpu.capabilities import contiguous
from engine.kernels.gpu.gemm import batched_matmul
from engine.kernels.gpu.rows import row_types_fit, softmax_rows
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.fused_attention import IFusedAttentionLayer, IFusedRMSNormalizationLayer
from engine.network.shapes import axes_from_mask

_row_max = cupy.ReductionKernel(
    "T s, M m, float32 scale", "float32 y",
    "(float)s * scale + (float)m", "max(a, b)", "y = a", "__int_as_float(0xff800000)",
    "engine_attention_row_max")
_row_sum = cupy.ReductionKernel(
    "T s, M m, float32 scale, float32 top", "float32 y",
    "expf((float)s * scale + (float)m - top)", "a + b", "y = a", "0",
    "engine_attention_row_sum")
_probabilities = cupy.ElementwiseKernel(
    "T s, M m, float32 scale, float32 top, float32 total", "T p",
    "p = (T)(expf((float)s * scale + (float)m - top) / total)",
    "engine_attention_probabilities")

_ZERO_MASK: dict[str, cupy.ndarray] = {}


def scaled_softmax(scores: cupy.ndarray, scale: float, mask: cupy.ndarray | None
                   ) -> cupy.ndarray:
    """``softmax(scores * scale + mask)`` over the last axis, in ``scores``' type: one row
    kernel (``rows.softmax_rows``) where the types and rank allow, else three kernels."""
    if scores.ndim <= 5 and row_types_fit(scores.dtype) and (
            mask is None or (mask.ndim <= 5 and row_types_fit(mask.dtype))):
        return softmax_rows(scores, scale, mask)
    if mask is None:
        device = str(cupy.cuda.Device().id)
        mask = _ZERO_MASK.get(device)
        if mask is None:
            mask = _ZERO_MASK[device] = cupy.zeros((), cupy.float32)
    shape = np.broadcast_shapes(scores.shape, mask.shape)
    s = cupy.broadcast_to(scores, shape)
    m = cupy.broadcast_to(mask, shape)
    factor = np.float32(scale)
    top = _row_max(s, m, factor, axis=-1, keepdims=True)
    total = _row_sum(s, m, factor, top, axis=-1, keepdims=True)
    out = cupy.empty(shape, scores.dtype)
    _probabilities(s, m, factor, top, total, out)
    return out


def _float_qkv(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return all(i is None or i.dtype.name in ("FLOAT", "HALF") for i in inputs)


@kernel(LayerType.FUSED_ATTENTION, backend="gpu", name="gpu.attention_gemm_softmax",
        supports=_float_qkv, source="CUBLAS")
def fused_attention(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedAttentionLayer)
    q, k, v = inputs[0], inputs[1], inputs[2]
    assert q is not None and k is not None and v is not None
    mask = inputs[3] if len(inputs) > 3 else None
    if layer.sequence_major:  # [B, S, H, D] read as [B, H, S, D]
        q, k, v = (x.swapaxes(1, 2) for x in (q, k, v))
    scores = batched_matmul(q, k.astype(q.dtype, copy=False), transpose_b=layer.transpose_k)
    probabilities = scaled_softmax(scores, layer.scale, mask)
    out = batched_matmul(probabilities, v.astype(q.dtype, copy=False))
    if layer.sequence_major:
        out = out.swapaxes(1, 2)
    return [contiguous(out)]


_sum_of_squares = cupy.ReductionKernel(
    "T x", "float32 y", "(float)x * (float)x", "a + b", "y = a", "0", "engine_sum_of_squares")
_rms_scale = cupy.ElementwiseKernel(
    "T x, float32 squares, S g, float32 inv_count, float32 eps", "T y",
    "y = (T)((float)x * rsqrtf(squares * inv_count + eps) * (float)g)", "engine_rms_scale")


@kernel(LayerType.FUSED_RMS_NORMALIZATION, backend="gpu", name="gpu.rms_normalization",
        supports=_float_qkv)
def fused_rms_normalization(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedRMSNormalizationLayer)
    x, scale = inputs
    axes = tuple(axes_from_mask(int(layer.axes), x.ndim))
    squares = _sum_of_squares(x, axis=axes, keepdims=True)
    count = x.size // max(squares.size, 1)
    out = cupy.empty(x.shape, x.dtype)
    _rms_scale(x, squares, scale, np.float32(1.0 / max(count, 1)), np.float32(layer.epsilon),
               out)
    return [out]
