"""CPU kernels of the elementwise and select layers. Integer arithmetic stays integer and
exact (shape tensors are computed with it): DIV truncates toward zero, FLOOR_DIV floors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.kernels.cpu.math_numeric import dtype_of, narrow, widen
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.math_elementwise import (
    COMPARISON_OPERATIONS,
    LOGICAL_OPERATIONS,
    ElementWiseOperation,
    IElementWiseLayer,
)
from engine.types import DataType

Binary = Callable[[np.ndarray, np.ndarray], np.ndarray]


def divide_toward_zero(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division rounding toward zero, as C and TensorRT's integer DIV do."""
    quotient = np.floor_divide(a, b)
    inexact = np.remainder(a, b) != 0
    return quotient + (inexact & ((a < 0) != (b < 0))).astype(quotient.dtype)


def _floor_divide_floats(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.floor(np.divide(a, b))


_COMMON: dict[ElementWiseOperation, Binary] = {
    ElementWiseOperation.SUM: np.add,
    ElementWiseOperation.PROD: np.multiply,
    ElementWiseOperation.MAX: np.maximum,
    ElementWiseOperation.MIN: np.minimum,
    ElementWiseOperation.SUB: np.subtract,
    ElementWiseOperation.POW: np.power,
    ElementWiseOperation.AND: np.logical_and,
    ElementWiseOperation.OR: np.logical_or,
    ElementWiseOperation.XOR: np.logical_xor,
    ElementWiseOperation.EQUAL: np.equal,
    ElementWiseOperation.GREATER: np.greater,
    ElementWiseOperation.LESS: np.less,
}
_ON_FLOATS: dict[ElementWiseOperation, Binary] = {
    **_COMMON,
    ElementWiseOperation.DIV: np.divide,
    ElementWiseOperation.FLOOR_DIV: _floor_divide_floats,
}
_ON_INTEGERS: dict[ElementWiseOperation, Binary] = {
    **_COMMON,
    ElementWiseOperation.DIV: divide_toward_zero,
    ElementWiseOperation.FLOOR_DIV: np.floor_divide,
}


@kernel(LayerType.ELEMENTWISE, backend="cpu", name="cpu.elementwise")
def elementwise(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IElementWiseLayer)
    op = ElementWiseOperation(layer.op)
    in_type = dtype_of(inputs[0])
    a, b = widen(inputs[0]), widen(inputs[1])
    table = _ON_INTEGERS if a.dtype.kind in "iub" else _ON_FLOATS
    # Division by zero, overflow and NaN follow IEEE (floats) or wrap (integers), silently.
    with np.errstate(all="ignore"):
        result = table[op](a, b)
    boolean = op in LOGICAL_OPERATIONS or op in COMPARISON_OPERATIONS
    return [narrow(result, DataType.BOOL if boolean else in_type)]


@kernel(LayerType.SELECT, backend="cpu", name="cpu.select")
def select(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    condition, then_values, else_values = inputs
    return [np.where(condition, then_values, else_values)]
