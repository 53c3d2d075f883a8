"""CUDA devices for code above the engine (the server): counting them, running on one,
reading their memory, and opening CUDA IPC memory handles. Part of the runtime's device
layer, so callers never import CuPy themselves; CuPy is imported lazily, and every function
here answers sensibly (no devices) where no GPU backend is usable.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from engine.kernels.backends import gpu_available


def _cupy() -> Any:
    import cupy

    return cupy


def device_count() -> int:
    """How many CUDA devices the GPU backend can use here (0 without one)."""
    return int(_cupy().cuda.runtime.getDeviceCount()) if gpu_available() else 0


def device_uuid(index: int) -> str:
    """The device's UUID as ``nvidia-smi`` prints it (``GPU-xxxxxxxx-...``)."""
    text = bytes(_cupy().cuda.runtime.getDeviceProperties(index)["uuid"]).hex()
    return f"GPU-{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:32]}"


def on_device(index: int) -> contextlib.AbstractContextManager[Any]:
    """A context in which engines are deserialized and run on CUDA device ``index`` (the
    current device is per thread)."""
    return _cupy().cuda.Device(index)  # type: ignore[no-any-return]


def device_memory(index: int) -> tuple[int, int]:
    """(used, total) bytes of CUDA device ``index``."""
    cupy = _cupy()
    with cupy.cuda.Device(index):
        free, total = cupy.cuda.runtime.memGetInfo()
    return int(total - free), int(total)


def to_host(array: Any) -> np.ndarray:
    """An engine output as a NumPy array (a GPU engine returns CuPy arrays)."""
    if isinstance(array, np.ndarray) or not gpu_available():
        return np.asarray(array)
    return _cupy().asnumpy(array)  # type: ignore[no-any-return]


class IpcMemory:
    """Device memory another process shared through a CUDA IPC handle; copies go through
    the host. ``ValueError`` when the handle cannot be opened on ``device_id``."""

    def __init__(self, raw_handle: bytes, device_id: int) -> None:
        cupy = _cupy()
        self.device_id = device_id
        try:
            with cupy.cuda.Device(device_id):
                self._pointer = int(cupy.cuda.runtime.ipcOpenMemHandle(raw_handle))
        except cupy.cuda.runtime.CUDARuntimeError as exc:
            raise ValueError(f"cannot open the CUDA IPC handle on device {device_id}: "
                             f"{exc}") from None

    def read(self, offset: int, byte_size: int) -> bytes:
        runtime = _cupy().cuda.runtime
        host = np.empty(byte_size, np.uint8)
        with on_device(self.device_id):
            runtime.memcpy(host.ctypes.data, self._pointer + offset, byte_size,
                           runtime.memcpyDeviceToHost)
        return host.tobytes()

    def write(self, offset: int, data: bytes) -> None:
        runtime = _cupy().cuda.runtime
        host = np.frombuffer(data, np.uint8)
        with on_device(self.device_id):
            runtime.memcpy(self._pointer + offset, host.ctypes.data, len(data),
                           runtime.memcpyHostToDevice)

    def close(self) -> None:
        with on_device(self.device_id):
            _cupy().cuda.runtime.ipcCloseMemHandle(self._pointer)
