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
    widths = [(0, 0)] * lead + [(max(b, 0), max(a, 0)) for b, a in zip(pre, post)]
    if any(w != (0, 0) for w in widths):
        x = np.pad(x, widths, mode="constant", constant_values=value)
    return x


@kernel(LayerType.PADDING, backend="cpu", name="cpu.padding")
def padding(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IPaddingLayer)
    (x,) = inputs
    out = pad_trailing(x, tuple(layer.pre_padding_nd), tuple(layer.post_padding_nd))
    return [np.array(out, copy=True) if out is x else out]
