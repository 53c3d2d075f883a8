"""How the math kernels compute each element type: narrow floats (HALF, BF16, FP8) and
TensorRT's quantized INT8 in float32, then rounded back; INT32, INT64 and BOOL exactly."""

from __future__ import annotations

import math

import numpy as np

from engine.types import DataType, from_numpy_dtype, nptype

_WIDENED = frozenset({DataType.HALF, DataType.BF16, DataType.FP8, DataType.INT8})


def widen(x: np.ndarray) -> np.ndarray:
    """``x`` in the type the kernels compute it in (float32 for narrow floats and INT8)."""
    if from_numpy_dtype(x.dtype) in _WIDENED:
        return x.astype(np.float32)
    return x


def narrow(values: np.ndarray, dtype: DataType) -> np.ndarray:
    """Computed ``values`` as an array of ``dtype``; INT8 rounds to nearest even and saturates,
    as a quantized value with unit scale would."""
    values = np.asarray(values)
    if dtype == DataType.INT8 and values.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            rounded = np.clip(np.rint(np.nan_to_num(values)), -128, 127)
        return rounded.astype(np.int8)
    return values.astype(nptype(dtype), copy=False)


def dtype_of(x: np.ndarray) -> DataType:
    return from_numpy_dtype(x.dtype)


_erf_of_float64 = np.vectorize(math.erf, otypes=[np.float64])


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, in float64 (NumPy has none; ``math.erf`` is exact to
    the last bit, which a reference kernel wants more than speed)."""
    return _erf_of_float64(np.asarray(x, dtype=np.float64))
