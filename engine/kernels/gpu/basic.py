"""GPU kernels of the identity and constant layers."""

from __future__ import annotations

import cupy

from engine.kernels.gpu.capabilities import device_types_only
from engine.kernels.gpu.weights import device_weights
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.basic import IConstantLayer
from engine.types import nptype


@kernel(LayerType.IDENTITY, backend="gpu", name="gpu.identity", supports=device_types_only)
def identity(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    (x,) = inputs
    if layer.output_type_is_set(0):
        return [x.astype(nptype(layer.get_output_type(0)))]
    return [x.copy()]


def _constant_on_device(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConstantLayer)
    return device_types_only(layer, [TensorInfo(tuple(layer.shape), layer.weights.dtype)])


@kernel(LayerType.CONSTANT, backend="gpu", name="gpu.constant", supports=_constant_on_device)
def constant(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IConstantLayer)
    return [device_weights(layer.weights).reshape(tuple(layer.shape))]
