"""GPU kernel of the einsum layer (``cupy.einsum`` in float32, rounded back)."""

from __future__ import annotations

import cupy

from engine.kernels.gpu.capabilities import device_types_only
from engine.kernels.gpu.math import narrow
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.math_contraction import IEinsumLayer, parse_einsum


@kernel(LayerType.EINSUM, backend="gpu", name="gpu.einsum", supports=device_types_only)
def einsum(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IEinsumLayer)
    equation = parse_einsum(layer.equation)
    operands = [x.astype(cupy.float32, copy=False) for x in inputs]
    return [narrow(cupy.einsum(equation.numpy_form, *operands), inputs[0].dtype)]
