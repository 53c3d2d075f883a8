"""CPU kernel of ``ISliceLayer``: per-axis index arrays, mapped by the layer's SampleMode."""

from __future__ import annotations

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.shape_slice import ISliceLayer, SampleMode, slice_indices


def _values(given: np.ndarray | None, attribute: tuple[int, ...]) -> tuple[int, ...]:
    if given is None:
        return tuple(attribute)
    return tuple(int(v) for v in np.asarray(given).reshape(-1))


@kernel(LayerType.SLICE, backend="cpu", name="cpu.slice")
def slice_(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    assert isinstance(layer, ISliceLayer)
    x = inputs[0]
    assert x is not None
    extra = list(inputs[1:]) + [None] * (6 - len(inputs))
    start_in, size_in, stride_in, fill_in, axes_in = extra[:5]
    start = _values(start_in, layer.start)
    size = _values(size_in, layer.shape)
    stride = _values(stride_in, layer.stride)
    default_axes = tuple(range(x.ndim)) if layer.axes is None else tuple(layer.axes)
    axes = tuple(a % x.ndim for a in _values(axes_in, default_axes))
    index, inside = slice_indices(layer.mode, x.shape, axes, start, size, stride)
    out_shape = tuple(len(i) for i in index)
    if layer.mode == SampleMode.FILL:
        fill = np.zeros((), x.dtype) if fill_in is None else \
            np.asarray(fill_in).reshape(()).astype(x.dtype)
        if x.size == 0:
            return [np.full(out_shape, fill, x.dtype)]
        return [np.where(inside, x[np.ix_(*index)], fill).astype(x.dtype)]
    return [x[np.ix_(*index)] if x.ndim else x.copy()]
