"""Plan format v1: the container a builder writes and a runtime reads.

Layout (little endian)::

    offset 0   magic            8 bytes  b"PYTRTPLN"
           8   format version   u32      1
          12   reserved         u32      0
          16   header length    u64      H
          24   blob offset      u64      B (a multiple of 64, >= 40 + H)
          32   blob length      u64      L
          40   header           H bytes  UTF-8 JSON
               padding          zeros up to B
           B   blob             L bytes  the arrays, each at a 64-byte aligned offset
       B + L   checksum         32 bytes SHA-256 of every byte before it

The header says what the plan holds (library version, target, I/O, layers with their tactics,
memory plan, profiles) and where each array lies in the blob. Arrays are read as NumPy views
of the buffer they came from, so a memory-mapped plan maps its weights without copying.
Nothing in a plan is ever executed: tactics are names looked up in a fixed registry.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from engine.errors import PlanError
from engine.types import DataType, nptype

MAGIC = b"PYTRTPLN"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIIQQQ")
PREFIX_SIZE = _PREFIX.size  # 40
CHECKSUM_SIZE = 32
ALIGNMENT = 64
_CHUNK = 4 << 20  # bytes of arrays a plan writer's thread writes at once


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


@dataclass(frozen=True)
class PlanContents:
    """A plan's header (a JSON object) and its arrays (views into the plan's buffer)."""

    header: dict[str, Any]
    arrays: list[np.ndarray]


class ComputedArray(Protocol):
    """An array computed only as it is written into a plan (``engine.network.scaled_weights``
    has one): the plan writer asks for its shape and type, then for its values in place."""

    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int

    def write_into(self, out: np.ndarray) -> None: ...


def write_plan(header: dict[str, Any], arrays: Sequence[np.ndarray | ComputedArray],
               plan_type: Callable[[int], Any] = bytearray) -> Any:
    """Serialize ``header`` and ``arrays``; the header gains the array table.

    The plan is written in place into what ``plan_type(size)`` returns (zero-filled writable
    memory: a ``bytearray``, an ``IHostMemory``), and returned: each array's bytes are copied
    (or computed) once, into the plan, and hashed there.
    """
    arrays = [np.ascontiguousarray(arr) if isinstance(arr, np.ndarray) else arr
              for arr in arrays]
    table = []
    starts = []
    offset = 0
    for arr in arrays:
        table.append({"offset": offset, "nbytes": arr.nbytes,
                      "dtype": _dtype_name(arr), "shape": list(arr.shape)})
        starts.append(offset)
        offset = _align(offset + arr.nbytes)
    full = dict(header, arrays=table)
    head = json.dumps(full, separators=(",", ":"), allow_nan=True).encode("utf-8")
    blob_offset = _align(PREFIX_SIZE + len(head))
    end = blob_offset + offset
    out = plan_type(end + CHECKSUM_SIZE)
    _PREFIX.pack_into(out, 0, MAGIC, FORMAT_VERSION, 0, len(head), blob_offset, offset)
    out[PREFIX_SIZE:PREFIX_SIZE + len(head)] = head
    # Runs of arrays of at least _CHUNK bytes, each ending where the next begins.
    chunks: list[tuple[int, list[tuple[int, np.ndarray | ComputedArray]]]] = [(0, [])]
    for start, arr in zip(starts, arrays):
        if chunks[-1][1] and blob_offset + start - chunks[-1][0] >= _CHUNK:
            chunks.append((blob_offset + start, []))
        chunks[-1][1].append((blob_offset + start, arr))
    buffer = np.frombuffer(out, np.uint8)
    view = memoryview(out)
    digest = hashlib.sha256()
    if len(chunks) == 1:
        _write_arrays(buffer, chunks[0][1])
        digest.update(view[:end])
    else:
        # Two threads write (most of a fresh plan's time is page faults, which a second
        # thread halves) while this one hashes each run once written: NumPy and SHA-256
        # release the GIL.
        with ThreadPoolExecutor(max_workers=2) as writers:
            written = [writers.submit(_write_arrays, buffer, pieces) for _, pieces in chunks]
            for index, done in enumerate(written):
                done.result()
                stop = chunks[index + 1][0] if index + 1 < len(chunks) else end
                digest.update(view[chunks[index][0]:stop])
    out[end:] = digest.digest()
    return out


def _write_arrays(buffer: np.ndarray, pieces: list[tuple[int, np.ndarray | ComputedArray]]
                  ) -> None:
    """Write each array at its offset in ``buffer`` (the plan's bytes)."""
    for at, arr in pieces:
        if isinstance(arr, np.ndarray):
            buffer[at:at + arr.nbytes] = arr.reshape(-1).view(np.uint8)
        else:
            arr.write_into(buffer[at:at + arr.nbytes].view(arr.dtype).reshape(arr.shape))


def _dtype_name(arr: np.ndarray | ComputedArray) -> str:
    from engine.types import from_numpy_dtype

    return from_numpy_dtype(arr.dtype).name


def plan_length(prefix: bytes | bytearray | memoryview) -> int:
    """The whole plan's length in bytes, as its first ``PREFIX_SIZE`` bytes declare it (for
    reading a plan from a stream); ``PlanError`` unless they begin a plan of this format."""
    magic, version, _reserved, head_len, blob_offset, blob_len = _PREFIX.unpack_from(prefix, 0)
    if magic != MAGIC:
        raise PlanError(f"not a plan of this engine (foreign data): magic bytes {magic!r}, "
                        f"expected {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise PlanError(f"plan format version {version}; this library reads version "
                        f"{FORMAT_VERSION}: rebuild the plan with this library")
    return int(blob_offset + blob_len + CHECKSUM_SIZE)


def read_plan(buffer: Any) -> PlanContents:
    """Verify and parse a plan from any buffer (bytes, memoryview, mmap).

    Raises ``PlanError`` saying whether the plan is truncated, foreign, of another format
    version, corrupted, or malformed.
    """
    try:
        # Read-only: an engine's weights are views of its plan, never written through.
        view = memoryview(buffer).cast("B").toreadonly()
    except TypeError:
        raise PlanError(f"a plan must be a bytes-like object, got "
                        f"{type(buffer).__name__}") from None
    size = len(view)
    if size == 0:
        raise PlanError("empty plan: 0 bytes")
    if size < PREFIX_SIZE:
        if bytes(view[:min(size, 8)]) == MAGIC[:min(size, 8)]:
            raise PlanError(f"truncated plan: {size} bytes, shorter than the "
                            f"{PREFIX_SIZE}-byte prefix")
        raise PlanError(f"not a plan of this engine: {size} bytes without the magic bytes")
    expected = plan_length(view)
    _, _, _, head_len, blob_offset, blob_len = _PREFIX.unpack_from(view, 0)
    if not (PREFIX_SIZE + head_len <= blob_offset and blob_offset % ALIGNMENT == 0):
        raise PlanError("corrupted plan: the header and blob offsets are inconsistent")
    if size < expected:
        raise PlanError(f"truncated plan: {size} bytes, the plan's prefix says {expected}")
    if size > expected:
        raise PlanError(f"corrupted plan: {size - expected} unexpected bytes after the checksum")
    digest = hashlib.sha256(view[:size - CHECKSUM_SIZE]).digest()
    if digest != bytes(view[size - CHECKSUM_SIZE:]):
        raise PlanError("corrupted plan: checksum mismatch (the plan was modified or damaged)")
    try:
        header = json.loads(bytes(view[PREFIX_SIZE:PREFIX_SIZE + head_len]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(f"malformed plan header: {exc}") from None
    if not isinstance(header, dict):
        raise PlanError("malformed plan header: not a JSON object")
    arrays = _arrays(header.get("arrays"), view, blob_offset, blob_len)
    return PlanContents(header, arrays)


def _arrays(table: Any, view: memoryview, blob_offset: int, blob_len: int) -> list[np.ndarray]:
    if not isinstance(table, list):
        raise PlanError("malformed plan header: no array table")
    arrays = []
    for index, entry in enumerate(table):
        try:
            offset, nbytes = int(entry["offset"]), int(entry["nbytes"])
            dtype = np.dtype(nptype(DataType[entry["dtype"]]))
            shape = tuple(int(d) for d in entry["shape"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"malformed plan header: array {index}: {exc}") from None
        if offset < 0 or nbytes < 0 or offset + nbytes > blob_len or offset % ALIGNMENT:
            raise PlanError(f"malformed plan header: array {index} lies outside the blob")
        count = int(np.prod(shape)) if shape else 1
        if any(d < 0 for d in shape) or count * dtype.itemsize != nbytes:
            raise PlanError(f"malformed plan header: array {index} has shape {shape} of "
                            f"{dtype} but {nbytes} bytes")
        start = blob_offset + offset
        arr = np.frombuffer(view, dtype=dtype, count=count, offset=start).reshape(shape)
        arrays.append(arr)
    return arrays
