"""CPU kernel of the padding layer, and the constant padding (negative amounts crop) that the
windowed kernels build on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.spatial_padding import IPaddingLayer


def pad_trailing(x: np.ndarray, pre: Sequence[int], post: Sequence[int], value: float = 0
                 ) -> np.ndarray:
    """``x`` padded with ``value`` before/after its last ``len(pre)`` axes; negative amounts
    crop instead. Returns ``x`` itself when nothing changes."""
    lead = x.ndim - len(pre)
    crop = tuple(slice(None) for _ in range(lead)) + tuple(
        slice(max(-b, 0), x.shape[lead + i] - max(-a, 0))
        for i, (b, a) in enumerate(zip(pre, post)))
    if any(b < 0 or a < 0 for b, a in zip(pre, post)):
        x = x[crop]
    widths = [(max(b, 0), max(a, 0)) for b, a in zip(pre, post)]
    if all(w == (0, 0) for w in widths):
        return x
    # np.pad's own bookkeeping costs more than the copy for the small images of a network.
    shape = x.shape[:lead] + tuple(n + b + a for n, (b, a) in zip(x.shape[lead:], widths))
    out = np.empty(shape, x.dtype)
    for axis, (b, a) in enumerate(widths, start=lead):
        before = (slice(None),) * axis
        out[before + (slice(0, b),)] = value
        out[before + (slice(shape[axis] - a, shape[axis]),)] = value
    out[(Ellipsis,) + tuple(slice(b, b + n) for (b, _), n in zip(widths, x.shape[lead:]))] = x
    return out


@kernel(LayerType.PADDING, backend="cpu", name="cpu.padding")
def padding(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IPaddingLayer)
    (x,) = inputs
    out = pad_trailing(x, tuple(layer.pre_padding_nd), tuple(layer.post_padding_nd))
    return [np.array(out, copy=True) if out is x else out]
