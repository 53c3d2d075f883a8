"""Element types in the three vocabularies the server speaks: KServe v2 (``FP32``), model
configurations (``TYPE_FP32``), and the engine's ``DataType`` — each mapped to NumPy."""

from __future__ import annotations

import ml_dtypes
import numpy as np

import engine as trt
from server.core.errors import InvalidArgument

# KServe v2 datatype -> NumPy dtype. BYTES tensors are object arrays of ``bytes``.
NUMPY_OF_DATATYPE: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "BYTES": np.dtype(object),
}

# The engine's types as KServe datatypes (FP8 and INT4 have no KServe name).
DATATYPE_OF_ENGINE: dict[trt.DataType, str] = {
    trt.DataType.FLOAT: "FP32",
    trt.DataType.HALF: "FP16",
    trt.DataType.BF16: "BF16",
    trt.DataType.INT8: "INT8",
    trt.DataType.INT32: "INT32",
    trt.DataType.INT64: "INT64",
    trt.DataType.UINT8: "UINT8",
    trt.DataType.BOOL: "BOOL",
}

# Triton's model-configuration names are the KServe names with a prefix, except STRING.
CONFIG_PREFIX = "TYPE_"


def datatype_from_config(name: str) -> str:
    """``TYPE_FP32`` -> ``FP32``; ``TYPE_STRING`` -> ``BYTES``."""
    if not name.startswith(CONFIG_PREFIX):
        raise InvalidArgument(f"data_type {name!r}: expected one of {config_names()}")
    short = name[len(CONFIG_PREFIX):]
    short = "BYTES" if short == "STRING" else short
    if short not in NUMPY_OF_DATATYPE:
        raise InvalidArgument(f"data_type {name!r}: expected one of {config_names()}")
    return short


def datatype_to_config(datatype: str) -> str:
    return CONFIG_PREFIX + ("STRING" if datatype == "BYTES" else datatype)


def config_names() -> list[str]:
    return [datatype_to_config(d) for d in NUMPY_OF_DATATYPE]


def datatype_of_engine(dtype: trt.DataType) -> str:
    try:
        return DATATYPE_OF_ENGINE[dtype]
    except KeyError:
        raise InvalidArgument(f"engine type {dtype.name} has no KServe v2 datatype") from None


def numpy_of(datatype: str) -> np.dtype:
    try:
        return NUMPY_OF_DATATYPE[datatype]
    except KeyError:
        raise InvalidArgument(f"unknown datatype {datatype!r}; expected one of "
                              f"{sorted(NUMPY_OF_DATATYPE)}") from None


def datatype_of_numpy(dtype: np.dtype) -> str:
    for name, candidate in NUMPY_OF_DATATYPE.items():
        if candidate == dtype:
            return name
    if dtype.kind in "SU":
        return "BYTES"
    raise InvalidArgument(f"NumPy dtype {dtype} has no KServe v2 datatype")
