"""CPU kernel of the scale layer."""

from __future__ import annotations

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.spatial_conv import weights_array
from engine.network.layers.spatial_scale import IScaleLayer


@kernel(LayerType.SCALE, backend="cpu", name="cpu.scale")
def scale(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IScaleLayer)
    (x,) = inputs
    shape = layer.coefficient_shape(x.shape)

    def coefficients(name: str) -> np.ndarray | None:
        values = weights_array(getattr(layer, name))
        if not values.size:
            return None
        if values.size != int(np.prod(shape)):
            layer.fail(f"{name} holds {values.size} values; input shape {x.shape} needs "
                       f"{int(np.prod(shape))}")
        return values.astype(np.float32).reshape(shape)

    out = x.astype(np.float32)
    factor, shift, power = coefficients("scale"), coefficients("shift"), coefficients("power")
    if factor is not None:
        out *= factor
    if shift is not None:
        out += shift
    if power is not None:
        # A negative base to a fractional power is NaN, as on the device; no warning.
        with np.errstate(invalid="ignore", divide="ignore"):
            out = out ** power
    return [out.astype(x.dtype, copy=False)]
