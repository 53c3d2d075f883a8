"""Shared-memory regions (Triton's system and CUDA shared-memory extensions): a client places
tensors in memory it shares with the server, registers a window of it under a name, and
passes inputs and outputs by reference (region name, byte offset, byte size) instead of by
value. One registry serves every front end; region names are one namespace for both kinds.

- A *system* region maps ``/dev/shm/<key>`` read-write from ``offset`` for ``byte_size``
  bytes.
- A *CUDA* region opens a device allocation of another process from its CUDA IPC handle
  (``cudaIpcMemHandle_t``, 64 bytes) on ``device_id``. It needs a GPU; a server without one
  answers registration with ``Unsupported``.

Every access is checked against the registered window; a reference that runs past it is
refused with the region, the offset and the sizes in the message.

>>> registry = SharedMemoryRegistry()
>>> registry.register_system("in", "/my_key", offset=0, byte_size=64)      # doctest: +SKIP
>>> registry.read(RegionReference("in", offset=16, byte_size=16))          # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import mmap
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.runtime import cuda
from server.core.devices import require_gpu
from server.core.errors import InvalidArgument, NotFound

SHM_ROOT = Path("/dev/shm")
# A POSIX shared-memory name: one optional leading slash, then no further slashes.
_KEY = re.compile(r"/?[A-Za-z0-9_.\-]+")
CUDA_IPC_HANDLE_BYTES = 64  # sizeof(cudaIpcMemHandle_t)

# The tensor parameters that place an input or output in a region (Triton's names).
SHM_REGION = "shared_memory_region"
SHM_OFFSET = "shared_memory_offset"
SHM_BYTE_SIZE = "shared_memory_byte_size"

SYSTEM, CUDA = "system", "cuda"


@dataclass(frozen=True)
class RegionReference:
    """``byte_size`` bytes at ``offset`` within the registered region ``region``."""

    region: str
    offset: int
    byte_size: int

    def to_parameters(self) -> dict[str, Any]:
        return {SHM_REGION: self.region, SHM_OFFSET: self.offset,
                SHM_BYTE_SIZE: self.byte_size}


def region_reference(parameters: Mapping[str, Any], where: str) -> RegionReference | None:
    """The region a tensor's ``parameters`` place it in, or None when they place it nowhere.
    ``where`` names the tensor in errors ("input 'INPUT0'")."""
    if SHM_REGION not in parameters:
        for key in (SHM_OFFSET, SHM_BYTE_SIZE):
            if key in parameters:
                raise InvalidArgument(f"{where}: {key} is given without {SHM_REGION}")
        return None
    region = parameters[SHM_REGION]
    if not isinstance(region, str) or not region:
        raise InvalidArgument(f"{where}: {SHM_REGION} must be a region name")
    if SHM_BYTE_SIZE not in parameters:
        raise InvalidArgument(f"{where}: {SHM_REGION} needs {SHM_BYTE_SIZE}")
    offset = _count(parameters.get(SHM_OFFSET, 0), f"{where}: {SHM_OFFSET}")
    byte_size = _count(parameters[SHM_BYTE_SIZE], f"{where}: {SHM_BYTE_SIZE}")
    return RegionReference(region, offset, byte_size)


def cuda_handle_from_json(value: Any) -> bytes:
    """Triton's REST form of a CUDA IPC handle: ``{"b64": "<base64 of the 64 bytes>"}``."""
    if not isinstance(value, dict) or not isinstance(value.get("b64"), str):
        raise InvalidArgument('raw_handle must be an object {"b64": "<base64 handle>"}')
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (ValueError, binascii.Error):
        raise InvalidArgument("raw_handle.b64 is not valid base64") from None


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"{what} must be a non-negative integer, got {value!r}")
    return value


class SystemRegion:
    kind = SYSTEM

    def __init__(self, name: str, key: str, offset: int, byte_size: int,
                 mapping: mmap.mmap) -> None:
        self.name, self.key, self.offset, self.byte_size = name, key, offset, byte_size
        self._mapping = mapping

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "offset": self.offset,
                "byte_size": self.byte_size}

    def read(self, offset: int, byte_size: int) -> bytes:
        start = self.offset + offset
        return self._mapping[start:start + byte_size]

    def write(self, offset: int, data: bytes) -> None:
        start = self.offset + offset
        self._mapping[start:start + len(data)] = data

    def close(self) -> None:
        self._mapping.close()


class CudaRegion:
    kind = CUDA

    def __init__(self, name: str, byte_size: int, memory: cuda.IpcMemory) -> None:
        self.name, self.device_id, self.byte_size = name, memory.device_id, byte_size
        self._memory = memory

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "device_id": self.device_id, "byte_size": self.byte_size}

    def read(self, offset: int, byte_size: int) -> bytes:
        return self._memory.read(offset, byte_size)

    def write(self, offset: int, data: bytes) -> None:
        self._memory.write(offset, data)

    def close(self) -> None:
        self._memory.close()


Region = SystemRegion | CudaRegion
_KIND_NAMES = {SYSTEM: "system shared memory", CUDA: "CUDA shared memory"}


class SharedMemoryRegistry:
    """The regions registered with one server, safe to use from several threads."""

    def __init__(self, root: Path = SHM_ROOT) -> None:
        self._root = root
        self._regions: dict[str, Region] = {}
        self._lock = threading.Lock()

    # -- registration -----------------------------------------------------------------------
    def register_system(self, name: str, key: Any, offset: Any, byte_size: Any) -> None:
        what = f"system shared memory region '{name}'"
        self._check_new(name, what)
        if not isinstance(key, str) or not _KEY.fullmatch(key) or key.strip("/") in (".", ".."):
            raise InvalidArgument(f"{what}: key {key!r} is not a POSIX shared-memory name "
                                  f"(like '/input0')")
        offset = _count(offset, f"{what}: offset")
        byte_size = _count(byte_size, f"{what}: byte_size")
        if byte_size == 0:
            raise InvalidArgument(f"{what}: byte_size must be > 0")
        try:
            fd = os.open(self._root / key.lstrip("/"), os.O_RDWR)
        except FileNotFoundError:
            raise NotFound(f"{what}: no shared-memory object with key {key!r}") from None
        except OSError as exc:
            raise InvalidArgument(f"{what}: cannot open key {key!r}: {exc.strerror}") from None
        try:
            size = os.fstat(fd).st_size
            if offset + byte_size > size:
                raise InvalidArgument(f"{what}: offset {offset} + byte_size {byte_size} "
                                      f"exceeds the {size} bytes of key {key!r}")
            mapping = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self._add(SystemRegion(name, key, offset, byte_size, mapping))

    def register_cuda(self, name: str, raw_handle: bytes, device_id: Any,
                      byte_size: Any) -> None:
        what = f"CUDA shared memory region '{name}'"
        self._check_new(name, what)
        if len(raw_handle) != CUDA_IPC_HANDLE_BYTES:
            raise InvalidArgument(f"{what}: raw_handle has {len(raw_handle)} bytes; a CUDA "
                                  f"IPC handle has {CUDA_IPC_HANDLE_BYTES}")
        device_id = _count(device_id, f"{what}: device_id")
        byte_size = _count(byte_size, f"{what}: byte_size")
        if byte_size == 0:
            raise InvalidArgument(f"{what}: byte_size must be > 0")
        require_gpu("CUDA shared memory")
        count = cuda.device_count()
        if device_id >= count:
            raise InvalidArgument(f"{what}: device_id {device_id}, this server sees {count} "
                                  f"CUDA devices")
        try:
            memory = cuda.IpcMemory(raw_handle, device_id)
        except ValueError as exc:
            raise InvalidArgument(f"{what}: {exc}") from None
        self._add(CudaRegion(name, byte_size, memory))

    def unregister(self, kind: str, name: str = "") -> None:
        """Unregister region ``name`` of ``kind``, or every region of ``kind`` when ``name``
        is empty. As in Triton, an unknown name is not an error: the region is not
        registered either way."""
        with self._lock:
            names = [n for n, r in self._regions.items() if r.kind == kind and name in ("", n)]
            closing = [self._regions.pop(n) for n in names]
        for region in closing:
            region.close()

    def status(self, kind: str, name: str = "") -> list[dict[str, Any]]:
        with self._lock:
            if not name:
                return [r.status() for r in self._regions.values() if r.kind == kind]
            region = self._regions.get(name)
            if region is None or region.kind != kind:
                raise NotFound(f"{_KIND_NAMES[kind]} region '{name}' is not registered")
            return [region.status()]

    def close(self) -> None:
        with self._lock:
            regions, self._regions = list(self._regions.values()), {}
        for region in regions:
            region.close()

    # -- access -------------------------------------------------------------------------------
    def read(self, where: RegionReference) -> bytes:
        """A copy of the bytes ``where`` refers to."""
        with self._lock:
            region = self._window(where.region, where.offset, where.byte_size)
            return region.read(where.offset, where.byte_size)

    def write(self, where: RegionReference, data: bytes, tensor: str) -> None:
        """Write ``data`` (output ``tensor``) at ``where``; its byte size is the space the
        client set aside there, which must hold the data."""
        if len(data) > where.byte_size:
            raise InvalidArgument(f"output '{tensor}' needs {len(data)} bytes; "
                                  f"{SHM_BYTE_SIZE} sets aside {where.byte_size} in region "
                                  f"'{where.region}'")
        with self._lock:
            region = self._window(where.region, where.offset, where.byte_size)
            region.write(where.offset, data)

    def check(self, where: RegionReference) -> None:
        """Refuse ``where`` now if it names no region or runs past its region."""
        with self._lock:
            self._window(where.region, where.offset, where.byte_size)

    def _check_new(self, name: str, what: str) -> None:
        if not name:
            raise InvalidArgument("shared memory region: a name is required")
        with self._lock:
            if name in self._regions:
                raise InvalidArgument(f"{what}: a {_KIND_NAMES[self._regions[name].kind]} "
                                      f"region of that name is already registered")

    def _add(self, region: Region) -> None:
        with self._lock:
            existing = self._regions.get(region.name)
            if existing is None:
                self._regions[region.name] = region
                return
        region.close()
        raise InvalidArgument(f"shared memory region '{region.name}' is already registered")

    def _window(self, name: str, offset: int, byte_size: int) -> Region:
        region = self._regions.get(name)
        if region is None:
            raise NotFound(f"shared memory region '{name}' is not registered")
        if offset + byte_size > region.byte_size:
            raise InvalidArgument(f"shared memory region '{name}': offset {offset} + "
                                  f"byte_size {byte_size} runs past the region's "
                                  f"{region.byte_size} bytes")
        return region
