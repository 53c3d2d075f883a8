"""The math mode kernels run under: whether FP32 products may use TF32 tensor cores
(``BuilderFlag.TF32``, on by default as in TensorRT: 10 mantissa bits in the products, FP32
accumulation). The builder sets it from its configuration while it times tactics, and a GPU
execution context from the flags its plan was built with while it enqueues (a captured CUDA
graph keeps the kernels it captured). Outside both, FP32 is exact FP32.

Per thread, so that builds and contexts on other threads keep their own mode.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCAL = threading.local()


@contextmanager
def allow_tf32(allowed: bool) -> Iterator[None]:
    """FP32 products may use TF32 while the block runs (``allowed``), or must not."""
    before = getattr(_LOCAL, "tf32", False)
    _LOCAL.tf32 = bool(allowed)
    try:
        yield
    finally:
        _LOCAL.tf32 = before


def tf32_allowed() -> bool:
    return bool(getattr(_LOCAL, "tf32", False))
