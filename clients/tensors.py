"""NumPy arrays as KServe v2 tensors: datatype names and the raw byte layout both protocols
share (little-endian, row-major; BOOL one byte per element; each BYTES element a 4-byte
little-endian length then its bytes)."""

from __future__ import annotations

import math
import struct

import numpy as np

NUMPY_OF_DATATYPE: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64), "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16), "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}


def datatype_of(array: np.ndarray) -> str:
    """The KServe datatype of ``array``; str, bytes and object arrays are BYTES."""
    if array.dtype.kind in "SUO":
        return "BYTES"
    if array.dtype.name == "bfloat16":
        return "BF16"
    for name, dtype in NUMPY_OF_DATATYPE.items():
        if dtype == array.dtype:
            return name
    raise TypeError(f"NumPy dtype {array.dtype} has no KServe v2 datatype")


def to_bytes(array: np.ndarray) -> bytes:
    if datatype_of(array) == "BYTES":
        parts = []
        for item in array.reshape(-1):
            data = item.encode() if isinstance(item, str) else bytes(item)
            parts += [struct.pack("<I", len(data)), data]
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def from_bytes(raw: bytes, datatype: str, shape: list[int]) -> np.ndarray:
    if datatype == "BYTES":
        items, pos = [], 0
        while pos < len(raw):
            (length,) = struct.unpack_from("<I", raw, pos)
            items.append(bytes(raw[pos + 4:pos + 4 + length]))
            pos += 4 + length
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array.reshape(shape)
    if datatype == "BF16":
        import ml_dtypes  # only needed for BF16 tensors

        dtype = np.dtype(ml_dtypes.bfloat16)
    else:
        dtype = NUMPY_OF_DATATYPE[datatype].newbyteorder("<")
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{len(raw)} bytes for a {datatype} tensor of shape {shape} "
                         f"({expected} expected)")
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="), copy=True) \
        .reshape(shape)
