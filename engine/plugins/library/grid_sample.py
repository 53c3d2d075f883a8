"""``GridSample_TRT``: sampling an image at the points of a grid, as ONNX's ``GridSample``
(opsets 16 and 20; any number of spatial dimensions).

Inputs: ``X`` [N, C, D1, ..., Dr], ``grid`` [N, H1, ..., Hr, r] holding normalized coordinates
in [-1, 1], innermost dimension first (x, y, ...). Output [N, C, H1, ..., Hr] of ``X``'s type.
Fields: ``mode`` (0 nearest, rounding halves to even; 1 linear; 2 cubic, Keys' kernel with
a = -0.75), ``padding_mode`` (0 zeros, 1 border, 2 reflection), ``align_corners`` (1: -1 and
1 are the centres of the corner pixels; 0: their outer edges).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import reduce
from itertools import product
from typing import Any

import numpy as np

from engine.plugins.dimensions import DimsExprs
from engine.plugins.interfaces import PluginFieldType
from engine.plugins.library.base import LibraryPlugin, array_module, register_library_plugin
from engine.types import DataType

NEAREST, LINEAR, CUBIC = 0, 1, 2
ZEROS, BORDER, REFLECTION = 0, 1, 2
_CUBIC_A = -0.75


def _reflect(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Reflect ``x`` about the borders until it lies in [low, high]."""
    xp = array_module(x)
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


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """Keys' cubic convolution weights of the 4 taps at -1, 0, 1, 2 for fraction ``t``."""
    a = _CUBIC_A

    def near(d: np.ndarray) -> np.ndarray:  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: np.ndarray) -> np.ndarray:  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def grid_sample(x: np.ndarray, grid: np.ndarray, *, mode: int, padding_mode: int,
                align_corners: bool) -> np.ndarray:
    xp = array_module(x)
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
        if mode == NEAREST:
            pos = xp.rint(pos)
        if padding_mode == BORDER:
            pos = xp.where((pos < low) | (pos > high), xp.clip(pos, 0, d - 1), pos)
        elif padding_mode == REFLECTION:
            pos = _reflect(pos, low, high)
        coords.append(pos)
        lows.append(low)
        highs.append(high)
    batch = xp.arange(n).reshape((n,) + (1,) * len(out_spatial))

    def fetch(indices: list[np.ndarray]) -> np.ndarray:
        """X at integer ``indices`` (one array per spatial axis): [N, *out, C]."""
        valid = xp.ones(indices[0].shape, bool)
        fixed = []
        for i, (idx, d) in enumerate(zip(indices, dims)):
            if padding_mode == ZEROS:
                valid &= (idx >= 0) & (idx < d)
                idx = xp.clip(idx, 0, d - 1)
            elif padding_mode == BORDER:
                idx = xp.clip(idx, 0, d - 1)
            else:
                idx = xp.trunc(_reflect(idx.astype(np.float64), lows[i], highs[i]))
                idx = xp.clip(idx.astype(np.int64), 0, d - 1)
            fixed.append(idx.astype(np.int64))
        values = xp.moveaxis(x, 1, -1)[(batch, *fixed)]
        return values * valid[..., None]

    if mode == NEAREST:
        out = fetch([p.astype(np.int64) for p in coords])
    else:
        base = [xp.floor(p) for p in coords]
        frac = [p - b for p, b in zip(coords, base)]
        if mode == LINEAR:
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


@register_library_plugin
class GridSamplePlugin(LibraryPlugin):
    NAME = "GridSample_TRT"
    FIELDS = {
        "mode": (PluginFieldType.INT32, LINEAR),
        "padding_mode": (PluginFieldType.INT32, ZEROS),
        "align_corners": (PluginFieldType.INT32, 0),
    }

    def check(self) -> None:
        if self.mode not in (0, 1, 2) or self.padding_mode not in (0, 1, 2):
            raise ValueError("GridSample_TRT: mode and padding_mode must be 0, 1 or 2")

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        return [DataType(input_types[0])]

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        if len(inputs) != 2 or len(inputs[0]) < 3 or len(inputs[1]) != len(inputs[0]):
            raise ValueError("GridSample_TRT takes X [N, C, D1..Dr] and grid [N, H1..Hr, r]")
        x, grid = inputs
        return [DimsExprs([x[0], x[1], *list(grid)[1:-1]])]

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        outputs[0][...] = grid_sample(inputs[0], inputs[1],
                                      mode=self.mode, padding_mode=self.padding_mode,
                                      align_corners=bool(self.align_corners))
