"""CPU kernel of pooling: reductions over strided window views."""

from __future__ import annotations

import numpy as np

from engine.kernels.cpu.spatial_conv import pad_for_windows, strided_windows
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.spatial_pooling import IPoolingLayer, PoolingType


def _reduce_taps(views: np.ndarray, spatial: int, combine: np.ufunc) -> np.ndarray:
    """``combine`` over the window axes of ``views``, one strided slice per tap: a loop of
    whole-array operations, much faster than NumPy reducing many tiny trailing axes."""
    out = None
    for tap in np.ndindex(*views.shape[-spatial:]):
        values = views[(Ellipsis,) + tap]
        out = values.copy() if out is None else combine(out, values, out=out)
    assert out is not None
    return out


def _window_sums(x: np.ndarray, layer: IPoolingLayer, geometry: list[tuple[int, int, int]]
                 ) -> np.ndarray:
    window, strides = tuple(layer.window_size_nd), tuple(layer.stride_nd)
    spatial = len(window)
    padded = pad_for_windows(x, geometry, window, strides, 0.0)
    outs = [out for _, _, out in geometry]
    views = strided_windows(padded, window, strides, (1,) * spatial, outs)
    return _reduce_taps(views, spatial, np.add)


def _average(x: np.ndarray, layer: IPoolingLayer, geometry: list[tuple[int, int, int]]
             ) -> np.ndarray:
    spatial = len(layer.window_size_nd)
    sums = _window_sums(x, layer, geometry)
    # The count of each window: its overlap with the input, or (not excluding padding) with
    # the padded input; a rounded-up window reaching past the post-padding never counts that
    # part.
    extent = x.shape[-spatial:]
    if layer.average_count_excludes_padding:
        ones = np.ones(extent, np.float32)
    else:
        ones = np.ones(tuple(n + b + a for n, (b, a, _) in zip(extent, geometry)), np.float32)
        geometry = [(0, 0, out) for _, _, out in geometry]
    counts = _window_sums(ones, layer, geometry)
    return sums / np.maximum(counts, 1.0)


def _maximum(x: np.ndarray, layer: IPoolingLayer, geometry: list[tuple[int, int, int]]
             ) -> np.ndarray:
    window, strides = tuple(layer.window_size_nd), tuple(layer.stride_nd)
    spatial = len(window)
    padded = pad_for_windows(x, geometry, window, strides, -np.inf)
    outs = [out for _, _, out in geometry]
    views = strided_windows(padded, window, strides, (1,) * spatial, outs)
    return _reduce_taps(views, spatial, np.maximum)


@kernel(LayerType.POOLING, backend="cpu", name="cpu.pooling_windows")
def pooling(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IPoolingLayer)
    (x,) = inputs
    spatial = len(layer.window_size_nd)
    geometry = layer.geometry(x.shape[-spatial:])
    data = x.astype(np.float32, copy=False)
    kind = PoolingType(layer.type)
    if kind == PoolingType.MAX:
        out = _maximum(data, layer, geometry)
    elif kind == PoolingType.AVERAGE:
        out = _average(data, layer, geometry)
    else:
        blend = np.float32(layer.blend_factor)
        maximum, average = _maximum(data, layer, geometry), _average(data, layer, geometry)
        out = (1 - blend) * maximum + blend * average
    return [out.astype(x.dtype, copy=False)]
