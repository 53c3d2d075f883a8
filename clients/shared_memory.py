"""Tensors passed through shared memory (Triton's shared-memory extension): a region of
``/dev/shm`` this process creates, and references to places in a registered region that
``Client.infer`` sends instead of tensor data.

>>> with SystemSharedMemoryRegion.create("io", 1024) as shm:                 # doctest: +SKIP
...     client.register_system_shared_memory(shm.name, shm.key, shm.byte_size)
...     client.infer("add_sub", {"INPUT0": shm.place(a, 0), "INPUT1": shm.place(b, 64)},
...                  outputs={"OUTPUT0": shm.output(512, 64)})
...     shm.read(512, "FP32", [1, 16])                # OUTPUT0, written by the server
...     client.unregister_system_shared_memory(shm.name)

A CUDA region is the device allocation of an IPC handle: pass ``RegionInput`` and
``RegionOutput`` naming it the same way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from multiprocessing import shared_memory
from types import TracebackType
from typing import Any

import numpy as np

from clients.tensors import datatype_of, from_bytes, to_bytes


@dataclass(frozen=True)
class RegionOutput:
    """Where the server writes an output: ``byte_size`` bytes at ``offset`` of ``region``."""

    region: str
    offset: int
    byte_size: int

    def parameters(self) -> dict[str, Any]:
        return {"shared_memory_region": self.region, "shared_memory_offset": self.offset,
                "shared_memory_byte_size": self.byte_size}


@dataclass(frozen=True)
class RegionInput(RegionOutput):
    """An input tensor that lies in a registered region, with its datatype and shape."""

    datatype: str = ""
    shape: tuple[int, ...] = ()


class SystemSharedMemoryRegion:
    """A POSIX shared-memory object of this process (``/dev/shm/<key>``), to register with a
    server under ``name``. Closing it unlinks the object."""

    def __init__(self, name: str, memory: shared_memory.SharedMemory, byte_size: int) -> None:
        self.name = name
        self.byte_size = byte_size
        self._memory = memory

    @classmethod
    def create(cls, name: str, byte_size: int, key: str | None = None
               ) -> SystemSharedMemoryRegion:
        """A new zero-filled object of ``byte_size`` bytes; ``key`` defaults to a unique
        one derived from ``name``."""
        key = (key or f"{name}_{uuid.uuid4().hex[:12]}").lstrip("/")
        return cls(name, shared_memory.SharedMemory(key, create=True, size=byte_size),
                   byte_size)

    @property
    def key(self) -> str:
        return "/" + self._memory.name.lstrip("/")

    def place(self, array: np.ndarray, offset: int = 0) -> RegionInput:
        """Write ``array`` at ``offset``; returns the input reference for ``infer``."""
        array = np.asarray(array)
        blob = to_bytes(array)
        self._check(offset, len(blob))
        self._buffer[offset:offset + len(blob)] = blob
        return RegionInput(self.name, offset, len(blob), datatype_of(array), array.shape)

    def output(self, offset: int, byte_size: int) -> RegionOutput:
        """Set aside ``byte_size`` bytes at ``offset`` for an output."""
        self._check(offset, byte_size)
        return RegionOutput(self.name, offset, byte_size)

    def read(self, offset: int, datatype: str, shape: list[int]) -> np.ndarray:
        """The tensor of ``datatype`` and ``shape`` at ``offset``."""
        if datatype == "BYTES":
            raise ValueError("read BYTES tensors by their serialized bytes: their size is "
                             "in their data")
        size = int(np.prod(shape)) * from_bytes(b"", datatype, [0]).itemsize
        self._check(offset, size)
        return from_bytes(bytes(self._buffer[offset:offset + size]), datatype, shape)

    @property
    def _buffer(self) -> memoryview:
        buffer = self._memory.buf
        if buffer is None:
            raise ValueError(f"region '{self.name}' is closed")
        return buffer

    def close(self) -> None:
        self._memory.close()
        self._memory.unlink()

    def _check(self, offset: int, byte_size: int) -> None:
        if offset < 0 or offset + byte_size > self.byte_size:
            raise ValueError(f"region '{self.name}': {byte_size} bytes at offset {offset} run "
                             f"past its {self.byte_size} bytes")

    def __enter__(self) -> SystemSharedMemoryRegion:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
