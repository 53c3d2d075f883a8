"""BF16 on the GPU target. CuPy has no bfloat16 arrays, so a BF16 tensor lives on the device
as its 16-bit patterns in a ``uint16`` array (TensorRT has no 16-bit integer type, so a
``uint16`` device array always means BF16 here). Tactics that compute in BF16 natively (the
cast layer, cuBLAS matrix products on BF16 tensor cores) take and give those arrays; every
other GPU tactic serves BF16 layers through its FP32 form (``float_fallback.py``), and the
runtime rounds the FLOAT outputs a BF16 tensor receives to BF16 (round to nearest even, NaN
kept quiet, as ml_dtypes rounds; ``storage.to_storage``).

Written without a GPU (2026-12-06); ``tests/gpu/test_bf16.py`` is its first check, and
``tests/engine/test_bf16_rounding.py`` checks the rounding's bit arithmetic against ml_dtypes.
"""

from __future__ import annotations

import cupy
import numpy as np

STORAGE = np.dtype(np.uint16)  # a BF16 tensor's device array type

_WIDEN = cupy.ElementwiseKernel(
    "uint16 b", "float32 f", "f = __uint_as_float(((unsigned int)b) << 16)", "engine_bf16_widen")
# Round to nearest even; a NaN keeps its sign and top payload bits and stays quiet.
_NARROW = cupy.ElementwiseKernel(
    "T x", "uint16 b",
    """
    unsigned int u = __float_as_uint((float)x);
    if ((u & 0x7fffffffu) > 0x7f800000u) b = (unsigned short)((u >> 16) | 0x40u);
    else b = (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    """, "engine_bf16_narrow")


def widen(bits: cupy.ndarray) -> cupy.ndarray:
    """BF16 patterns as FLOAT (exact)."""
    return _WIDEN(bits)


def narrow(values: cupy.ndarray) -> cupy.ndarray:
    """FLOAT or HALF values rounded to BF16 patterns."""
    return _NARROW(values)
