"""What a GPU kernel can take and do: the element types CuPy holds, and whether a kernel may
be captured into a CUDA graph (it may not if it reads device values on the host)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import cupy
import numpy as np

from engine.network.layer import ILayer, TensorInfo
from engine.types import DataType

# CuPy has no bfloat16, FP8 or INT4 arrays.
DEVICE_TYPES = frozenset({DataType.FLOAT, DataType.HALF, DataType.INT8, DataType.INT32,
                          DataType.INT64, DataType.BOOL, DataType.UINT8})

F = TypeVar("F", bound=Callable[..., Any])


def device_types_only(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    """A ``supports`` predicate: every input and requested output type is one CuPy holds."""
    if any(i is not None and i.dtype not in DEVICE_TYPES for i in inputs):
        return False
    return all(dtype in DEVICE_TYPES for dtype in layer._output_types.values())


def both(*predicates: Callable[[ILayer, list[TensorInfo | None]], bool]
         ) -> Callable[[ILayer, list[TensorInfo | None]], bool]:
    """A ``supports`` predicate that holds where all of ``predicates`` hold."""
    return lambda layer, inputs: all(p(layer, inputs) for p in predicates)


def probe(make: Callable[[], object]) -> bool:
    """Whether ``make()`` succeeds: an optional library's module imports and makes a handle
    on this device (no module, no library, no device: False, and that library's tactics are
    not offered)."""
    try:
        make()
    except Exception:  # noqa: BLE001 - whatever fails, the library is not usable here
        return False
    return True


def host_synchronizing(fn: F) -> F:
    """Mark a kernel that reads device values on the host: engines using it run without
    CUDA graphs."""
    fn.host_synchronizing = True  # type: ignore[attr-defined]
    return fn


def is_capturable(fn: Callable[..., Any]) -> bool:
    return not getattr(fn, "host_synchronizing", False)


def host_value(value: Any) -> np.ndarray:
    """A shape-tensor input as a NumPy array. The runtime passes shape inputs whose values
    inference knows as NumPy already; anything else is read back (a host synchronization)."""
    if isinstance(value, cupy.ndarray):
        return cupy.asnumpy(value)
    return np.asarray(value)


def contiguous(x: cupy.ndarray) -> cupy.ndarray:
    """``x`` in C order, copied only if needed; keeps 0-d arrays 0-d (unlike
    ``cupy.ascontiguousarray``, which makes them 1-d). A copy whose rows (last axis) stay
    contiguous moves 8 or 4 bytes per element (a bit-exact copy of a wider view)."""
    if x.flags.c_contiguous:
        return x
    wide = _widened(x)
    if wide is None:
        return x.copy()
    return wide.copy().view(x.dtype).reshape(x.shape)


_WIDE_TYPES = {8: np.uint64, 4: np.uint32}


def _widened(x: cupy.ndarray) -> cupy.ndarray | None:
    """``x`` viewed with elements of 8 or 4 bytes along its contiguous last axis, if it
    splits so."""
    if x.ndim == 0 or x.size == 0 or x.strides[-1] != x.itemsize:
        return None
    row = x.shape[-1] * x.itemsize
    for width, wide_type in _WIDE_TYPES.items():
        if width > x.itemsize and row % width == 0 and x.data.ptr % width == 0 and \
                all(s % width == 0 for s in x.strides[:-1]):
            return cupy.ndarray(x.shape[:-1] + (row // width,), wide_type, memptr=x.data,
                                strides=x.strides[:-1] + (width,))
    return None


def memory_order(x: cupy.ndarray) -> tuple[int, ...] | None:
    """The axis order under which ``x`` is C-contiguous (a transposed view of a dense buffer,
    e.g. channels-last), or None where ``x`` is C-contiguous already or not dense. A pointwise
    kernel run on ``x.transpose(order)`` walks memory in order and writes its result in the
    same layout as ``x``."""
    if x.flags.c_contiguous or x.ndim < 2:
        return None
    order = tuple(sorted(range(x.ndim), key=lambda axis: (-x.strides[axis], axis)))
    return order if x.transpose(order).flags.c_contiguous else None


# -- the channels-last format -------------------------------------------------------------------
# A tensor ``[N, C, *spatial]`` may live on the device channels-last: the same shape, with
# ``[N, *spatial, C]`` memory (a transposed view, as PyTorch's ``channels_last``). cuDNN's
# convolutions write it; kernels that need C order copy (``contiguous``).
def channels_last_strides(shape: tuple[int, ...]) -> list[int]:
    """Element strides of ``[N, C, *spatial]`` laid out channels-last."""
    n, c, *spatial = (max(int(d), 1) for d in shape)
    strides, step = [], c
    for d in reversed(spatial):
        strides.append(step)
        step *= d
    return [step, 1] + strides[::-1]


def is_channels_last(x: cupy.ndarray) -> bool:
    return x.ndim >= 3 and list(x.strides) == [s * x.itemsize
                                               for s in channels_last_strides(x.shape)]


def channels_last(x: cupy.ndarray) -> cupy.ndarray:
    """``x`` ``[N, C, *spatial]`` channels-last: itself if it is, else a reformatted copy."""
    if is_channels_last(x):
        return x
    order = (0,) + tuple(range(2, x.ndim)) + (1,)
    return cupy.ascontiguousarray(x.transpose(order)).transpose(_FROM_LAST[x.ndim])


def empty_channels_last(shape: tuple[int, ...], dtype: Any) -> cupy.ndarray:
    n, c, *spatial = shape
    return cupy.empty((n, *spatial, c), dtype).transpose(_FROM_LAST[len(shape)])


_FROM_LAST = {rank: (0, rank - 1) + tuple(range(1, rank - 1)) for rank in range(3, 9)}
