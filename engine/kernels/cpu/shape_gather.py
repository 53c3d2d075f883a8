"""CPU kernels of ``IGatherLayer`` and ``IScatterLayer``."""

from __future__ import annotations

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.shape_gather import (
    GatherMode,
    IGatherLayer,
    IScatterLayer,
    ScatterMode,
    ScatterReduction,
)


def normalized_indices(indices: np.ndarray, size: int, what: str) -> np.ndarray:
    """``indices`` with negatives counted from the end; ``ValueError`` outside [-size, size)."""
    idx = np.asarray(indices).astype(np.int64)
    if idx.size and (idx.min() < -size or idx.max() >= size):
        bad = idx[(idx < -size) | (idx >= size)].reshape(-1)[0]
        raise ValueError(f"{what}: index {int(bad)} is out of range for an axis of size {size}")
    return np.where(idx < 0, idx + size, idx)


def element_coordinates(indices: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    """Full coordinates for ELEMENT mode: each index's own position, ``indices`` on ``axis``."""
    grid: list[np.ndarray] = list(np.indices(indices.shape, sparse=True))
    grid[axis] = indices
    return tuple(grid)


def nd_coordinates(data_shape: tuple[int, ...], indices: np.ndarray, batch: int
                   ) -> tuple[np.ndarray, ...]:
    """Coordinates into ``data`` for ND mode: batch positions, then the index tuples."""
    depth = indices.shape[-1]
    leading = indices.shape[:-1]
    coords = []
    for b in range(batch):
        shape = [1] * len(leading)
        shape[b] = leading[b]
        coords.append(np.arange(leading[b]).reshape(shape))
    for j in range(depth):
        size = data_shape[batch + j]
        coords.append(normalized_indices(indices[..., j], size, f"dim {batch + j}"))
    return tuple(coords)


@kernel(LayerType.GATHER, backend="cpu", name="cpu.gather")
def gather(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IGatherLayer)
    data, indices = inputs
    axis = layer.axis
    if layer.mode == GatherMode.ND:
        return [data[nd_coordinates(data.shape, indices, layer.num_elementwise_dims)]]
    idx = normalized_indices(indices, data.shape[axis], f"gather along axis {axis}")
    if layer.mode == GatherMode.ELEMENT:
        return [data[element_coordinates(idx, axis)]]
    if layer.num_elementwise_dims == 1:
        parts = [np.take(data[i], idx[i], axis=axis - 1) for i in range(data.shape[0])]
        shape = data.shape[:axis] + indices.shape[1:] + data.shape[axis + 1:]
        return [np.stack(parts).reshape(shape) if parts else np.zeros(shape, data.dtype)]
    return [np.take(data, idx, axis=axis)]


@kernel(LayerType.SCATTER, backend="cpu", name="cpu.scatter")
def scatter(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IScatterLayer)
    data, indices, updates = inputs
    out = data.copy()
    if layer.mode == ScatterMode.ELEMENT:
        idx = normalized_indices(indices, data.shape[layer.axis],
                                 f"scatter along axis {layer.axis}")
        coords = element_coordinates(idx, layer.axis)
    else:
        coords = nd_coordinates(data.shape, indices, 0)
    fold = _FOLDS.get(layer.reduction)
    if fold is None:
        out[coords] = updates
    else:
        # unbuffered: every update addressing one element is folded in, in order
        fold.at(out, coords, updates)
    return [out]


_FOLDS = {ScatterReduction.SUM: np.add, ScatterReduction.PROD: np.multiply,
          ScatterReduction.MAX: np.maximum, ScatterReduction.MIN: np.minimum}
