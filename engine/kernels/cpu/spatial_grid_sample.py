"""CPU kernel of the grid sample layer, and the sampling itself on NumPy or CuPy arrays (``xp``)
for any number of spatial dimensions: the GPU kernel and the ``GridSample_TRT`` plugin (ONNX's
volumetric GridSample) run the same code."""

from __future__ import annotations

import operator
from functools import reduce
from itertools import product
from typing import Any

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.shape_slice import SampleMode
from engine.network.layers.spatial_grid_sample import IGridSampleLayer
from engine.network.layers.spatial_resize import InterpolationMode

_CUBIC_A = -0.75


def _reflect(xp: Any, x: Any, low: float, high: float) -> Any:
    """Reflect ``x`` about the borders until it lies in [low, high]."""
    span = high - low
    if span <= 0:
        return xp.full_like(x, low)
    below, above = low - x, x - high
    out = x.copy()
    for dist, near, far, mask in ((below, low, high, x < low), (above, high, low, x > high)):
        folds = xp.trunc(dist / span)
        rest = dist - folds * span
        sign = 1.0 if near == low else -1.0
        moved = xp.where(folds % 2 == 0, near + sign * rest, far - sign * rest)
        out = xp.where(mask, moved, out)
    return out


def _cubic_weights(t: Any) -> list[Any]:
    """Keys' cubic convolution weights of the 4 taps at -1, 0, 1, 2 for fraction ``t``."""
    a = _CUBIC_A

    def near(d: Any) -> Any:  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: Any) -> Any:  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def grid_sample(xp: Any, x: Any, grid: Any, *, interpolation: InterpolationMode,
                sample_mode: SampleMode, align_corners: bool) -> Any:
    """``x`` [N, C, D1, ..., Dr] read at ``grid`` [N, H1, ..., Hr, r] (normalized coordinates,
    innermost dimension first): [N, C, H1, ..., Hr] of ``x``'s type. ``sample_mode`` is FILL
    (zeros), CLAMP (border) or REFLECT. Positions are computed in float32 (as ONNX's reference
    does: a NEAREST position then rounds alike), the weighted sums in float64."""
    n, c = x.shape[:2]
    dims = x.shape[2:]
    r = len(dims)
    out_spatial = grid.shape[1:-1]
    norm = grid[..., ::-1].astype(np.float32)  # outermost spatial dim first
    coords, lows, highs = [], [], []
    for i, d in enumerate(dims):
        g = norm[..., i]
        if align_corners:
            pos, low, high = (g + 1) / 2 * (d - 1), 0.0, d - 1.0
        else:
            pos, low, high = ((g + 1) * d - 1) / 2, -0.5, d - 0.5
        if interpolation == InterpolationMode.NEAREST:
            pos = xp.rint(pos)
        if sample_mode == SampleMode.CLAMP:
            pos = xp.where((pos < low) | (pos > high), xp.clip(pos, 0, d - 1), pos)
        elif sample_mode == SampleMode.REFLECT:
            pos = _reflect(xp, pos, low, high)
        coords.append(pos)
        lows.append(low)
        highs.append(high)
    batch = xp.arange(n).reshape((n,) + (1,) * len(out_spatial))
    channels_last = xp.moveaxis(x, 1, -1)

    def fetch(indices: list[Any]) -> Any:
        """X at integer ``indices`` (one array per spatial axis): [N, *out, C], float64."""
        valid = xp.ones(indices[0].shape, bool)
        fixed = []
        for i, (idx, d) in enumerate(zip(indices, dims)):
            if sample_mode == SampleMode.FILL:
                valid &= (idx >= 0) & (idx < d)
                idx = xp.clip(idx, 0, d - 1)
            elif sample_mode == SampleMode.CLAMP:
                idx = xp.clip(idx, 0, d - 1)
            else:
                idx = xp.trunc(_reflect(xp, idx.astype(np.float64), lows[i], highs[i]))
                idx = xp.clip(idx.astype(np.int64), 0, d - 1)
            fixed.append(idx.astype(np.int64))
        values = channels_last[(batch, *fixed)].astype(np.float64)
        return values * valid[..., None]

    if interpolation == InterpolationMode.NEAREST:
        out = fetch([p.astype(np.int64) for p in coords])
    else:
        base = [xp.floor(p) for p in coords]
        frac = [p - b for p, b in zip(coords, base)]
        if interpolation == InterpolationMode.LINEAR:
            taps = [0, 1]
            weights = [[1 - f, f] for f in frac]
        else:
            taps = [-1, 0, 1, 2]
            weights = [_cubic_weights(f) for f in frac]
        out = xp.zeros((n,) + tuple(out_spatial) + (c,), np.float64)
        for choice in product(range(len(taps)), repeat=r):
            idx = [b.astype(np.int64) + taps[k] for b, k in zip(base, choice)]
            w = reduce(operator.mul, [weights[i][k] for i, k in enumerate(choice)])
            out += fetch(idx) * w[..., None]
    return xp.moveaxis(out, -1, 1).astype(x.dtype)


@kernel(LayerType.GRID_SAMPLE, backend="cpu", name="cpu.grid_sample")
def grid_sample_layer(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IGridSampleLayer)
    x, grid = inputs
    return [grid_sample(np, x, grid, interpolation=layer.interpolation_mode,
                        sample_mode=layer.sample_mode, align_corners=layer.align_corners)]
