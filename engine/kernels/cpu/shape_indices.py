"""CPU kernels of ``IOneHotLayer`` and ``INonZeroLayer``."""

from __future__ import annotations

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.shape_indices import IOneHotLayer, nonzero_indices


@kernel(LayerType.ONE_HOT, backend="cpu", name="cpu.one_hot")
def one_hot(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IOneHotLayer)
    indices, values, depth_value = inputs
    depth = int(np.asarray(depth_value).reshape(-1)[0])
    idx = np.asarray(indices).astype(np.int64)
    idx = np.where(idx < 0, idx + depth, idx)  # out-of-range indices match no position
    axis = layer.axis % (idx.ndim + 1)
    positions = np.arange(depth).reshape((-1,) + (1,) * (idx.ndim - axis))
    hot = np.expand_dims(idx, axis) == positions
    off, on = values[0], values[1]
    return [np.where(hot, on, off).astype(values.dtype)]


@kernel(LayerType.NON_ZERO, backend="cpu", name="cpu.non_zero")
def non_zero(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [nonzero_indices(inputs[0])]
