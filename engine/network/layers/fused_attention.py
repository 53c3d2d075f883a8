"""Layers for recognized transformer blocks: ``IFusedAttentionLayer`` (scaled dot-product
attention) and ``IFusedRMSNormalizationLayer``; the builder's recognition passes create them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.math_types import FLOATS
from engine.network.shapes import axes_from_mask, broadcast_shapes

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


class IFusedAttentionLayer(ILayer):
    """``softmax(q @ k^T * scale + mask) @ v`` over the last axis; inputs q, k, v and an
    optional additive mask (input 3). ``transpose_k`` False: k is given already transposed
    (``[..., D, Sk]``), True: as ``[..., Sk, D]``.

    ``sequence_major`` False: q, k, v and the output are ``[..., H, S, D]`` (heads before the
    sequence). True (rank 4 and ``transpose_k`` only): q is ``[B, Sq, H, D]``, k and v are
    ``[B, Sk, H, D]`` and the output is ``[B, Sq, H, D]``, as the projections lay the heads
    out before the split transposes; the mask stays in score layout, broadcastable to
    ``[B, H, Sq, Sk]``. B and H broadcast across q, k, v and the mask in both layouts.
    """

    type = LayerType.FUSED_ATTENTION
    _attributes: ClassVar[tuple[str, ...]] = ("scale", "transpose_k", "sequence_major")
    _max_inputs = 4
    sequence_major = False  # what a plan written before the attribute existed means

    def __init__(self, network: INetworkDefinition, q: ITensor, k: ITensor, v: ITensor,
                 mask: ITensor | None, scale: float, transpose_k: bool, *,
                 sequence_major: bool = False) -> None:
        super().__init__(network, [q, k, v] + ([mask] if mask is not None else []))
        self.scale = float(scale)
        self.transpose_k = bool(transpose_k)
        self.sequence_major = bool(sequence_major)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        q, k, v = self.require_inputs(inputs, 3)
        for name, info in (("q", q), ("k", k), ("v", v)):
            if info.dtype not in FLOATS or info.dtype != q.dtype:
                self.fail(f"{name} has type {info.dtype.name}; q, k and v must share one float "
                          f"type")
            if info.rank < 2 or info.rank != q.rank:
                self.fail(f"q {q.shape}, k {k.shape} and v {v.shape} must have one rank >= 2")
        q_shape, k_shape, v_shape = q.shape, k.shape, v.shape
        if self.sequence_major:
            if q.rank != 4:
                self.fail(f"sequence_major needs q, k and v of rank 4 ([B, S, H, D]); they have "
                          f"rank {q.rank}")
            if not self.transpose_k:
                self.fail("sequence_major needs transpose_k: k is given as [B, Sk, H, D]")
            q_shape, k_shape, v_shape = (_swap_sequence_and_heads(s)
                                         for s in (q_shape, k_shape, v_shape))
        keys = k_shape[-2] if self.transpose_k else k_shape[-1]
        mask = inputs[3] if len(inputs) > 3 else None
        if self.sequence_major and mask is not None and mask.rank > 4:
            self.fail(f"mask {mask.shape} has more axes than the scores [B, H, Sq, Sk]")
        try:
            batch = broadcast_shapes(q_shape[:-2], k_shape[:-2], v_shape[:-2])
            scores = batch + (q_shape[-2], keys)
            if mask is not None:
                scores = broadcast_shapes(scores, mask.shape)
        except ValueError as exc:
            self.fail(str(exc))
        out = scores[:-1] + (v_shape[-1],)
        if self.sequence_major:
            out = _swap_sequence_and_heads(out)
        return [TensorInfo(out, q.dtype)]


def _swap_sequence_and_heads(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``[B, S, H, D]`` as ``[B, H, S, D]`` and back."""
    return (shape[0], shape[2], shape[1], shape[3])


class IFusedRMSNormalizationLayer(ILayer):
    """``x / sqrt(mean(x * x, axes) + epsilon) * scale``; inputs x and scale (broadcast)."""

    type = LayerType.FUSED_RMS_NORMALIZATION
    _attributes: ClassVar[tuple[str, ...]] = ("epsilon", "axes")
    _max_inputs = 2

    def __init__(self, network: INetworkDefinition, x: ITensor, scale: ITensor, axes: int,
                 epsilon: float) -> None:
        super().__init__(network, [x, scale])
        self.axes = int(axes)
        self.epsilon = float(epsilon)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        x, scale = self.require_inputs(inputs, 2)
        if x.dtype not in FLOATS or scale.dtype != x.dtype:
            self.fail(f"x ({x.dtype.name}) and scale ({scale.dtype.name}) must share a float "
                      f"type")
        try:
            axes_from_mask(self.axes, x.rank)
            shape = broadcast_shapes(x.shape, scale.shape)
        except ValueError as exc:
            self.fail(str(exc))
        if shape != x.shape and all(d >= 0 for d in shape + x.shape):
            self.fail(f"scale {scale.shape} would enlarge the input {x.shape}")
        return [TensorInfo(x.shape, x.dtype)]
