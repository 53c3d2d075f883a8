"""Which backends exist on this machine, and loading their kernels.

``cpu`` is always there. ``gpu`` needs the GPU backend package, CuPy and a CUDA device; it is
probed once, lazily, so ``import engine`` never imports CuPy.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

BACKENDS = ("cpu", "gpu")


@functools.cache
def gpu_available() -> bool:
    """Whether the GPU backend can run here (CuPy importable and a device present)."""
    if importlib.util.find_spec("engine.kernels.gpu") is None:
        return False
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return bool(cupy.cuda.runtime.getDeviceCount() > 0)
    except Exception:  # noqa: BLE001 - any CUDA failure means "no usable GPU"
        return False


def load_backend(backend: str) -> Any:
    """Import the kernels of ``backend`` (registering them) and return its module."""
    if backend == "cpu":
        from engine.kernels import cpu

        return cpu
    if backend == "gpu":
        if not gpu_available():
            raise RuntimeError("the GPU backend needs CuPy and a CUDA device; none is usable here")
        return importlib.import_module("engine.kernels.gpu")
    raise ValueError(f"unknown backend {backend!r}; known: {BACKENDS}")
