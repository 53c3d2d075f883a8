"""Binary and ternary elementwise layers with broadcasting: ``IElementWiseLayer`` and
``ISelectLayer``. Inputs must have equal ranks (TensorRT does not pad ranks); a dimension of 1
stretches to match the other."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo, attribute_enum
from engine.network.layers.math_types import (
    FLOATS,
    FLOATS_AND_INT8,
    NUMERIC,
    require_dtype,
    require_same_dtype,
)
from engine.network.shapes import broadcast_shapes
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


@attribute_enum
class ElementWiseOperation(enum.IntEnum):
    """Binary operations of ``IElementWiseLayer`` (TensorRT's names and values)."""

    SUM = 0
    PROD = 1
    MAX = 2
    MIN = 3
    SUB = 4
    DIV = 5
    POW = 6
    FLOOR_DIV = 7
    AND = 8
    OR = 9
    XOR = 10
    EQUAL = 11
    GREATER = 12
    LESS = 13


LOGICAL_OPERATIONS = frozenset({ElementWiseOperation.AND, ElementWiseOperation.OR,
                                ElementWiseOperation.XOR})
COMPARISON_OPERATIONS = frozenset({ElementWiseOperation.EQUAL, ElementWiseOperation.GREATER,
                                   ElementWiseOperation.LESS})


def _accepted_types(op: ElementWiseOperation) -> frozenset[DataType]:
    """Input types per operation, from TensorRT's ElementWise operator reference."""
    if op in LOGICAL_OPERATIONS:
        return frozenset({DataType.BOOL})
    if op in COMPARISON_OPERATIONS:
        return FLOATS | {DataType.INT32, DataType.INT64}
    if op == ElementWiseOperation.POW:
        return FLOATS_AND_INT8
    return NUMERIC


class IElementWiseLayer(ILayer):
    """``op`` applied elementwise to two broadcast inputs; comparisons yield BOOL."""

    type = LayerType.ELEMENTWISE
    _attributes: ClassVar[tuple[str, ...]] = ("op",)
    _max_inputs = 2

    def __init__(self, network: INetworkDefinition, input1: ITensor, input2: ITensor,
                 op: ElementWiseOperation) -> None:
        super().__init__(network, [input1, input2])
        self.op = ElementWiseOperation(op)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        a, b = self.require_inputs(inputs, 2)
        op = ElementWiseOperation(self.op)
        require_same_dtype(self, ("input 0", "input 1"), a.dtype, b.dtype)
        require_dtype(self, "input 0", a.dtype, _accepted_types(op), op.name)
        try:
            shape = broadcast_shapes(a.shape, b.shape)
        except ValueError as exc:
            self.fail(f"{op.name}: {exc}")
        boolean = op in LOGICAL_OPERATIONS or op in COMPARISON_OPERATIONS
        return [TensorInfo(shape, DataType.BOOL if boolean else a.dtype)]


class ISelectLayer(ILayer):
    """``then_input`` where ``condition`` (BOOL) holds, else ``else_input``; all three
    broadcast together."""

    type = LayerType.SELECT
    _max_inputs = 3

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        condition, then_input, else_input = self.require_inputs(inputs, 3)
        if condition.dtype != DataType.BOOL:
            self.fail(f"condition has type {condition.dtype.name}; it must be BOOL")
        require_same_dtype(self, ("then_input", "else_input"), then_input.dtype,
                           else_input.dtype)
        require_dtype(self, "then_input", then_input.dtype, NUMERIC | {DataType.BOOL})
        try:
            shape = broadcast_shapes(condition.shape, then_input.shape, else_input.shape)
        except ValueError as exc:
            self.fail(str(exc))
        return [TensorInfo(shape, then_input.dtype)]
