"""GPU kernels of the padding and scale layers."""

from __future__ import annotations

import cupy
import numpy as np

from engine.kernels.gpu.capabilities import device_types_only
from engine.kernels.gpu.spatial import pad_trailing
from engine.kernels.gpu.weights import derived_constant
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.spatial_conv import weights_array
from engine.network.layers.spatial_padding import IPaddingLayer
from engine.network.layers.spatial_scale import IScaleLayer


@kernel(LayerType.PADDING, backend="gpu", name="gpu.padding", supports=device_types_only)
def padding(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IPaddingLayer)
    (x,) = inputs
    out = pad_trailing(x, tuple(layer.pre_padding_nd), tuple(layer.post_padding_nd), 0)
    return [out.copy() if out is x or not out.flags.c_contiguous else out]


_scale_kernel = cupy.ElementwiseKernel(
    "T x, float32 s, float32 h, float32 p, bool powered", "T y",
    "float v = (float)x * s + h; y = (T)(powered ? powf(v, p) : v);", "engine_scale")


@kernel(LayerType.SCALE, backend="gpu", name="gpu.scale", supports=device_types_only)
def scale(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IScaleLayer)
    (x,) = inputs
    shape = layer.coefficient_shape(x.shape)

    def coefficients(name: str, default: float) -> cupy.ndarray:
        def make() -> np.ndarray:
            values = weights_array(getattr(layer, name))
            if not values.size:
                return np.full(shape, default, np.float32)
            if values.size != int(np.prod(shape)):
                layer.fail(f"{name} holds {values.size} values; input shape {x.shape} needs "
                           f"{int(np.prod(shape))}")
            return values.astype(np.float32).reshape(shape)
        return derived_constant(layer, (name, tuple(shape)), make)

    powered = bool(weights_array(layer.power).size)
    out = cupy.empty(x.shape, x.dtype)
    _scale_kernel(x, coefficients("scale", 1.0), coefficients("shift", 0.0),
                  coefficients("power", 1.0), powered, out)
    return [out]
