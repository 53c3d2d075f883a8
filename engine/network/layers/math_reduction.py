"""Layers that work along axes: ``IReduceLayer``, ``ISoftMaxLayer``, ``ITopKLayer`` and
``ICumulativeLayer``. Axes are TensorRT bit masks (bit i = axis i) except the cumulative
layer's, which is a 0-D tensor input."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from engine.network.layer import ILayer, LayerType, TensorInfo, attribute_enum
from engine.network.layers.math_types import FLOATS, INTEGERS, NUMERIC, require_dtype
from engine.network.shapes import axes_from_mask, normalize_axis
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


@attribute_enum
class ReduceOperation(enum.IntEnum):
    """Reductions of ``IReduceLayer``. Over an empty volume: SUM 0, PROD 1, MAX the lowest
    value, MIN the highest, AVG NaN (floats) or 0 (integers)."""

    SUM = 0
    PROD = 1
    MAX = 2
    MIN = 3
    AVG = 4


def _axes_of(layer: ILayer, mask: int, rank: int) -> tuple[int, ...]:
    try:
        return axes_from_mask(int(mask), rank)
    except ValueError as exc:
        layer.fail(str(exc))


def _single_axis(layer: ILayer, mask: int, rank: int) -> int:
    axes = _axes_of(layer, mask, rank)
    if len(axes) != 1:
        layer.fail(f"axes {int(mask):#b} must set exactly one bit (one axis of rank {rank})")
    return axes[0]


class IReduceLayer(ILayer):
    """Reduces the axes in the bit mask ``axes`` with ``op``; ``keep_dims`` keeps them as 1."""

    type = LayerType.REDUCE
    _attributes: ClassVar[tuple[str, ...]] = ("op", "axes", "keep_dims")

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 op: ReduceOperation, axes: int, keep_dims: bool) -> None:
        super().__init__(network, [input])
        self.op = ReduceOperation(op)
        self.axes = int(axes)
        self.keep_dims = bool(keep_dims)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        require_dtype(self, "input", x.dtype, NUMERIC, ReduceOperation(self.op).name)
        axes = _axes_of(self, self.axes, x.rank)
        if self.keep_dims:
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return [TensorInfo(shape, x.dtype)]


def default_softmax_axes(rank: int) -> int:
    """TensorRT's default: the axis ``rank - 3``, or 0 when there are fewer than 3 axes."""
    return 1 << max(0, rank - 3)


class ISoftMaxLayer(ILayer):
    """Softmax along the one axis set in the bit mask ``axes``."""

    type = LayerType.SOFTMAX
    _attributes: ClassVar[tuple[str, ...]] = ("axes",)

    def __init__(self, network: INetworkDefinition, input: ITensor) -> None:  # noqa: A002
        super().__init__(network, [input])
        self.axes = default_softmax_axes(len(input.shape))

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        require_dtype(self, "input", x.dtype, FLOATS)
        if x.rank == 0:
            self.fail("input is a scalar; softmax needs at least one axis")
        _single_axis(self, self.axes, x.rank)
        return [TensorInfo(x.shape, x.dtype)]


@attribute_enum
class TopKOperation(enum.IntEnum):
    """Whether ``ITopKLayer`` keeps the largest or the smallest values."""

    MAX = 0
    MIN = 1


MAX_TOPK_K = 3840  # TensorRT's limit on k


class ITopKLayer(ILayer):
    """The ``k`` largest (MAX) or smallest (MIN) values along the one axis in ``axes``,
    sorted, with their INT32 indices (output 1); equal values keep their order.
    ``set_input(1, k)`` takes k from a 0-D INT32 or INT64 shape tensor instead."""

    type = LayerType.TOPK
    _attributes: ClassVar[tuple[str, ...]] = ("op", "k", "axes")
    _shape_inputs = (1,)
    _max_inputs = 2

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 op: TopKOperation, k: int, axes: int) -> None:
        super().__init__(network, [input], num_outputs=2)
        self.op = TopKOperation(op)
        self.k = int(k)
        self.axes = int(axes)

    def _k_of(self, inputs: list[TensorInfo | None]) -> int:
        """k, or -1 when it comes from a shape tensor whose value is not known yet."""
        k_input = inputs[1] if len(inputs) > 1 else None
        if k_input is None:
            return int(self.k)
        if k_input.rank != 0:
            self.fail(f"k input (1) must be a 0-D tensor, got shape {k_input.shape}")
        require_dtype(self, "k input (1)", k_input.dtype, INTEGERS)
        return -1 if k_input.value is None else int(k_input.value)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        require_dtype(self, "input", x.dtype, FLOATS | INTEGERS, TopKOperation(self.op).name)
        if x.rank == 0:
            self.fail("input is a scalar; TopK needs at least one axis")
        axis = _single_axis(self, self.axes, x.rank)
        k = self._k_of(inputs)
        if k != -1:
            if not 0 < k <= MAX_TOPK_K:
                self.fail(f"k is {k}; it must be in [1, {MAX_TOPK_K}]")
            if x.shape[axis] != -1 and k > x.shape[axis]:
                self.fail(f"k is {k} but axis {axis} has only {x.shape[axis]} elements")
        shape = tuple(k if i == axis else d for i, d in enumerate(x.shape))
        return [TensorInfo(shape, x.dtype), TensorInfo(shape, DataType.INT32)]


@attribute_enum
class CumulativeOperation(enum.IntEnum):
    """Operations of ``ICumulativeLayer``."""

    SUM = 0


def cumulative_axis(layer: ILayer, axis: TensorInfo | None, rank: int) -> int:
    """The axis of a cumulative layer from its axis input (a build-time constant 0-D tensor)."""
    if axis is None:
        layer.fail("input 1 (axis) is not set")
    if axis.rank != 0:
        layer.fail(f"axis input must be a 0-D tensor, got shape {axis.shape}")
    require_dtype(layer, "axis input", axis.dtype, INTEGERS)
    if axis.value is None:
        layer.fail("axis input must be a build-time constant (e.g. from add_constant)")
    try:
        return normalize_axis(int(np.asarray(axis.value)), rank)
    except ValueError as exc:
        layer.fail(str(exc))


class ICumulativeLayer(ILayer):
    """Prefix ``op`` along the axis given by input 1; ``exclusive`` leaves out the element
    itself, ``reverse`` runs from the end."""

    type = LayerType.CUMULATIVE
    _attributes: ClassVar[tuple[str, ...]] = ("op", "exclusive", "reverse")
    _shape_inputs = (1,)
    _max_inputs = 2

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 axis: ITensor, op: CumulativeOperation, exclusive: bool,
                 reverse: bool) -> None:
        super().__init__(network, [input, axis])
        self.op = CumulativeOperation(op)
        self.exclusive = bool(exclusive)
        self.reverse = bool(reverse)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        require_dtype(self, "input", x.dtype, FLOATS | INTEGERS,
                      CumulativeOperation(self.op).name)
        if x.rank == 0:
            self.fail("input is a scalar; a cumulative operation needs at least one axis")
        cumulative_axis(self, inputs[1] if len(inputs) > 1 else None, x.rank)
        return [TensorInfo(x.shape, x.dtype)]
