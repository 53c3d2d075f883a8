"""CPU kernels of the normalization layers: LRN across channels, and mean/variance
normalization (layer, instance, group)."""

from __future__ import annotations

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.spatial_norm import ILRNLayer, INormalizationLayer
from engine.network.shapes import axes_from_mask
from engine.types import DataType


@kernel(LayerType.LRN, backend="cpu", name="cpu.lrn_cumsum")
def lrn(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, ILRNLayer)
    (x,) = inputs
    data = x.astype(np.float32, copy=False)
    axis = x.ndim - 3
    channels = x.shape[axis]
    half = (layer.window_size - 1) // 2
    # Window sums of squares by differences of a zero-led cumulative sum along the channels.
    squares = np.moveaxis(data * data, axis, 0)
    cumulative = np.concatenate([np.zeros((1,) + squares.shape[1:], np.float32),
                                 np.cumsum(squares, axis=0, dtype=np.float32)])
    c = np.arange(channels)
    upper = np.minimum(c + half + 1, channels)
    lower = np.maximum(c - half, 0)
    sums = np.moveaxis(cumulative[upper] - cumulative[lower], 0, axis)
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
