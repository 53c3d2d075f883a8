"""One BLAS thread per running execution context on the CPU target.

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
from collections.abc import Callable, Iterator
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
