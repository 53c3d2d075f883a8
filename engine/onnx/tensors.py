"""ONNX element types and tensors to the engine's ``DataType`` and NumPy arrays."""

from __future__ import annotations

from collections.abc import Callable

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from engine.onnx.errors import ErrorCode, ImportFailure
from engine.types import DataType

ONNX_TO_TRT: dict[int, DataType] = {
    TensorProto.FLOAT: DataType.FLOAT,
    TensorProto.FLOAT16: DataType.HALF,
    TensorProto.BFLOAT16: DataType.BF16,
    TensorProto.INT8: DataType.INT8,
    TensorProto.INT32: DataType.INT32,
    TensorProto.INT64: DataType.INT64,
    TensorProto.UINT8: DataType.UINT8,
    TensorProto.BOOL: DataType.BOOL,
    TensorProto.FLOAT8E4M3FN: DataType.FP8,
    TensorProto.INT4: DataType.INT4,
}

TRT_TO_ONNX: dict[DataType, int] = {v: k for k, v in ONNX_TO_TRT.items()}

# Types TensorRT lacks that the parser imports as a wider or nearby type, as TensorRT's own
# parser narrows DOUBLE to FLOAT: each with a warning starting "narrowed" (never silently).
# Values keep their meaning, except DOUBLE's extra precision and range.
NARROWED: dict[int, int] = {
    TensorProto.DOUBLE: TensorProto.FLOAT,
    TensorProto.INT16: TensorProto.INT32,
    TensorProto.UINT16: TensorProto.INT32,
    TensorProto.UINT32: TensorProto.INT64,
    TensorProto.UINT64: TensorProto.INT64,
}
# Types TensorRT lacks whose every value a wider engine type holds exactly: imported as that
# type, each with a warning starting "widened". A Cast *to* one of them is emulated (see
# ``EMULATED_CASTS``): the value rounded to the type's representable set, carried widened.
WIDENED: dict[int, int] = {
    TensorProto.FLOAT8E4M3FNUZ: TensorProto.FLOAT,
    TensorProto.FLOAT8E5M2: TensorProto.FLOAT,
    TensorProto.FLOAT8E5M2FNUZ: TensorProto.FLOAT,
    TensorProto.FLOAT4E2M1: TensorProto.FLOAT,
    TensorProto.INT2: TensorProto.INT8,
    TensorProto.UINT2: TensorProto.INT8,
    TensorProto.UINT4: TensorProto.INT8,
}
# Cast targets computed by the ``EmulatedCast_TRT`` plugin: the ONNX type -> its NumPy
# (ml_dtypes) type. INT4 is an engine type, but TensorRT casts to it only in Q/DQ.
EMULATED_CASTS: dict[int, type] = {
    TensorProto.FLOAT8E4M3FNUZ: ml_dtypes.float8_e4m3fnuz,
    TensorProto.FLOAT8E5M2: ml_dtypes.float8_e5m2,
    TensorProto.FLOAT8E5M2FNUZ: ml_dtypes.float8_e5m2fnuz,
    TensorProto.FLOAT4E2M1: ml_dtypes.float4_e2m1fn,
    TensorProto.INT2: ml_dtypes.int2,
    TensorProto.UINT2: ml_dtypes.uint2,
    TensorProto.UINT4: ml_dtypes.uint4,
    TensorProto.INT4: ml_dtypes.int4,
}
_NARROWED_NUMPY: dict[np.dtype, type] = {np.dtype(np.float64): np.float32,
                                         np.dtype(np.int16): np.int32,
                                         np.dtype(np.uint16): np.int32,
                                         np.dtype(np.uint32): np.int64,
                                         np.dtype(np.uint64): np.int64}
_WIDENED_NUMPY: dict[np.dtype, type] = {
    np.dtype(EMULATED_CASTS[t]): np.float32 if w == TensorProto.FLOAT else np.int8
    for t, w in WIDENED.items()}

Warn = Callable[[str], None]


def onnx_type_name(elem_type: int) -> str:
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"type #{elem_type}"


def narrowing_message(what: str, elem_type: int) -> str:
    return (f"narrowed: {what} has type {onnx_type_name(elem_type)}, which TensorRT does not "
            f"support; imported as {onnx_type_name(NARROWED[elem_type])}")


def widening_message(what: str, elem_type: int) -> str:
    return (f"widened: {what} has type {onnx_type_name(elem_type)}, which TensorRT does not "
            f"support; imported as {onnx_type_name(WIDENED[elem_type])}, which holds each of "
            f"its values exactly")


def trt_dtype(elem_type: int, what: str, warn: Warn | None = None) -> DataType:
    """The ``DataType`` of an ONNX element type; refuses types the engine has no kernel for.
    With ``warn``, a type in ``NARROWED`` or ``WIDENED`` imports as its narrowed or widened
    type (``warn`` says so)."""
    if elem_type in ONNX_TO_TRT:
        return ONNX_TO_TRT[elem_type]
    if warn is not None and elem_type in NARROWED:
        warn(narrowing_message(what, elem_type))
        return ONNX_TO_TRT[NARROWED[elem_type]]
    if warn is not None and elem_type in WIDENED:
        warn(widening_message(what, elem_type))
        return ONNX_TO_TRT[WIDENED[elem_type]]
    supported = ", ".join(onnx_type_name(t) for t in ONNX_TO_TRT)
    raise ImportFailure(ErrorCode.UNSUPPORTED_NODE_DATATYPE,
                        f"{what} has type {onnx_type_name(elem_type)}, which TensorRT does not "
                        f"support (supported: {supported})")


def array_from_tensor(proto: onnx.TensorProto, what: str, warn: Warn | None = None
                      ) -> np.ndarray:
    """A TensorProto's value as an array; DOUBLE is cast down to float32 as TensorRT does
    (and the other ``NARROWED`` types to theirs), with a warning through ``warn``."""
    if proto.data_type in NARROWED:
        if warn is not None:
            warn(narrowing_message(what, proto.data_type))
        elif proto.data_type != TensorProto.DOUBLE:
            trt_dtype(proto.data_type, what)
        return narrow_array(numpy_helper.to_array(proto))
    if proto.data_type in WIDENED:
        trt_dtype(proto.data_type, what, warn)
        return narrow_array(numpy_helper.to_array(proto))
    trt_dtype(proto.data_type, what)
    try:
        return numpy_helper.to_array(proto)
    except (ValueError, TypeError) as exc:
        raise ImportFailure(ErrorCode.INVALID_VALUE, f"{what}: {exc}") from None


def narrow_array(array: np.ndarray) -> np.ndarray:
    """``array`` in its ``NARROWED`` or ``WIDENED`` type (unchanged when its type is an engine
    type)."""
    target = _NARROWED_NUMPY.get(array.dtype) or _WIDENED_NUMPY.get(array.dtype)
    return array if target is None else array.astype(target)


def is_widened_dtype(dtype: np.dtype) -> bool:
    """Whether arrays of ``dtype`` are imported widened (lossless), or are what emulated casts
    (``EMULATED_CASTS``) carry widened."""
    return np.dtype(dtype) in _WIDENED_NUMPY or np.dtype(dtype) == np.dtype(ml_dtypes.int4)


def shape_of_value_info(value_info: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    """Declared dims of a graph input; symbolic (dim_param) and unknown dims become -1.
    None when the input declares no shape at all."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims = []
    for dim in tensor_type.shape.dim:
        dims.append(dim.dim_value if dim.HasField("dim_value") and dim.dim_value >= 0 else -1)
    return tuple(dims)
