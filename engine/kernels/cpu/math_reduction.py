"""CPU kernels of the reduce, softmax, top-k and cumulative layers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.kernels.cpu.math_elementwise import divide_toward_zero
from engine.kernels.cpu.math_numeric import dtype_of, narrow, widen
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.math_reduction import (
    ICumulativeLayer,
    IReduceLayer,
    ISoftMaxLayer,
    ITopKLayer,
    ReduceOperation,
    TopKOperation,
)
from engine.network.shapes import axes_from_mask, normalize_axis


def _extremes(x: np.ndarray) -> tuple[Any, Any]:
    """(lowest, highest) of ``x``'s type: what MAX and MIN give over an empty volume."""
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        return x.dtype.type(info.min), x.dtype.type(info.max)
    return x.dtype.type(-np.inf), x.dtype.type(np.inf)


@kernel(LayerType.REDUCE, backend="cpu", name="cpu.reduce")
def reduce(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IReduceLayer)
    (x,) = inputs
    axes = axes_from_mask(int(layer.axes), x.ndim)
    keep = bool(layer.keep_dims)
    wide = widen(x)
    op = ReduceOperation(layer.op)
    lowest, highest = _extremes(wide)
    with np.errstate(all="ignore"):
        if op == ReduceOperation.SUM:
            result = np.sum(wide, axis=axes, keepdims=keep, dtype=wide.dtype)
        elif op == ReduceOperation.PROD:
            result = np.prod(wide, axis=axes, keepdims=keep, dtype=wide.dtype)
        elif op == ReduceOperation.MAX:
            result = np.max(wide, axis=axes, keepdims=keep, initial=lowest)
        elif op == ReduceOperation.MIN:
            result = np.min(wide, axis=axes, keepdims=keep, initial=highest)
        else:
            count = math.prod(x.shape[a] for a in axes)
            total = np.sum(wide, axis=axes, keepdims=keep, dtype=wide.dtype)
            if wide.dtype.kind in "iu":
                # Integer mean truncates; over an empty volume it is 0, as TensorRT documents.
                result = divide_toward_zero(total, np.asarray(max(count, 1), wide.dtype))
            else:
                result = total / wide.dtype.type(count)
    return [narrow(result, dtype_of(x))]


@kernel(LayerType.SOFTMAX, backend="cpu", name="cpu.softmax")
def softmax(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, ISoftMaxLayer)
    (x,) = inputs
    (axis,) = axes_from_mask(int(layer.axes), x.ndim)
    wide = widen(x)
    with np.errstate(all="ignore"):
        # Subtracting the maximum keeps exp from overflowing; the result is unchanged.
        shifted = wide - np.max(wide, axis=axis, keepdims=True, initial=-np.inf)
        exp = np.exp(shifted)
        result = exp / np.sum(exp, axis=axis, keepdims=True)
    return [narrow(result, dtype_of(x))]


def _stable_order(values: np.ndarray, largest: bool) -> np.ndarray:
    """Indices that sort the last axis ascending (or descending), equal values keeping their
    order; works for every integer type (no negation, which overflows at the minimum)."""
    if not largest:
        return np.argsort(values, axis=-1, kind="stable")
    n = values.shape[-1]
    reversed_order = np.argsort(values[..., ::-1], axis=-1, kind="stable")[..., ::-1]
    return (n - 1) - reversed_order


@kernel(LayerType.TOPK, backend="cpu", name="cpu.topk")
def topk(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    assert isinstance(layer, ITopKLayer)
    x = inputs[0]
    assert x is not None
    k_input = inputs[1] if len(inputs) > 1 else None
    k = int(layer.k) if k_input is None else int(np.asarray(k_input))
    (axis,) = axes_from_mask(int(layer.axes), x.ndim)
    if not 0 < k <= x.shape[axis]:
        raise ValueError(f"k is {k} but axis {axis} has {x.shape[axis]} elements")
    moved = np.moveaxis(widen(x), axis, -1)
    order = _stable_order(moved, largest=TopKOperation(layer.op) == TopKOperation.MAX)[..., :k]
    values = np.take_along_axis(moved, order, axis=-1)
    return [narrow(np.moveaxis(values, -1, axis), dtype_of(x)),
            np.moveaxis(order, -1, axis).astype(np.int32)]


@kernel(LayerType.CUMULATIVE, backend="cpu", name="cpu.cumulative")
def cumulative(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, ICumulativeLayer)
    x, axis_value = inputs
    axis = normalize_axis(int(np.asarray(axis_value)), x.ndim)
    wide = widen(x)
    if layer.reverse:
        wide = np.flip(wide, axis)
    with np.errstate(all="ignore"):
        total = np.cumsum(wide, axis=axis, dtype=wide.dtype)
    if layer.exclusive:
        shifted = np.zeros_like(total)
        length = total.shape[axis]
        dst = [slice(None)] * total.ndim
        src = [slice(None)] * total.ndim
        dst[axis], src[axis] = slice(1, length), slice(0, max(length - 1, 0))
        shifted[tuple(dst)] = total[tuple(src)]
        total = shifted
    if layer.reverse:
        total = np.flip(total, axis)
    return [narrow(total, dtype_of(x))]
