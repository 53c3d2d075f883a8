"""``EmulatedCast_TRT``: a Cast to a type TensorRT lacks (FLOAT8E4M3FNUZ, FLOAT8E5M2,
FLOAT8E5M2FNUZ, FLOAT4E2M1, INT4, INT2, UINT2, UINT4), emulated: each value is rounded to the
target type's representable set (by ml_dtypes, round to nearest even, as ONNX's Cast) and
carried in a wider engine type that holds every value of the target exactly: FLOAT for the
float targets, INT8 for the integer ones.

Input: any numeric tensor. Output: same shape, FLOAT or INT8. Fields: ``to`` (the target as an
ONNX ``TensorProto`` data type number) and ``saturate`` (1: float8 targets clamp values out of
range, infinities included, to the largest finite value, as ONNX's ``saturate``; 0: they
become infinity or NaN as the target allows). Integer targets wrap around as ONNX's Cast (a
C-style conversion to the narrow integer), whatever ``saturate`` says.
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

# ONNX TensorProto data type numbers -> ml_dtypes types (onnx is not needed at run time).
TARGETS: dict[int, type] = {
    18: ml_dtypes.float8_e4m3fnuz,
    19: ml_dtypes.float8_e5m2,
    20: ml_dtypes.float8_e5m2fnuz,
    23: ml_dtypes.float4_e2m1fn,
    22: ml_dtypes.int4,
    21: ml_dtypes.uint4,
    26: ml_dtypes.int2,
    25: ml_dtypes.uint2,
}
_FLOAT8 = (18, 19, 20)


def emulated_cast(x: np.ndarray, to: int, saturate: bool) -> np.ndarray:
    """``x`` cast to ONNX type ``to`` and widened back (float32 or int8)."""
    target = TARGETS[to]
    if to in _FLOAT8 and saturate:
        info = ml_dtypes.finfo(target)
        x = np.clip(x.astype(np.float32), float(info.min), float(info.max))
    narrow: np.ndarray = x.astype(target)
    return narrow.astype(np.int8 if is_integer_target(to) else np.float32)


def is_integer_target(to: int) -> bool:
    return to in (21, 22, 25, 26)


@register_library_plugin
class EmulatedCastPlugin(LibraryPlugin):
    NAME = "EmulatedCast_TRT"
    enqueue_takes_host_arrays = True  # computed on the host on either target
    FIELDS = {"to": (PluginFieldType.INT32, 19), "saturate": (PluginFieldType.INT32, 1)}

    def check(self) -> None:
        if self.to not in TARGETS:
            raise ValueError(f"EmulatedCast_TRT: 'to' must be one of the ONNX types "
                             f"{sorted(TARGETS)}, got {self.to}")
        if self.saturate not in (0, 1):
            raise ValueError("EmulatedCast_TRT: saturate must be 0 or 1")

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        return [DataType.INT8 if is_integer_target(self.to) else DataType.FLOAT]

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        if len(inputs) != 1:
            raise ValueError("EmulatedCast_TRT takes one input")
        return [DimsExprs(inputs[0])]

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        outputs[0][...] = emulated_cast(np.asarray(inputs[0]), self.to, bool(self.saturate))
