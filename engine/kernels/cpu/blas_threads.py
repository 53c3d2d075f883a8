"""Threads of the CPU target's matrix products: one BLAS thread per running execution
context, and products (with the work around them) cut into parts that a pool of threads
computes in parallel.

NumPy's OpenBLAS starts a thread per core for each large matrix product and makes them meet
at a barrier. Execution contexts already run concurrently on threads (the server's pool), and
a host is often shared: a BLAS thread that waits for a core holds every product up at the
barrier. Measured on a shared 2-core host: two BLAS threads ran ResNet-50 in 82 ms against
130 ms on one while the host was idle, but 0.9-1 s against 0.2-0.3 s while other processes
kept it busy; one thread per run is the choice that never collapses. OpenBLAS 0.3.27+ sets the
thread count per calling thread; with another BLAS this is a no-op.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np


def _find_local_setter() -> Callable[[int], int] | None:
    """``openblas_set_num_threads_local`` of the OpenBLAS that NumPy's wheel bundles."""
    folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "*openblas*"))):
        try:
            library = ctypes.CDLL(path)  # already loaded by NumPy: the same handle
        except OSError:
            continue
        setter = getattr(library, "openblas_set_num_threads_local", None)
        if setter is not None:
            setter.argtypes = [ctypes.c_int]
            setter.restype = ctypes.c_int
            return setter  # type: ignore[no-any-return]
    return None


_SET_LOCAL_THREADS = _find_local_setter()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Within the block, matrix products on the calling thread use one BLAS thread."""
    if _SET_LOCAL_THREADS is None:
        yield
        return
    previous = _SET_LOCAL_THREADS(1)
    try:
        yield
    finally:
        _SET_LOCAL_THREADS(previous)


# Parallel products without BLAS threads: a product is cut into one part per core, which the
# calling thread and a pool take in turn, each on one BLAS thread. A pool thread that waits
# for a core leaves its part to the calling thread, and a waiting thread sleeps instead of
# spinning at a BLAS barrier, so a busy host slows a run down gracefully.
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _new_pool() -> ThreadPoolExecutor | None:
    return ThreadPoolExecutor(max_workers=_CORES - 1, thread_name_prefix="engine-cpu") \
        if _CORES > 1 else None


def _reset_pool_in_child() -> None:
    # A forked child inherits the pool's bookkeeping but none of its threads: it would wait
    # forever on parts that no thread runs.
    global _POOL
    _POOL = _new_pool()


_POOL = _new_pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pool_in_child)
# Below these a hand-over to the pool costs more than it saves: floating-point operations of
# a matrix product, or elements that a loop of whole-array NumPy operations reads.
PARALLEL_MIN_FLOPS = 2e7
PARALLEL_MIN_ELEMENTS = 1e5


def split(extent: int, flops: float, minimum: float = PARALLEL_MIN_FLOPS
          ) -> list[tuple[int, int]]:
    """``[start, stop)`` parts of ``range(extent)``, one per core for work of ``flops``
    (or of another measure, with its own ``minimum``)."""
    parts = 1 if _POOL is None or flops < minimum else min(_CORES, extent)
    bounds = [extent * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _on_one_blas_thread(take_parts: Callable[[], None]) -> None:
    with one_blas_thread():
        take_parts()


def run_parts(work: Callable[[int, int], object], parts: list[tuple[int, int]]) -> None:
    """``work(start, stop)`` for every part, on the calling thread and the pool's: each
    thread takes the next part left until none is; returns when all are done.

    A pool thread that has not started by the time the calling thread runs out of parts (its
    core busy elsewhere) is called off, so a busy core costs its share, never a wait."""
    if len(parts) == 1:
        work(*parts[0])
        return
    left = deque(parts)

    def take_parts() -> None:
        while True:
            try:
                start, stop = left.popleft()  # atomic: a part goes to one thread
            except IndexError:
                return
            work(start, stop)

    helpers = [_POOL.submit(_on_one_blas_thread, take_parts)  # type: ignore[union-attr]
               for _ in range(min(_CORES, len(parts)) - 1)]
    take_parts()
    for helper in helpers:
        if not helper.cancel():
            helper.result()
