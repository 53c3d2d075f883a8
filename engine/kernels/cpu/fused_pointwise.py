"""CPU kernel of the fused pointwise layer: runs its program step by step with the same
element functions as the elementwise, unary, activation and cast kernels."""

from __future__ import annotations

import numpy as np

from engine.kernels.cpu.math_elementwise import _ON_FLOATS, _ON_INTEGERS
from engine.kernels.cpu.math_numeric import dtype_of, narrow, widen
from engine.kernels.cpu.math_pointwise import _ACTIVATIONS, _UNARY
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.fused_pointwise import IFusedPointwiseLayer, step_operands
from engine.network.layers.math_elementwise import (
    COMPARISON_OPERATIONS,
    LOGICAL_OPERATIONS,
    ElementWiseOperation,
)
from engine.network.layers.math_pointwise import ActivationType, UnaryOperation
from engine.types import DataType, nptype


def run_step(step: tuple, args: list[np.ndarray]) -> np.ndarray:
    """One program step on its operand arrays; the result has the step's output type."""
    kind, name = str(step[0]), str(step[1])
    in_type = dtype_of(args[0])
    if kind == "cast":
        to_type = DataType[name]
        if to_type == DataType.BOOL:
            return np.asarray(args[0] != 0)
        return args[0].astype(nptype(to_type))
    wide = [widen(a) for a in args]
    with np.errstate(all="ignore"):
        if kind == "elementwise":
            op = ElementWiseOperation[name]
            table = _ON_INTEGERS if wide[0].dtype.kind in "iub" else _ON_FLOATS
            boolean = op in LOGICAL_OPERATIONS or op in COMPARISON_OPERATIONS
            return narrow(table[op](wide[0], wide[1]), DataType.BOOL if boolean else in_type)
        if kind == "unary":
            op_u = UnaryOperation[name]
            boolean = op_u in (UnaryOperation.ISINF, UnaryOperation.ISNAN)
            return narrow(_UNARY[op_u](wide[0]), DataType.BOOL if boolean else in_type)
        alpha, beta = float(step[3]), float(step[4])
        return narrow(_ACTIVATIONS[ActivationType[name]](wide[0], alpha, beta), in_type)


@kernel(LayerType.FUSED_POINTWISE, backend="cpu", name="cpu.fused_pointwise")
def fused_pointwise(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IFusedPointwiseLayer)
    values = list(inputs)
    for step in layer.program:
        values.append(run_step(step, [values[i] for i in step_operands(step)]))
    return [values[-1]]
