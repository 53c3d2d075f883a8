"""System shared-memory regions (Triton's shared-memory extension): a client places tensors
in a POSIX shared-memory object, registers a window of it under a name, and passes inputs and
outputs by reference (region name, byte offset, byte size) instead of by value.

A region maps ``/dev/shm/<key>`` read-write from ``offset`` for ``byte_size`` bytes. Every
access is checked against the registered window; a reference that runs past it is refused
with the region, the offset and the sizes in the message.

>>> regions = SharedMemoryRegions()
>>> regions.register("in", "/my_key", offset=0, byte_size=64)   # doctest: +SKIP
>>> regions.read("in", offset=16, byte_size=16)                  # doctest: +SKIP
"""

from __future__ import annotations

import mmap
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from server.core.errors import InvalidArgument, NotFound

SHM_ROOT = Path("/dev/shm")
# A POSIX shared-memory name: one optional leading slash, then no further slashes.
_KEY = re.compile(r"/?[A-Za-z0-9_.\-]+")


@dataclass
class Region:
    name: str
    key: str
    offset: int
    byte_size: int
    mapping: mmap.mmap


class SharedMemoryRegions:
    """The regions registered with one server, safe to use from several threads."""

    def __init__(self, root: Path = SHM_ROOT) -> None:
        self._root = root
        self._regions: dict[str, Region] = {}
        self._lock = threading.Lock()

    def register(self, name: str, key: str, offset: int, byte_size: int) -> None:
        if not name:
            raise InvalidArgument("shared memory region: a name is required")
        if not _KEY.fullmatch(key) or key.strip("/") in (".", ".."):
            raise InvalidArgument(f"shared memory region '{name}': key {key!r} is not a POSIX "
                                  f"shared-memory name (like '/input0')")
        if byte_size <= 0:
            raise InvalidArgument(f"shared memory region '{name}': byte_size must be > 0")
        path = self._root / key.lstrip("/")
        with self._lock:
            if name in self._regions:
                raise InvalidArgument(f"shared memory region '{name}' is already registered")
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                raise NotFound(f"shared memory region '{name}': no shared-memory object "
                               f"with key {key!r}") from None
            except OSError as exc:
                raise InvalidArgument(f"shared memory region '{name}': cannot open key "
                                      f"{key!r}: {exc.strerror}") from None
            try:
                size = os.fstat(fd).st_size
                if offset + byte_size > size:
                    raise InvalidArgument(
                        f"shared memory region '{name}': offset {offset} + byte_size "
                        f"{byte_size} exceeds the {size} bytes of key {key!r}")
                mapping = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            finally:
                os.close(fd)
            self._regions[name] = Region(name, key, offset, byte_size, mapping)

    def unregister(self, name: str = "") -> None:
        """Unregister ``name``, or every region when ``name`` is empty. As in Triton, an
        unknown name is not an error: the region is not registered either way."""
        with self._lock:
            names = list(self._regions) if not name else [name]
            for each in names:
                region = self._regions.pop(each, None)
                if region is not None:
                    region.mapping.close()

    def status(self, name: str = "") -> list[Region]:
        with self._lock:
            if not name:
                return list(self._regions.values())
            if name not in self._regions:
                raise NotFound(f"shared memory region '{name}' is not registered")
            return [self._regions[name]]

    def read(self, name: str, offset: int, byte_size: int) -> bytes:
        """A copy of ``byte_size`` bytes at ``offset`` within region ``name``."""
        with self._lock:
            region = self._window(name, offset, byte_size)
            start = region.offset + offset
            return region.mapping[start:start + byte_size]

    def write(self, name: str, offset: int, data: bytes, byte_size: int | None = None) -> None:
        """Write ``data`` at ``offset`` within region ``name``; ``byte_size`` is the space
        the client set aside there (the whole rest of the region when None)."""
        with self._lock:
            region = self._regions.get(name)
            space = byte_size if byte_size is not None else (
                region.byte_size - offset if region is not None else 0)
            if len(data) > space:
                raise InvalidArgument(f"shared memory region '{name}': the output needs "
                                      f"{len(data)} bytes, {space} were set aside")
            region = self._window(name, offset, len(data))
            start = region.offset + offset
            region.mapping[start:start + len(data)] = data

    def close(self) -> None:
        with self._lock:
            for region in self._regions.values():
                region.mapping.close()
            self._regions.clear()

    def _window(self, name: str, offset: int, byte_size: int) -> Region:
        region = self._regions.get(name)
        if region is None:
            raise NotFound(f"shared memory region '{name}' is not registered")
        if offset < 0 or byte_size < 0 or offset + byte_size > region.byte_size:
            raise InvalidArgument(f"shared memory region '{name}': offset {offset} + "
                                  f"byte_size {byte_size} runs past the region's "
                                  f"{region.byte_size} bytes")
        return region
