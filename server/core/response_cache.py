"""The response cache (Triton's ``--cache-config local,size=<bytes>`` and a model's
``response_cache { enable: true }``): outputs of earlier requests, answered again without
running the model.

One ``ResponseCache`` serves the whole server, least recently used entries evicted first once
the cached outputs' bytes pass its size. Each loaded model version (or ensemble version) that
enables caching holds a ``VersionCache``: its key covers the version (a token unique to the
loaded object, so a reload never answers from its predecessor), every input's name, data type,
shape and bytes (in name order), and the names of the outputs asked for, in their order; it
is a BLAKE2b digest of 256 bits (Triton uses a 64-bit hash). Outputs are stored as read-only
arrays, never as encoded bytes, so a hit is encoded for its own request (JSON, binary, shared
memory). Closing a version drops its entries; a request still running on it stores nothing.

Statistics follow Triton's statistics extension: a hit counts as a successful request (and a
zero queue wait) with ``cache_hit`` timing the lookup and the copy out, and no execution; a
miss that completes adds ``cache_miss``, timing the lookup and the insertion.

>>> cache = ResponseCache(1 << 20)
>>> view = VersionCache(cache, ModelStatistics("m", "1"))
>>> lookup = view.lookup([InferInput("x", "FP32", (1,), np.ones(1, np.float32))], ["y"])
>>> lookup.outputs is None
True
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from server.core.codec import InferInput, InferOutput, bytes_to_binary
from server.core.statistics import ModelStatistics

CACHE_IMPLEMENTATIONS = ("local",)  # what --cache-config may name


@dataclass(frozen=True)
class _Entry:
    owner: int
    outputs: tuple[InferOutput, ...]  # read-only arrays
    size: int


class ResponseCache:
    """Cached outputs by request key, at most ``capacity`` bytes of them, thread-safe."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"response cache size must be > 0 bytes, got {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._owners = itertools.count(1)
        self._live: set[int] = set()
        self.size = 0  # bytes of the outputs cached now
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def new_owner(self) -> int:
        """A token for a loaded version's entries (``drop`` removes them all)."""
        with self._lock:
            owner = next(self._owners)
            self._live.add(owner)
            return owner

    def get(self, key: bytes) -> tuple[InferOutput, ...] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry.outputs

    def put(self, key: bytes, owner: int, outputs: Sequence[InferOutput]) -> bool:
        """Keep copies of ``outputs``; False when they alone exceed the capacity or the owner
        was dropped meanwhile."""
        size = sum(_nbytes(o.data) for o in outputs)
        if size > self.capacity:
            return False
        kept = tuple(InferOutput(o.name, o.datatype, _frozen_copy(o.data)) for o in outputs)
        with self._lock:
            if owner not in self._live:
                return False
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= old.size
            while self._entries and self.size + size > self.capacity:
                _, evicted = self._entries.popitem(last=False)
                self.size -= evicted.size
                self.evictions += 1
            self._entries[key] = _Entry(owner, kept, size)
            self.size += size
            return True

    def drop(self, owner: int) -> None:
        """Forget ``owner``'s entries; later ``put`` calls for it store nothing."""
        with self._lock:
            self._live.discard(owner)
            for key in [k for k, e in self._entries.items() if e.owner == owner]:
                self.size -= self._entries.pop(key).size


@dataclass(frozen=True)
class CacheLookup:
    """A request's key, and its cached outputs (None: a miss)."""

    key: bytes
    owner: int
    outputs: list[InferOutput] | None
    lookup_ns: int


class VersionCache:
    """One loaded model version's use of the cache, with its statistics."""

    def __init__(self, cache: ResponseCache, stats: ModelStatistics) -> None:
        self.cache = cache
        self.stats = stats
        self._owner = cache.new_owner()

    def lookup(self, inputs: Sequence[InferInput], wanted: Sequence[str]) -> CacheLookup:
        start = time.perf_counter_ns()
        owner = self._owner
        key = request_key(owner, inputs, wanted)
        found = self.cache.get(key)
        outputs = None if found is None else [
            InferOutput(o.name, o.datatype, o.data) for o in found]
        elapsed = time.perf_counter_ns() - start
        if outputs is not None:
            self.stats.record_cache_hit(elapsed)
        return CacheLookup(key, owner, outputs, elapsed)

    def insert(self, lookup: CacheLookup, outputs: Sequence[InferOutput]) -> None:
        """Keep a miss's outputs (after its request succeeded), counting the miss."""
        start = time.perf_counter_ns()
        self.cache.put(lookup.key, lookup.owner, outputs)
        self.stats.record_cache_miss(lookup.lookup_ns + time.perf_counter_ns() - start)

    def invalidate(self) -> None:
        """Drop what is cached so far (an ensemble whose step models changed)."""
        old, self._owner = self._owner, self.cache.new_owner()
        self.cache.drop(old)

    def close(self) -> None:
        self.cache.drop(self._owner)


def request_key(owner: int, inputs: Sequence[InferInput], wanted: Sequence[str]) -> bytes:
    digest = hashlib.blake2b(digest_size=32)
    digest.update(struct.pack("<Q", owner))
    for item in sorted(inputs, key=lambda i: i.name):
        assert item.data is not None, "DataPlane.infer reads region inputs first"
        _update_text(digest, item.name)
        _update_text(digest, item.datatype)
        digest.update(struct.pack(f"<Q{len(item.shape)}q", len(item.shape), *item.shape))
        data = (bytes_to_binary(item.data) if item.datatype == "BYTES"
                else np.ascontiguousarray(item.data).tobytes())
        digest.update(struct.pack("<Q", len(data)))
        digest.update(data)
    digest.update(struct.pack("<Q", len(wanted)))
    for name in wanted:
        _update_text(digest, name)
    return digest.digest()


def _update_text(digest: hashlib.blake2b, text: str) -> None:
    data = text.encode()
    digest.update(struct.pack("<Q", len(data)))
    digest.update(data)


def _nbytes(array: np.ndarray) -> int:
    if array.dtype == object:  # BYTES: each element's bytes and its 4-byte length
        return sum(4 + len(x.encode() if isinstance(x, str) else bytes(x))
                   for x in array.reshape(-1))
    return int(array.nbytes)


def _frozen_copy(array: np.ndarray) -> np.ndarray:
    copy = np.array(array, copy=True)
    copy.setflags(write=False)
    return copy
