"""GPU kernels of top-k (a stable sort of the last axis) and cumulative sums."""

from __future__ import annotations

import cupy

from engine.kernels.gpu.capabilities import device_types_only, host_value
from engine.kernels.gpu.math import narrow, widen
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.math_reduction import ICumulativeLayer, ITopKLayer, TopKOperation
from engine.network.shapes import axes_from_mask, normalize_axis


@kernel(LayerType.TOPK, backend="gpu", name="gpu.topk_sort", supports=device_types_only)
def topk(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, ITopKLayer)
    x = inputs[0]
    assert x is not None
    k_input = inputs[1] if len(inputs) > 1 else None
    k = int(layer.k) if k_input is None else int(host_value(k_input))
    (axis,) = axes_from_mask(int(layer.axes), x.ndim)
    if not 0 < k <= x.shape[axis]:
        raise ValueError(f"k is {k} but axis {axis} has {x.shape[axis]} elements")
    moved = cupy.moveaxis(widen(x), axis, -1)
    n = moved.shape[-1]
    if TopKOperation(layer.op) == TopKOperation.MAX:
        # Largest first, equal values in index order: a stable ascending sort of the
        # reversed axis, read backwards.
        order = (n - 1) - cupy.argsort(moved[..., ::-1], axis=-1)[..., ::-1]
    else:
        order = cupy.argsort(moved, axis=-1)
    order = order[..., :k]
    values = cupy.take_along_axis(moved, order, axis=-1)
    return [narrow(cupy.moveaxis(values, -1, axis), x.dtype).copy(),
            cupy.moveaxis(order, -1, axis).astype(cupy.int32)]


@kernel(LayerType.CUMULATIVE, backend="gpu", name="gpu.cumulative_sum",
        supports=device_types_only)
def cumulative(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, ICumulativeLayer)
    x, axis_value = inputs
    axis = normalize_axis(int(host_value(axis_value)), x.ndim)
    wide = widen(x)
    if layer.reverse:
        wide = cupy.flip(wide, axis)
    total = cupy.cumsum(wide, axis=axis, dtype=wide.dtype)
    if layer.exclusive:
        shifted = cupy.zeros_like(total)
        length = total.shape[axis]
        dst = [slice(None)] * total.ndim
        src = [slice(None)] * total.ndim
        dst[axis], src[axis] = slice(1, length), slice(0, max(length - 1, 0))
        shifted[tuple(dst)] = total[tuple(src)]
        total = shifted
    if layer.reverse:
        total = cupy.flip(total, axis)
    return [narrow(total, x.dtype).copy()]
