"""CPU kernels of the identity and constant layers."""

from __future__ import annotations

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.basic import IConstantLayer
from engine.types import nptype


@kernel(LayerType.IDENTITY, backend="cpu", name="cpu.identity")
def identity(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    (x,) = inputs
    if layer.output_type_is_set(0):
        return [x.astype(nptype(layer.get_output_type(0)))]
    return [x.copy()]


@kernel(LayerType.CONSTANT, backend="cpu", name="cpu.constant")
def constant(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IConstantLayer)
    return [layer.array()]
