"""Layers that map each element on its own: ``IActivationLayer``, ``IUnaryLayer``,
``IParametricReLULayer`` (with a broadcast slope) and ``ICastLayer``."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo, attribute_enum
from engine.network.layers.math_types import (
    FLOATS,
    FLOATS_AND_INT8,
    INTEGERS,
    require_dtype,
    require_same_dtype,
)
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


@attribute_enum
class ActivationType(enum.IntEnum):
    """Activation functions; ``alpha`` and ``beta`` mean what the comment on each says."""

    RELU = 0  # max(0, x)
    SIGMOID = 1
    TANH = 2
    LEAKY_RELU = 3  # x >= 0 ? x : alpha * x
    ELU = 4  # x >= 0 ? x : alpha * (exp(x) - 1)
    SELU = 5  # x > 0 ? beta * x : beta * (alpha * exp(x) - alpha)
    SOFTSIGN = 6  # x / (1 + |x|)
    SOFTPLUS = 7  # alpha * log(exp(beta * x) + 1)
    CLIP = 8  # max(alpha, min(beta, x))
    HARD_SIGMOID = 9  # max(0, min(1, alpha * x + beta))
    SCALED_TANH = 10  # alpha * tanh(beta * x)
    THRESHOLDED_RELU = 11  # x > alpha ? x : 0
    GELU_ERF = 12  # 0.5 * x * (1 + erf(x / sqrt(2)))
    GELU_TANH = 13  # 0.5 * x * (1 + tanh(sqrt(2 / pi) * (0.044715 * x^3 + x)))


class IActivationLayer(ILayer):
    """An activation function. As in TensorRT, the instance attribute ``type`` is the
    ``ActivationType`` (use ``layer_type`` for the ``LayerType``)."""

    type = LayerType.ACTIVATION
    _attributes: ClassVar[tuple[str, ...]] = ("type", "alpha", "beta")

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 activation: ActivationType) -> None:
        super().__init__(network, [input])
        self.type = ActivationType(activation)  # type: ignore[misc,assignment]
        self.alpha = 0.0
        self.beta = 0.0

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        activation = ActivationType(self.type)
        require_dtype(self, "input", x.dtype, FLOATS_AND_INT8, activation.name)
        return [TensorInfo(x.shape, x.dtype)]


@attribute_enum
class UnaryOperation(enum.IntEnum):
    """Operations of ``IUnaryLayer`` (TensorRT's names and values)."""

    EXP = 0
    LOG = 1
    SQRT = 2
    RECIP = 3
    ABS = 4
    NEG = 5
    SIN = 6
    COS = 7
    TAN = 8
    SINH = 9
    COSH = 10
    ASIN = 11
    ACOS = 12
    ATAN = 13
    ASINH = 14
    ACOSH = 15
    ATANH = 16
    CEIL = 17
    FLOOR = 18
    ERF = 19
    NOT = 20
    SIGN = 21
    ROUND = 22  # to nearest, ties to even
    ISINF = 23
    ISNAN = 24


# Operations that are exact on integers, so TensorRT runs them on INT32 and INT64 too.
INTEGER_UNARY_OPERATIONS = frozenset({UnaryOperation.ABS, UnaryOperation.NEG,
                                      UnaryOperation.SIGN})


def _unary_types(op: UnaryOperation) -> frozenset[DataType]:
    if op == UnaryOperation.NOT:
        return frozenset({DataType.BOOL})
    if op in (UnaryOperation.ISINF, UnaryOperation.ISNAN):
        return FLOATS
    if op in INTEGER_UNARY_OPERATIONS:
        return FLOATS_AND_INT8 | INTEGERS
    return FLOATS_AND_INT8


class IUnaryLayer(ILayer):
    """``op`` applied to each element; ISINF and ISNAN yield BOOL."""

    type = LayerType.UNARY
    _attributes: ClassVar[tuple[str, ...]] = ("op",)

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 op: UnaryOperation) -> None:
        super().__init__(network, [input])
        self.op = UnaryOperation(op)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        op = UnaryOperation(self.op)
        require_dtype(self, "input", x.dtype, _unary_types(op), op.name)
        boolean = op in (UnaryOperation.ISINF, UnaryOperation.ISNAN)
        return [TensorInfo(x.shape, DataType.BOOL if boolean else x.dtype)]


class IParametricReLULayer(ILayer):
    """``x >= 0 ? x : slope * x`` with ``slope`` (input 1) broadcast to the input's shape:
    same rank, each dimension equal to the input's or 1."""

    type = LayerType.PARAMETRIC_RELU
    _max_inputs = 2

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        x, slope = self.require_inputs(inputs, 2)
        require_dtype(self, "input", x.dtype, FLOATS_AND_INT8)
        require_same_dtype(self, ("input", "slope"), x.dtype, slope.dtype)
        if slope.rank != x.rank:
            self.fail(f"slope has rank {slope.rank} but the input has rank {x.rank}; they must "
                      f"be equal")
        for axis, (d, s) in enumerate(zip(x.shape, slope.shape)):
            if s not in (1, -1) and d != -1 and s != d:
                self.fail(f"slope dimension {axis} is {s}; it must be 1 or the input's {d} "
                          f"(slope {slope.shape}, input {x.shape})")
        return [TensorInfo(x.shape, x.dtype)]


# INT4 is a storage type for quantized weights; TensorRT does not cast to it.
CAST_TARGETS = frozenset(DataType) - {DataType.INT4}


class ICastLayer(ILayer):
    """Converts its input to ``to_type``: floats to integers truncate toward zero, anything
    to BOOL is ``x != 0``."""

    type = LayerType.CAST
    _attributes: ClassVar[tuple[str, ...]] = ("to_type",)

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 to_type: DataType) -> None:
        super().__init__(network, [input])
        self.to_type = DataType(to_type)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        to_type = DataType(self.to_type)
        if to_type not in CAST_TARGETS:
            self.fail(f"to_type {to_type.name} is not a cast target; use one of "
                      f"{', '.join(sorted(d.name for d in CAST_TARGETS))}")
        return [TensorInfo(x.shape, to_type)]
