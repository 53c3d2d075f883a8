"""Weights on the device: each host array of an engine is uploaded once, when the engine is
created, and kernels find the device copy by the ``Weights`` object they hold."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable

import cupy
import numpy as np

from engine.network.layer import ILayer
from engine.types import Weights

# Per Weights object (one per engine: plans decode fresh layers), its device copies by dtype.
_DEVICE: weakref.WeakKeyDictionary[Weights, dict[np.dtype, cupy.ndarray]] = \
    weakref.WeakKeyDictionary()


def device_weights(weights: Weights, dtype: np.dtype | None = None) -> cupy.ndarray:
    """The device copy of ``weights`` (flat host layout kept), converted to ``dtype`` if
    given. Copies are made once; never call this for the first time inside a graph capture
    (the runtime's warm-up run makes every copy first)."""
    copies = _DEVICE.setdefault(weights, {})
    host = weights.numpy()
    want = np.dtype(dtype) if dtype is not None else host.dtype
    array = copies.get(want)
    if array is None:
        assert not cupy.cuda.get_current_stream().is_capturing(), \
            "weights must be uploaded before a CUDA graph capture"
        native = copies.get(host.dtype)
        if native is None:
            native = cupy.asarray(np.ascontiguousarray(host))
            copies[host.dtype] = native
        array = native if want == host.dtype else native.astype(want)
        copies[want] = array
    return array


def upload_weights(layers: Iterable[ILayer]) -> int:
    """Upload every ``Weights`` attribute of ``layers`` that CuPy can hold; returns bytes."""
    total = 0
    for layer in layers:
        for name in type(layer)._attributes:
            value = getattr(layer, name, None)
            if isinstance(value, Weights) and value.size and _device_dtype(value.numpy()):
                total += int(device_weights(value).nbytes)
    cupy.cuda.get_current_stream().synchronize()
    return total


def _device_dtype(host: np.ndarray) -> bool:
    return host.dtype.kind in "biuf" and host.dtype.itemsize in (1, 2, 4, 8) and \
        host.dtype.name in {"bool", "int8", "uint8", "int32", "int64", "float16", "float32"}


# Per layer, device arrays derived from host values (index tables, coefficients), by key.
_DERIVED: weakref.WeakKeyDictionary[ILayer, dict[object, cupy.ndarray]] = \
    weakref.WeakKeyDictionary()


def forget_derived(layer: ILayer) -> None:
    """Drop ``layer``'s derived constants (its weights changed: a refit); they are made again
    from the new weights on the next eager run."""
    _DERIVED.pop(layer, None)


def derived_constant(layer: ILayer, key: object, make: Callable[[], np.ndarray]
                     ) -> cupy.ndarray:
    """The device copy of ``make()`` for ``layer`` and ``key`` (e.g. the input shape), made on
    the first (eager) run and reused, so that a CUDA graph capture copies nothing from the
    host."""
    table = _DERIVED.setdefault(layer, {})
    array = table.get(key)
    if array is None:
        assert not cupy.cuda.get_current_stream().is_capturing(), \
            "derived constants must be made before a CUDA graph capture"
        array = table[key] = cupy.asarray(np.ascontiguousarray(make()))
    return array
