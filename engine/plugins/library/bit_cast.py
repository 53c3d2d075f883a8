"""``BitCast_TRT``: ONNX's BitCast, the bytes of each element read as another type of the same
width (little endian, as NumPy's ``view`` on this host).

Input: one tensor carried in an engine type; output: same shape. Fields: ``from_type`` and
``to``, ONNX ``TensorProto`` data type numbers. A type TensorRT lacks is carried in the type the
ONNX parser narrows it to (DOUBLE in FLOAT, INT16 and UINT16 in INT32, UINT32 and UINT64 in
INT64): the kernel first converts the carried values back to ``from_type`` (exact when the
narrowed values hold the original ones), reinterprets those bytes as ``to``, then carries the
result the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_dtypes
import numpy as np

from engine.plugins.dimensions import DimsExprs
from engine.plugins.interfaces import PluginFieldType
from engine.plugins.library.base import LibraryPlugin, register_library_plugin
from engine.types import DataType

# ONNX TensorProto data type numbers -> (NumPy type, engine type carrying it); onnx is not
# needed at run time.
TYPES: dict[int, tuple[type, DataType]] = {
    1: (np.float32, DataType.FLOAT),
    2: (np.uint8, DataType.UINT8),
    3: (np.int8, DataType.INT8),
    4: (np.uint16, DataType.INT32),
    5: (np.int16, DataType.INT32),
    6: (np.int32, DataType.INT32),
    7: (np.int64, DataType.INT64),
    9: (np.bool_, DataType.BOOL),
    10: (np.float16, DataType.HALF),
    11: (np.float64, DataType.FLOAT),
    12: (np.uint32, DataType.INT64),
    13: (np.uint64, DataType.INT64),
    16: (ml_dtypes.bfloat16, DataType.BF16),
}
_CARRIER = {DataType.FLOAT: np.float32, DataType.UINT8: np.uint8, DataType.INT8: np.int8,
            DataType.INT32: np.int32, DataType.INT64: np.int64, DataType.BOOL: np.bool_,
            DataType.HALF: np.float16, DataType.BF16: ml_dtypes.bfloat16}


def bit_cast(x: np.ndarray, from_type: int, to: int) -> np.ndarray:
    """``x`` (carried values of ONNX type ``from_type``) reinterpreted as ``to``, carried."""
    source, _ = TYPES[from_type]
    target, carrier = TYPES[to]
    original: np.ndarray = np.ascontiguousarray(x.astype(source))
    return original.view(target).reshape(x.shape).astype(_CARRIER[carrier])


@register_library_plugin
class BitCastPlugin(LibraryPlugin):
    NAME = "BitCast_TRT"
    enqueue_takes_host_arrays = True  # computed on the host on either target
    FIELDS = {"from_type": (PluginFieldType.INT32, 1), "to": (PluginFieldType.INT32, 6)}

    def check(self) -> None:
        for field in ("from_type", "to"):
            if getattr(self, field) not in TYPES:
                raise ValueError(f"BitCast_TRT: '{field}' must be one of the ONNX types "
                                 f"{sorted(TYPES)}, got {getattr(self, field)}")
        width = {np.dtype(TYPES[t][0]).itemsize for t in (self.from_type, self.to)}
        if len(width) != 1:
            raise ValueError(f"BitCast_TRT: types {self.from_type} and {self.to} differ in "
                             f"width")

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        return [TYPES[self.to][1]]

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        if len(inputs) != 1:
            raise ValueError("BitCast_TRT takes one input")
        return [DimsExprs(inputs[0])]

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        outputs[0][...] = bit_cast(np.asarray(inputs[0]), self.from_type, self.to)
