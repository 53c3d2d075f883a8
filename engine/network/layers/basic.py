"""Identity and constant layers: the two layers every family builds on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from engine.network.inference import MAX_VALUE_ELEMENTS
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.family import LayerFamily
from engine.types import DataType, Dims, Weights, as_weights, nptype, unpack_int4, volume

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


class IIdentityLayer(ILayer):
    """Copies its input; with ``set_output_type`` (weakly typed) it converts the type."""

    type = LayerType.IDENTITY

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        return [TensorInfo(x.shape, x.dtype, x.value)]


class IConstantLayer(ILayer):
    """A tensor whose value is given at build time (``weights``, of ``shape``)."""

    type = LayerType.CONSTANT
    _attributes: ClassVar[tuple[str, ...]] = ("shape", "weights")
    _max_inputs = 0

    def __init__(self, network: INetworkDefinition, shape: Sequence[int], weights: Weights):
        super().__init__(network, [])
        self.shape = Dims(shape)
        self.weights = as_weights(weights)

    def array(self) -> np.ndarray:
        """The constant's value as an array of ``shape`` (INT4 weights unpacked)."""
        w = self.weights
        shape = tuple(self.shape)
        if w.dtype == DataType.INT4 and w.numpy().dtype == np.uint8:
            return unpack_int4(w.numpy(), volume(shape)).reshape(shape)
        return w.numpy().astype(nptype(w.dtype), copy=False).reshape(shape)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        shape = tuple(self.shape)
        if any(d < 0 for d in shape):
            self.fail(f"shape {shape} must be fully specified")
        if volume(shape) != self.weights.size and not (
            self.weights.dtype == DataType.INT4 and (volume(shape) + 1) // 2 == self.weights.size
        ):
            self.fail(f"shape {shape} holds {volume(shape)} values but the weights have "
                      f"{self.weights.size}")
        value = self.array() if volume(shape) <= MAX_VALUE_ELEMENTS else None
        return [TensorInfo(shape, self.weights.dtype, value)]


class BasicLayers(LayerFamily):
    """``add_identity`` and ``add_constant`` (mixed into ``INetworkDefinition``)."""

    def add_identity(self, input: ITensor) -> IIdentityLayer:  # noqa: A002
        return self._add(IIdentityLayer, [input])

    def add_constant(
        self, shape: Sequence[int], weights: Weights | np.ndarray
    ) -> IConstantLayer:
        return self._add(IConstantLayer, shape, as_weights(weights))
