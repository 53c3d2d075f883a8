"""``IShapeLayer`` (a tensor's shape as an INT64 tensor) and ``IConcatenationLayer``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


class IShapeLayer(ILayer):
    """The shape of its input as a 1-D INT64 tensor (TensorRT 10's type for shapes)."""

    type = LayerType.SHAPE

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        # The value is known whenever the input shape is, even for large inputs: this is what
        # lets Shape -> Gather -> Concat -> Shuffle chains give static shapes.
        value = np.array(x.shape, np.int64) if x.is_static else None
        return [TensorInfo((x.rank,), DataType.INT64, value)]


class IConcatenationLayer(ILayer):
    """Joins its inputs along ``axis``; the other dims must match."""

    type = LayerType.CONCATENATION
    _validated_on_add = False  # attributes are set after add_*
    _attributes: ClassVar[tuple[str, ...]] = ("axis",)

    def __init__(self, network: INetworkDefinition, inputs: Sequence[ITensor]) -> None:
        super().__init__(network, inputs)
        # TensorRT's default: the number of dims minus three, or 0 below rank 3.
        self.axis = max(0, len(inputs[0].shape) - 3) if inputs else 0

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        if not inputs:
            self.fail("needs at least one input")
        infos = self.require_inputs(inputs, len(inputs))
        first = infos[0]
        rank, axis = first.rank, self.axis
        if not 0 <= axis < rank:
            self.fail(f"axis {axis} is out of range for inputs of rank {rank}")
        shape = list(first.shape)
        for index, info in enumerate(infos[1:], start=1):
            if info.dtype != first.dtype:
                self.fail(f"input {index} has type {info.dtype.name}, input 0 has "
                          f"{first.dtype.name}")
            if info.rank != rank:
                self.fail(f"input {index} has shape {info.shape}, input 0 has {first.shape}: "
                          f"ranks differ")
            for d, (a, b) in enumerate(zip(shape, info.shape)):
                if d == axis:
                    shape[d] = a + b if a >= 0 and b >= 0 else -1
                elif a >= 0 and b >= 0 and a != b:
                    self.fail(f"input {index} has shape {info.shape}, input 0 has "
                              f"{first.shape}: dim {d} differs (concatenation axis {axis})")
                elif a < 0:
                    shape[d] = b
        return [TensorInfo(tuple(shape), first.dtype)]
