"""CPU kernel of ``IFillLayer``."""

from __future__ import annotations

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.shape_fill import IFillLayer, fill_values


@kernel(LayerType.FILL, backend="cpu", name="cpu.fill")
def fill(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    assert isinstance(layer, IFillLayer)
    given = list(inputs) + [None] * (3 - len(inputs))
    shape_in, alpha_in, beta_in = given[:3]
    shape = tuple(layer.shape) if shape_in is None else \
        tuple(int(d) for d in np.asarray(shape_in).reshape(-1))
    alpha = layer.alpha if alpha_in is None else alpha_in
    beta = layer.beta if beta_in is None else beta_in
    return [fill_values(layer.operation, shape, alpha, beta, layer.to_type, layer.seed)]
