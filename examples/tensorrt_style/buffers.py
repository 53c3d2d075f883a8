"""I/O buffers for the example scripts, where the engine's target wants them: NumPy arrays
and host pointers on the CPU target, CuPy arrays and device pointers on the GPU (as one
allocates with cudaMalloc for TensorRT)."""

from __future__ import annotations

from typing import Any

import numpy as np


def on_gpu(engine: Any) -> bool:
    return engine.target["backend"] == "gpu"


def allocate(engine: Any, shape: tuple[int, ...], dtype: Any) -> tuple[Any, int]:
    """A zeroed buffer and its address for ``engine``'s target."""
    if on_gpu(engine):
        import cupy

        array = cupy.zeros(shape, dtype)
        return array, int(array.data.ptr)
    array = np.zeros(shape, dtype)
    return array, int(array.ctypes.data)


def upload(buffer: Any, values: np.ndarray) -> None:
    """Copy host ``values`` into ``buffer``."""
    if isinstance(buffer, np.ndarray):
        np.copyto(buffer, values)
    else:
        buffer.set(np.ascontiguousarray(values, dtype=buffer.dtype))


def download(buffer: Any) -> np.ndarray:
    """``buffer`` as a host array (waits for the work queued on the default stream)."""
    return buffer if isinstance(buffer, np.ndarray) else buffer.get()
