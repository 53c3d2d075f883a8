"""CPU kernels of the fused attention and RMS normalization layers (float32 inside)."""

from __future__ import annotations

import numpy as np

from engine.kernels.cpu.math_numeric import dtype_of, narrow
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.fused_attention import IFusedAttentionLayer, IFusedRMSNormalizationLayer
from engine.network.shapes import axes_from_mask


@kernel(LayerType.FUSED_ATTENTION, backend="cpu", name="cpu.fused_attention")
def fused_attention(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IFusedAttentionLayer)
    q, k, v = (x.astype(np.float32, copy=False) for x in inputs[:3])
    if layer.sequence_major:  # [B, S, H, D] read as [B, H, S, D]
        q, k, v = (np.swapaxes(x, 1, 2) for x in (q, k, v))
    keys = np.swapaxes(k, -1, -2) if layer.transpose_k else k
    scores = np.matmul(q, keys)
    scores *= np.float32(layer.scale)
    if len(inputs) > 3 and inputs[3] is not None:
        scores = scores + inputs[3].astype(np.float32, copy=False)
    # Softmax with the row maximum subtracted: the same result without overflow.
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    out = np.matmul(scores, v)
    if layer.sequence_major:
        out = np.ascontiguousarray(np.swapaxes(out, 1, 2))
    return [narrow(out, dtype_of(inputs[0]))]


@kernel(LayerType.FUSED_RMS_NORMALIZATION, backend="cpu", name="cpu.fused_rms_normalization")
def fused_rms_normalization(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IFusedRMSNormalizationLayer)
    x, scale = (a.astype(np.float32, copy=False) for a in inputs)
    axes = axes_from_mask(int(layer.axes), x.ndim)
    mean_square = np.mean(x * x, axis=axes, keepdims=True)
    out = x / np.sqrt(mean_square + np.float32(layer.epsilon)) * scale
    return [narrow(out, dtype_of(inputs[0]))]
