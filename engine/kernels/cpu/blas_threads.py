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
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np


def _openblas() -> ctypes.CDLL | None:
    """The OpenBLAS that NumPy's wheel bundles (already loaded by NumPy: the same handle)."""
    folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "*openblas*"))):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(library, "openblas_set_num_threads_local"):
            return library
    return None


def _find_local_setter(library: ctypes.CDLL | None) -> Callable[[int], int] | None:
    """``openblas_set_num_threads_local``."""
    if library is None:
        return None
    setter = library.openblas_set_num_threads_local
    setter.argtypes = [ctypes.c_int]
    setter.restype = ctypes.c_int
    return setter  # type: ignore[no-any-return]


def _find_sgemm(library: ctypes.CDLL | None) -> Callable[..., None] | None:
    """CBLAS ``sgemm`` with 64-bit integers (NumPy's OpenBLAS is built with them and prefixes
    its symbols)."""
    sgemm = getattr(library, "scipy_cblas_sgemm64_", None)
    if sgemm is None:
        return None
    size, pointer = ctypes.c_int64, ctypes.c_void_p
    sgemm.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, size, size, size,
                      ctypes.c_float, pointer, size, pointer, size, ctypes.c_float, pointer, size]
    sgemm.restype = None
    return sgemm  # type: ignore[no-any-return]


_OPENBLAS = _openblas()
_SET_LOCAL_THREADS = _find_local_setter(_OPENBLAS)
_SGEMM = _find_sgemm(_OPENBLAS)
_ROW_MAJOR, _NO_TRANSPOSE, _TRANSPOSE = 101, 111, 112  # CBLAS enums


def _rows_of_floats(a: np.ndarray) -> bool:
    """A 2D float32 matrix BLAS can read in place: unit stride along its rows."""
    return a.dtype == np.float32 and a.ndim == 2 and a.strides[1] == 4 and \
        a.strides[0] % 4 == 0 and a.strides[0] >= 4 * a.shape[1]


def matmul_accumulate(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out += a @ b`` for 2D float32 operands, ``b`` possibly the transpose of a matrix
    with rows of unit stride, with no temporary where the BLAS allows (GEMM's ``beta = 1``)."""
    b_rows = _rows_of_floats(b)
    if _SGEMM is None or not (_rows_of_floats(a) and (b_rows or _rows_of_floats(b.T)) and
                              _rows_of_floats(out)) or 0 in a.shape or out.size == 0:
        out += a @ b
        return
    rows, inner = a.shape
    _SGEMM(_ROW_MAJOR, _NO_TRANSPOSE, _NO_TRANSPOSE if b_rows else _TRANSPOSE, rows,
           out.shape[1], inner, 1.0, a.ctypes.data, a.strides[0] // 4, b.ctypes.data,
           (b.strides[0] if b_rows else b.strides[1]) // 4, 1.0, out.ctypes.data,
           out.strides[0] // 4)


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
# calling thread and the worker threads take in turn, each on one BLAS thread. A worker that
# waits for a core leaves its part to the calling thread, and a waiting thread sleeps instead of
# spinning at a BLAS barrier, so a busy host slows a run down gracefully.
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
# Below these a hand-over to a worker costs more than it saves: floating-point operations of
# a matrix product, or elements that a loop of whole-array NumPy operations reads.
PARALLEL_MIN_FLOPS = 2e7
PARALLEL_MIN_ELEMENTS = 1e5


class _Offer:
    """One call's parts offered to a worker, which takes them or finds them called off.

    Two plain locks instead of a ``concurrent.futures`` future and its condition: measured
    inside ResNet-50 runs (67 hand-overs each), 1.7 ms less per run."""

    __slots__ = ("take_parts", "lock", "state", "finished", "error")
    OFFERED, TAKEN, CALLED_OFF = range(3)

    def __init__(self, take_parts: Callable[[], None]) -> None:
        self.take_parts = take_parts
        self.lock = threading.Lock()
        self.state = _Offer.OFFERED
        self.finished = threading.Lock()
        self.finished.acquire()  # released by the worker when it is done
        self.error: BaseException | None = None

    def run(self) -> None:
        """On a worker: the parts left, unless the caller has called the offer off."""
        with self.lock:
            if self.state == _Offer.CALLED_OFF:
                return
            self.state = _Offer.TAKEN
        try:
            self.take_parts()
        except BaseException as exc:  # noqa: BLE001 - raised again on the calling thread
            self.error = exc
        finally:
            self.finished.release()

    def call_off_or_wait(self) -> None:
        """On the caller, its own parts done: call the offer off if no worker took it yet,
        else wait for the worker and raise what its parts raised."""
        with self.lock:
            if self.state == _Offer.OFFERED:
                self.state = _Offer.CALLED_OFF
                return
        self.finished.acquire()
        if self.error is not None:
            raise self.error


_OFFERS: queue.SimpleQueue[_Offer] = queue.SimpleQueue()
_WORKERS_STARTED = False
_START_LOCK = threading.Lock()


def _work() -> None:
    with one_blas_thread():
        while True:
            _OFFERS.get().run()


def _start_workers() -> None:
    global _WORKERS_STARTED
    with _START_LOCK:
        if not _WORKERS_STARTED:
            for _ in range(_CORES - 1):
                threading.Thread(target=_work, name="engine-cpu", daemon=True).start()
            _WORKERS_STARTED = True


def _reset_workers_in_child() -> None:
    # A forked child inherits the queue but none of the workers: it starts its own.
    global _OFFERS, _WORKERS_STARTED, _START_LOCK
    _OFFERS, _WORKERS_STARTED, _START_LOCK = queue.SimpleQueue(), False, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_workers_in_child)


def split(extent: int, flops: float, minimum: float = PARALLEL_MIN_FLOPS
          ) -> list[tuple[int, int]]:
    """``[start, stop)`` parts of ``range(extent)``, one per core for work of ``flops``
    (or of another measure, with its own ``minimum``)."""
    parts = 1 if _CORES == 1 or flops < minimum else min(_CORES, extent)
    bounds = [extent * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def run_parts(work: Callable[[int, int], object], parts: list[tuple[int, int]]) -> None:
    """``work(start, stop)`` for every part, on the calling thread and the workers: each
    thread takes the next part left until none is; returns when all are done.

    An offer that no worker has taken by the time the calling thread runs out of parts (the
    workers' cores busy elsewhere) is called off, so a busy core costs its share, never a
    wait."""
    if len(parts) == 1:
        work(*parts[0])
        return
    if not _WORKERS_STARTED:
        _start_workers()
    left = deque(parts)

    def take_parts() -> None:
        while True:
            try:
                start, stop = left.popleft()  # atomic: a part goes to one thread
            except IndexError:
                return
            work(start, stop)

    offers = [_Offer(take_parts) for _ in range(min(_CORES, len(parts)) - 1)]
    for offer in offers:
        _OFFERS.put(offer)
    try:
        take_parts()
    finally:
        for offer in offers:
            offer.call_off_or_wait()
