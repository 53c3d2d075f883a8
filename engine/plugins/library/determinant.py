"""``Determinant_TRT``: the determinant of each square matrix in the last two axes, as ONNX's
``Det`` (LU factorization with partial pivoting, in float64: NumPy's ``linalg.det`` on the CPU
target, CuPy's on the GPU).

Input [..., M, M] (FLOAT or HALF); output [...] of the same type. No fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.plugins.dimensions import DimsExprs
from engine.plugins.library.base import LibraryPlugin, array_module, register_library_plugin
from engine.types import DataType


@register_library_plugin
class DeterminantPlugin(LibraryPlugin):
    NAME = "Determinant_TRT"
    # cupy.linalg.det runs cuBLAS / cuSOLVER through CuPy, which refuses calls while a stream
    # is being captured: engines with this plugin run without CUDA graphs.
    host_synchronizing = True

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        return [DataType(input_types[0])]

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        if len(inputs) != 1 or len(inputs[0]) < 2:
            raise ValueError("Determinant_TRT takes one input of square matrices [..., M, M]")
        return [DimsExprs(list(inputs[0])[:-2])]

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        x = inputs[0]
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"Determinant_TRT: matrices of {x.shape[-2]}x{x.shape[-1]} are "
                             f"not square")
        xp = array_module(x)
        outputs[0][...] = xp.linalg.det(x.astype(np.float64)).astype(outputs[0].dtype)
