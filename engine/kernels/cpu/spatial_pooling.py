"""CPU kernel of pooling: reductions over strided views of the input (never padded), the
channels cut into one part per core."""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from engine.kernels.cpu.blas_threads import PARALLEL_MIN_ELEMENTS, run_parts, split
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.spatial_pooling import IPoolingLayer, PoolingType


def _window_reduce(x: np.ndarray, layer: IPoolingLayer, geometry: list[tuple[int, int, int]],
                   combine: np.ufunc, padding: float, out: np.ndarray) -> None:
    """``combine`` over each window of ``x`` into ``out``, one window axis after the other
    (max and sum are separable): a few whole-array operations per axis, the first reading
    contiguous rows, instead of one strided operation per window tap.

    ``padding`` (-inf for a maximum, 0 for a sum) changes nothing it is combined with, so the
    input is never padded: each tap combines only the outputs whose window reads it inside the
    input, and outputs that no tap reaches keep ``padding``."""
    window, strides = tuple(layer.window_size_nd), tuple(layer.stride_nd)
    spatial = len(window)
    # The extents pad_for_windows would pad the input to.
    padded = tuple(pre + n + max(post, (out - 1) * stride + size - n - pre)
                   for (pre, post, out), n, stride, size
                   in zip(geometry, x.shape[-spatial:], strides, window))
    if padded == window:  # one window over everything: a global pooling
        lead: tuple[int, ...] = out.shape[:-spatial]  # typed: with Any dims NumPy picks 0-d
        rows, target = x.reshape(lead + (-1,)), out.reshape(lead)
        if combine is np.add:  # a matrix-vector product: several times faster on short rows
            np.matmul(rows, np.ones(rows.shape[-1], np.float32), out=target)
        else:
            combine.reduce(rows, axis=-1, out=target)
        return
    values = x
    for i, (size, stride, (pre, _, extent)) in enumerate(zip(window, strides, geometry)):
        axis = values.ndim - spatial + i
        target = out if i == spatial - 1 else \
            np.empty(values.shape[:axis] + (extent,) + values.shape[axis + 1:], out.dtype)
        before = (slice(None),) * axis
        # Output o's tap t reads input o * stride + t - pre: the outputs [low, high) read inside.
        reach = [(tap, max(0, -((tap - pre) // stride)),
                  min(extent, (values.shape[axis] - 1 - tap + pre) // stride + 1))
                 for tap in range(size)]
        whole = [r for r in reach if r[1:] == (0, extent)]
        if whole:  # the first tap that every output reads sets the target
            reach.remove(whole[0])
            reach.insert(0, whole[0])
        else:
            target.fill(padding)
        for n, (tap, low, high) in enumerate(reach):
            if high <= low:
                continue
            first = low * stride + tap - pre
            taps = values[before + (slice(first, first + stride * (high - low - 1) + 1, stride),)]
            if n == 0 and whole:
                np.copyto(target, taps)
            else:
                part = target[before + (slice(low, high),)]
                combine(part, taps, out=part)
        values = target


def _counts(layer: IPoolingLayer, extent: tuple[int, ...],
            geometry: list[tuple[int, int, int]]) -> np.ndarray:
    """The count of each average window: its overlap with the input, or (not excluding
    padding) with the padded input; a rounded-up window reaching past the post-padding never
    counts that part."""
    if layer.average_count_excludes_padding:
        ones = np.ones(extent, np.float32)
    else:
        ones = np.ones(tuple(n + b + a for n, (b, a, _) in zip(extent, geometry)), np.float32)
        geometry = [(0, 0, out) for _, _, out in geometry]
    counts = np.empty(tuple(out for _, _, out in geometry), np.float32)
    _window_reduce(ones, layer, geometry, np.add, 0.0, counts)
    return np.maximum(counts, 1.0)


def _pool_rows(x: np.ndarray, layer: IPoolingLayer, geometry: list[tuple[int, int, int]],
               kind: PoolingType, counts: np.ndarray | None, out: np.ndarray,
               start: int, stop: int) -> None:
    """Pooling of rows ``[start, stop)`` of ``x`` ``[rows, *spatial]`` into ``out``."""
    rows, part = x[start:stop], out[start:stop]
    if kind == PoolingType.MAX:  # integer codes pool in their own type: exact
        lowest = np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf
        _window_reduce(rows, layer, geometry, np.maximum, lowest, part)
        return
    _window_reduce(rows, layer, geometry, np.add, 0.0, part)
    part /= counts
    if kind == PoolingType.MAX_AVERAGE_BLEND:
        blend = np.float32(layer.blend_factor)
        maximum = np.empty_like(part)
        _window_reduce(rows, layer, geometry, np.maximum, -np.inf, maximum)
        part *= blend
        part += (1 - blend) * maximum


@kernel(LayerType.POOLING, backend="cpu", name="cpu.pooling_windows")
def pooling(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IPoolingLayer)
    (x,) = inputs
    spatial = len(layer.window_size_nd)
    extent = x.shape[-spatial:]
    geometry = layer.geometry(extent)
    outs = tuple(out for _, _, out in geometry)
    kind = PoolingType(layer.type)
    work = x.dtype if x.dtype.kind in "iu" and kind == PoolingType.MAX else np.float32
    data = x.astype(work, copy=False).reshape((-1,) + extent)
    counts = None if kind == PoolingType.MAX else _counts(layer, extent, geometry)
    out = np.empty((data.shape[0],) + outs, work)
    taps = math.prod(layer.window_size_nd)
    if kind == PoolingType.AVERAGE and tuple(layer.window_size_nd) == tuple(extent):
        taps = 1  # a global average: one matrix-vector product, cheaper than a hand-over
    run_parts(partial(_pool_rows, data, layer, geometry, kind, counts, out),
              split(data.shape[0], out.size * taps, PARALLEL_MIN_ELEMENTS))
    return [out.reshape(x.shape[:-spatial] + outs).astype(x.dtype, copy=False)]
