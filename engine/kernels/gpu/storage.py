"""How the GPU target holds each tensor type on the device: CuPy's own types as they are,
and BF16 and FP8, which CuPy lacks, as their bit patterns (``uint16``, see ``bf16.py``;
``uint8``, see ``fp8.py``). TensorRT has no 16-bit integer type, so a ``uint16`` array always
means BF16; a ``uint8`` array is UINT8 or FP8 patterns as the tensor's type says."""

from __future__ import annotations

import cupy
import ml_dtypes
import numpy as np

from engine.kernels.gpu import bf16, fp8
from engine.types import DataType, nptype

_PATTERNS: dict[DataType, np.dtype] = {DataType.BF16: bf16.STORAGE, DataType.FP8: fp8.STORAGE}


def storage_dtype(dtype: DataType) -> np.dtype:
    """The device array type of a tensor of ``dtype``."""
    dtype = DataType(dtype)
    pattern = _PATTERNS.get(dtype)
    return pattern if pattern is not None else np.dtype(nptype(dtype))


def host_storage(array: np.ndarray) -> np.ndarray:
    """A host array as the device holds it (BF16 and FP8 as their patterns)."""
    if array.dtype == ml_dtypes.bfloat16:
        return array.view(bf16.STORAGE)
    if array.dtype == ml_dtypes.float8_e4m3fn:
        return array.view(fp8.STORAGE)
    return array


def to_storage(value: cupy.ndarray, dtype: DataType) -> cupy.ndarray:
    """A kernel's result as a tensor of ``dtype`` holds it on the device (a FLOAT or HALF
    result for a BF16 or FP8 tensor is rounded to it, as a cast rounds)."""
    dtype = DataType(dtype)
    if dtype == DataType.BF16:
        return value if value.dtype == bf16.STORAGE else bf16.narrow(value)
    if dtype == DataType.FP8:
        if value.dtype == fp8.STORAGE:
            return value
        return fp8.narrow(bf16.widen(value) if value.dtype == bf16.STORAGE else value)
    want = np.dtype(nptype(dtype))
    if value.dtype == want:
        return value
    if value.dtype == bf16.STORAGE:  # BF16 patterns read as another type
        value = bf16.widen(value)
    return value.astype(want)
