"""CPU kernels of the normalization layers: LRN across channels, and mean/variance
normalization (layer, instance, group)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.spatial_norm import ILRNLayer, INormalizationLayer
from engine.network.shapes import axes_from_mask
from engine.types import DataType


def lrn_window_sums(xp: Any, squares: Any, half: int) -> Any:
    """The sums of ``squares`` (channels first, float32) over each channel's window of
    ``half`` channels either side, clipped at the ends, by differences of a cumulative sum:
    with ``extended[j] = cumulative[clip(j - half, 0, C)]`` (the zero-led cumulative sum),
    channel c's window is ``extended[c + 2 half + 1] - extended[c]``. Slices only (NumPy or
    CuPy: nothing read on the host, so the GPU kernel can be captured)."""
    channels, rest = squares.shape[0], squares.shape[1:]
    cumulative = xp.cumsum(squares, axis=0, dtype=np.float32)
    extended = xp.concatenate([xp.zeros((half + 1,) + rest, np.float32), cumulative,
                               xp.broadcast_to(cumulative[-1:], (half + 1,) + rest)])
    return extended[2 * half + 1:2 * half + 1 + channels] - extended[:channels]


@kernel(LayerType.LRN, backend="cpu", name="cpu.lrn_cumsum")
def lrn(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, ILRNLayer)
    (x,) = inputs
    data = x.astype(np.float32, copy=False)
    axis = x.ndim - 3
    half = (layer.window_size - 1) // 2
    squares = np.moveaxis(data * data, axis, 0)
    sums = np.moveaxis(lrn_window_sums(np, squares, half), 0, axis)
    denominator = (np.float32(layer.k) + np.float32(layer.alpha / layer.window_size) * sums)
    out = data / denominator ** np.float32(layer.beta)
    return [out.astype(x.dtype, copy=False)]


_COMPUTE_TYPES = {DataType.HALF: np.float16}


def _coefficients_fit(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, INormalizationLayer)
    return layer.check_coefficients(inputs)


@kernel(LayerType.NORMALIZATION, backend="cpu", name="cpu.normalization",
        supports=_coefficients_fit)
def normalization(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, INormalizationLayer)
    x, scale, bias = inputs
    compute = _COMPUTE_TYPES.get(DataType(layer.compute_precision), np.float32)
    data = x.astype(compute, copy=False)
    axes = axes_from_mask(int(layer.axes), x.ndim)
    groups = int(layer.num_groups)
    if groups > 1:
        # [N, C, ...] -> [N, G, C/G, ...]: each group normalizes over its channels and axes.
        grouped = data.reshape(x.shape[:1] + (groups, x.shape[1] // groups) + x.shape[2:])
        reduce = (2,) + tuple(a + 1 for a in axes)
        mean = grouped.mean(axis=reduce, keepdims=True)
        centered = grouped - mean
        var = (centered * centered).mean(axis=reduce, keepdims=True)
        normalized = (centered / np.sqrt(var + compute(layer.epsilon))).reshape(x.shape)
    else:
        mean = data.mean(axis=axes, keepdims=True)
        centered = data - mean
        var = (centered * centered).mean(axis=axes, keepdims=True)
        normalized = centered / np.sqrt(var + compute(layer.epsilon))
    scale, bias = (_per_channel(v.astype(compute, copy=False), x.shape, groups)
                   for v in (scale, bias))
    return [(normalized * scale + bias).astype(x.dtype, copy=False)]


def _per_channel(coefficients: np.ndarray, shape: tuple[int, ...], groups: int) -> np.ndarray:
    """Group-norm coefficients given per group ([1, G, 1, ...]) repeated over each group's
    channels; others are returned as they are (they broadcast)."""
    if groups > 1 and coefficients.shape[1] == groups != shape[1]:
        return np.repeat(coefficients, shape[1] // groups, axis=1)
    return coefficients
