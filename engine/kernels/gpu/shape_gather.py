"""GPU kernels of the ND gather mode and of ``IScatterLayer`` (ELEMENT and ND modes): NumPy
advanced indexing on the device. Negative indices count from the end; out-of-range indices
are not reported (checking them would read the device)."""

from __future__ import annotations

import cupy

from engine.kernels.gpu.capabilities import both, device_types_only
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.shape_gather import GatherMode, IGatherLayer, IScatterLayer, ScatterMode


def _wrapped(indices: cupy.ndarray, size: int) -> cupy.ndarray:
    idx = indices.astype(cupy.int64)
    return cupy.where(idx < 0, idx + size, idx)


def nd_coordinates(data_shape: tuple[int, ...], indices: cupy.ndarray, batch: int
                   ) -> tuple[cupy.ndarray, ...]:
    """Coordinates into ``data`` for ND mode: batch positions, then the index tuples."""
    leading = indices.shape[:-1]
    coords = []
    for b in range(batch):
        shape = [1] * len(leading)
        shape[b] = leading[b]
        coords.append(cupy.arange(leading[b]).reshape(shape))
    for j in range(indices.shape[-1]):
        coords.append(_wrapped(indices[..., j], data_shape[batch + j]))
    return tuple(coords)


def _nd_mode(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IGatherLayer)
    return GatherMode(layer.mode) == GatherMode.ND


@kernel(LayerType.GATHER, backend="gpu", name="gpu.gather_nd",
        supports=both(device_types_only, _nd_mode))
def gather_nd(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IGatherLayer)
    data, indices = inputs
    return [data[nd_coordinates(data.shape, indices, layer.num_elementwise_dims)]]


@kernel(LayerType.SCATTER, backend="gpu", name="gpu.scatter_index",
        supports=device_types_only)
def scatter(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IScatterLayer)
    data, indices, updates = inputs
    out = data.copy()
    if layer.mode == ScatterMode.ELEMENT:
        axis = layer.axis % data.ndim
        grid = [cupy.arange(n).reshape([n if i == d else 1 for i in range(indices.ndim)])
                for d, n in enumerate(indices.shape)]
        grid[axis] = _wrapped(indices, data.shape[axis])
        out[tuple(grid)] = updates
    else:
        out[nd_coordinates(data.shape, indices, 0)] = updates
    return [out]
