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


_IN_PLACE: dict[tuple[str, str], np.ufunc] = {
    ("elementwise", "SUM"): np.add, ("elementwise", "SUB"): np.subtract,
    ("elementwise", "PROD"): np.multiply, ("elementwise", "DIV"): np.divide,
    ("elementwise", "MAX"): np.maximum, ("elementwise", "MIN"): np.minimum,
}


def _run_in_place(step: tuple, args: list[np.ndarray], spare: np.ndarray | None
                  ) -> np.ndarray | None:
    """The float32 step computed into ``spare`` (a float32 intermediate that no later step
    reads, of the result's shape), or None when the step does not allow it."""
    if spare is None or any(a.dtype != np.float32 for a in args):
        return None
    kind, name = str(step[0]), str(step[1])
    with np.errstate(all="ignore"):
        if (kind, name) in _IN_PLACE:
            if np.broadcast_shapes(args[0].shape, args[1].shape) != spare.shape:
                return None
            return _IN_PLACE[kind, name](args[0], args[1], out=spare)  # type: ignore[no-any-return]
        if kind == "activation" and name == "RELU" and args[0].shape == spare.shape:
            return np.maximum(args[0], np.float32(0), out=spare)
    return None


@kernel(LayerType.FUSED_POINTWISE, backend="cpu", name="cpu.fused_pointwise")
def fused_pointwise(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Steps write into an intermediate that no later step reads where they can (a batch
    norm plus ReLU allocates one array, not three)."""
    assert isinstance(layer, IFusedPointwiseLayer)
    values = list(inputs)
    last_use: dict[int, int] = {}
    for index, step in enumerate(layer.program):
        for operand in step_operands(step):
            last_use[operand] = index
    owned: set[int] = set()  # intermediates this kernel allocated (never a layer input)
    for index, step in enumerate(layer.program):
        operands = step_operands(step)
        args = [values[i] for i in operands]
        spare = next((values[i] for i in operands if i in owned and last_use[i] == index
                      and values[i].dtype == np.float32), None)
        result = _run_in_place(step, args, spare)
        if result is None:
            result = run_step(step, args)
            if result.base is None and all(result is not v for v in values):
                owned.add(len(values))
        else:
            owned.add(len(values))
        values.append(result)
    return [values[-1]]
