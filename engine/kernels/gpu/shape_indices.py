"""GPU kernels of one-hot encoding, fill (fill draws on the host, as the CPU kernel does,
and uploads: it reads its parameters on the host) and non-zero (its output's length is the
count of non-zero values, known on the host only after the device has counted them)."""

from __future__ import annotations

import cupy
import numpy as np

from engine.kernels.gpu.capabilities import device_types_only, host_synchronizing, host_value
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.shape_fill import IFillLayer, fill_values
from engine.network.layers.shape_indices import INonZeroLayer, IOneHotLayer


@kernel(LayerType.ONE_HOT, backend="gpu", name="gpu.one_hot", supports=device_types_only)
def one_hot(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IOneHotLayer)
    indices, values, depth_value = inputs
    depth = int(host_value(depth_value).reshape(-1)[0])
    idx = indices.astype(cupy.int64)
    idx = cupy.where(idx < 0, idx + depth, idx)  # out-of-range indices match no position
    axis = layer.axis % (idx.ndim + 1)
    positions = cupy.arange(depth).reshape((-1,) + (1,) * (idx.ndim - axis))
    hot = cupy.expand_dims(idx, axis) == positions
    return [cupy.where(hot, values[1], values[0]).astype(values.dtype)]


@kernel(LayerType.FILL, backend="gpu", name="gpu.fill_host", supports=device_types_only)
@host_synchronizing
def fill(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IFillLayer)
    given = list(inputs) + [None] * (3 - len(inputs))
    shape_in, alpha_in, beta_in = given[:3]
    shape = tuple(layer.shape) if shape_in is None else \
        tuple(int(d) for d in host_value(shape_in).reshape(-1))
    alpha = layer.alpha if alpha_in is None else host_value(alpha_in)
    beta = layer.beta if beta_in is None else host_value(beta_in)
    values = fill_values(layer.operation, shape, alpha, beta, layer.to_type, layer.seed)
    return [cupy.asarray(np.ascontiguousarray(values))]


@kernel(LayerType.NON_ZERO, backend="gpu", name="gpu.non_zero", supports=device_types_only)
@host_synchronizing
def non_zero(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    """The coordinates of the non-zero elements, ``[rank, count]`` INT64 in row-major order
    (``cupy.nonzero``, which reads the count back to size its result)."""
    assert isinstance(layer, INonZeroLayer)
    (x,) = inputs
    if x.ndim == 0:
        return [cupy.zeros((0, int(bool(x.get()))), cupy.int64)]
    return [cupy.stack(cupy.nonzero(x)).astype(cupy.int64, copy=False).reshape(x.ndim, -1)]
