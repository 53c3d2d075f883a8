"""Data types, shapes and weights: TensorRT's ``DataType``, ``Dims``, ``Weights`` and friends.

Arrays of the low-precision types use ml_dtypes (bfloat16, float8_e4m3fn, int4).
INT4 tensors are packed two values per byte, low nibble first, as TensorRT and ONNX store them.

>>> import engine as trt, numpy as np
>>> trt.nptype(trt.DataType.HALF)
<class 'numpy.float16'>
>>> trt.volume((2, 3, 4))
24
>>> trt.DataType.INT4.itemsize
0.5
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from typing import Any

import ml_dtypes
import numpy as np


class DataType(enum.IntEnum):
    """Element types, with TensorRT's values."""

    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9

    def __str__(self) -> str:
        return f"DataType.{self.name}"

    @property
    def itemsize(self) -> float:
        """Bytes per element; 0.5 for INT4, which packs two values per byte."""
        return _ITEMSIZE[self]

    @property
    def is_float(self) -> bool:
        return self in (DataType.FLOAT, DataType.HALF, DataType.BF16, DataType.FP8)


_ITEMSIZE: dict[DataType, float] = {
    DataType.FLOAT: 4,
    DataType.HALF: 2,
    DataType.INT8: 1,
    DataType.INT32: 4,
    DataType.BOOL: 1,
    DataType.UINT8: 1,
    DataType.FP8: 1,
    DataType.BF16: 2,
    DataType.INT64: 8,
    DataType.INT4: 0.5,
}

_NPTYPE: dict[DataType, type] = {
    DataType.FLOAT: np.float32,
    DataType.HALF: np.float16,
    DataType.INT8: np.int8,
    DataType.INT32: np.int32,
    DataType.BOOL: np.bool_,
    DataType.UINT8: np.uint8,
    DataType.FP8: ml_dtypes.float8_e4m3fn,
    DataType.BF16: ml_dtypes.bfloat16,
    DataType.INT64: np.int64,
    DataType.INT4: ml_dtypes.int4,
}

_FROM_NUMPY: dict[np.dtype, DataType] = {np.dtype(t): d for d, t in _NPTYPE.items()}


def nptype(dtype: DataType) -> type:
    """The NumPy scalar type of ``dtype`` (ml_dtypes types for BF16, FP8 and INT4)."""
    return _NPTYPE[DataType(dtype)]


def from_numpy_dtype(dtype: Any) -> DataType:
    """The ``DataType`` of a NumPy dtype; float64 maps to nothing (TensorRT has no FLOAT64)."""
    try:
        return _FROM_NUMPY[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise TypeError(
            f"no TensorRT DataType for NumPy dtype {np.dtype(dtype)}; "
            f"supported: {sorted(str(k) for k in _FROM_NUMPY)}"
        ) from None


def volume(shape: Iterable[int]) -> int:
    """The number of elements of ``shape`` (1 for a scalar)."""
    return math.prod(int(d) for d in shape)


def nbytes_of(dtype: DataType, shape: Iterable[int]) -> int:
    """Bytes that a dense tensor of ``shape`` takes; INT4 rounds up to whole bytes."""
    n = volume(shape)
    if dtype == DataType.INT4:
        return (n + 1) // 2
    return n * int(_ITEMSIZE[dtype])


def pack_int4(values: np.ndarray) -> np.ndarray:
    """Pack int4 values (-8..7) two per byte, low nibble first; returns uint8 of ceil(n/2)."""
    flat = np.asarray(values).astype(np.int8).reshape(-1)
    if flat.size and (flat.min() < -8 or flat.max() > 7):
        raise ValueError("INT4 values must lie in [-8, 7]")
    if flat.size % 2:
        flat = np.concatenate([flat, np.zeros(1, np.int8)])
    nib = (flat.astype(np.uint8) & 0x0F).reshape(-1, 2)
    return (nib[:, 0] | (nib[:, 1] << 4)).astype(np.uint8)


def unpack_int4(packed: np.ndarray, count: int) -> np.ndarray:
    """Inverse of ``pack_int4``: ``count`` int4 values as an ml_dtypes.int4 array."""
    raw = np.asarray(packed, dtype=np.uint8).reshape(-1)
    if raw.size * 2 < count:
        raise ValueError(f"{raw.size} packed bytes hold fewer than {count} INT4 values")
    nib = np.stack([raw & 0x0F, raw >> 4], axis=1).reshape(-1)[:count].astype(np.int8)
    signed = np.where(nib > 7, nib - 16, nib).astype(np.int8)
    return signed.astype(ml_dtypes.int4)


class Dims(tuple):
    """A shape: a tuple of ints where -1 marks a dynamic dimension.

    >>> import engine as trt
    >>> trt.Dims([1, -1, 224, 224])
    (1, -1, 224, 224)
    """

    MAX_DIMS = 8

    def __new__(cls, shape: Iterable[int] = ()) -> Dims:
        if isinstance(shape, (int, np.integer)):
            raise TypeError("Dims takes an iterable of ints, e.g. Dims([1, 3, 224, 224])")
        dims = tuple(int(d) for d in shape)
        if len(dims) > cls.MAX_DIMS:
            raise ValueError(f"at most {cls.MAX_DIMS} dimensions, got {len(dims)}")
        return super().__new__(cls, dims)

    @property
    def nbDims(self) -> int:  # noqa: N802 - TensorRT's name
        return len(self)


class Dims2(Dims):
    def __new__(cls, d0: int, d1: int) -> Dims2:
        return super().__new__(cls, (d0, d1))  # type: ignore[return-value]


class DimsHW(Dims2):
    @property
    def h(self) -> int:
        return self[0]

    @property
    def w(self) -> int:
        return self[1]


class Dims3(Dims):
    def __new__(cls, d0: int, d1: int, d2: int) -> Dims3:
        return super().__new__(cls, (d0, d1, d2))  # type: ignore[return-value]


class Dims4(Dims):
    def __new__(cls, d0: int, d1: int, d2: int, d3: int) -> Dims4:
        return super().__new__(cls, (d0, d1, d2, d3))  # type: ignore[return-value]


class Weights:
    """Host weights handed to a layer.

    As in TensorRT, the network keeps a reference to the array and does not copy it: do not
    modify or free the array until the plan has been built.

    >>> import engine as trt, numpy as np
    >>> w = trt.Weights(np.ones((4, 3), np.float32))
    >>> w.dtype, w.size, w.nbytes
    (<DataType.FLOAT: 0>, 12, 48)

    ``name`` is the name the weights are refitted by (``INetworkDefinition.set_weights_name``;
    the ONNX parser gives them their initializer's name); None when unnamed.
    """

    def __init__(self, a: Any = None, *, dtype: DataType | None = None,
                 name: str | None = None) -> None:
        self.name: str | None = name
        if isinstance(a, DataType):
            dtype, a = a, None
        if isinstance(a, Weights):
            self._array: np.ndarray = a._array
            self.dtype: DataType = a.dtype
            self.shape: tuple[int, ...] = a.shape
            self.name = a.name if name is None else name
            return
        if a is None:
            self._array = np.zeros((0,), nptype(dtype or DataType.FLOAT))
            self.dtype = DataType(dtype or DataType.FLOAT)
            self.shape = (0,)
            return
        arr = np.asarray(a)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        self._array = arr
        self.dtype = from_numpy_dtype(arr.dtype) if dtype is None else DataType(dtype)
        self.shape = tuple(arr.shape)

    @property
    def size(self) -> int:
        return int(self._array.size)

    @property
    def nbytes(self) -> int:
        return nbytes_of(self.dtype, self.shape)

    def numpy(self) -> np.ndarray:
        """The array these weights refer to (not a copy)."""
        return self._array

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        named = "" if self.name is None else f", name={self.name!r}"
        return f"Weights(dtype={self.dtype.name}, shape={self.shape}{named})"


def as_weights(value: Any) -> Weights:
    """Accept ``Weights``, NumPy arrays and Python sequences where TensorRT takes Weights."""
    return value if isinstance(value, Weights) else Weights(value)


class TensorLocation(enum.IntEnum):
    DEVICE = 0
    HOST = 1


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class TensorFormat(enum.IntEnum):
    LINEAR = 0
    CHW2 = 1
    HWC8 = 2
    CHW4 = 3
    CHW16 = 4
    CHW32 = 5
    DHWC8 = 6
    CDHW32 = 7
    HWC = 8
    DLA_LINEAR = 9
    DLA_HWC4 = 10
    HWC16 = 11
    DHWC = 12
