"""``IFusedPointwiseLayer``: a chain of elementwise, unary, activation and cast operations run
as one layer (the builder's pointwise fusion creates it; a GPU backend can compile its program
into one kernel).

The program is a tuple of steps; each step is a tuple ``(kind, op, operand, ...)``:

- ``("elementwise", "SUM", a, b)``, ``("unary", "SQRT", a)``,
- ``("activation", "RELU", a, alpha, beta)``, ``("cast", "HALF", a)``.

Operand ``i`` names input ``i`` when ``i < num_inputs``, else the result of step
``i - num_inputs``. The last step's result is the layer's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.math_elementwise import (
    COMPARISON_OPERATIONS,
    LOGICAL_OPERATIONS,
    ElementWiseOperation,
)
from engine.network.layers.math_pointwise import ActivationType, UnaryOperation
from engine.network.shapes import broadcast_shapes
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor

Step = tuple  # (kind, op name, operand indices..., [alpha, beta])
ARITY = {"elementwise": 2, "unary": 1, "activation": 1, "cast": 1}


def step_operands(step: Step) -> tuple[int, ...]:
    """The operand indices of ``step``."""
    return tuple(int(i) for i in step[2:2 + ARITY[str(step[0])]])


class IFusedPointwiseLayer(ILayer):
    """Runs ``program`` (see the module docstring) on its inputs."""

    type = LayerType.FUSED_POINTWISE
    _attributes: ClassVar[tuple[str, ...]] = ("program",)
    _max_inputs = 64

    def __init__(self, network: INetworkDefinition, inputs: Sequence[ITensor],
                 program: Sequence[Step]) -> None:
        super().__init__(network, list(inputs))
        self.program = tuple(tuple(step) for step in program)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        infos: list[TensorInfo] = self.require_inputs(inputs, len(inputs))
        if not self.program:
            self.fail("the program is empty")
        for number, step in enumerate(self.program):
            kind = str(step[0])
            if kind not in ARITY:
                self.fail(f"step {number}: unknown kind {kind!r}; known: {sorted(ARITY)}")
            operands = step_operands(step)
            if any(not 0 <= i < len(infos) for i in operands):
                self.fail(f"step {number} reads operand {operands}, only {len(infos)} exist")
            args = [infos[i] for i in operands]
            dtype = args[0].dtype
            shape = args[0].shape
            if kind == "elementwise":
                op = ElementWiseOperation[str(step[1])]
                if args[0].dtype != args[1].dtype:
                    self.fail(f"step {number} ({op.name}): operand types differ")
                try:
                    shape = broadcast_shapes(args[0].shape, args[1].shape)
                except ValueError as exc:
                    self.fail(f"step {number} ({op.name}): {exc}")
                if op in LOGICAL_OPERATIONS or op in COMPARISON_OPERATIONS:
                    dtype = DataType.BOOL
            elif kind == "unary":
                if UnaryOperation[str(step[1])] in (UnaryOperation.ISINF, UnaryOperation.ISNAN):
                    dtype = DataType.BOOL
            elif kind == "activation":
                ActivationType[str(step[1])]
            else:
                dtype = DataType[str(step[1])]
            infos.append(TensorInfo(shape, dtype))
        return [infos[-1]]
