"""GPU kernel of resize: separable, one axis at a time, as the CPU kernel; the per-axis
index and weight tables are computed on the host by the CPU kernel's functions and kept on
the device per input shape."""

from __future__ import annotations

import cupy
import numpy as np

from engine.kernels.cpu.spatial_resize import _nearest_indices, _taps, source_coordinates
from engine.kernels.gpu.capabilities import both, device_types_only, host_value
from engine.kernels.gpu.weights import derived_constant
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.spatial_resize import (
    InterpolationMode,
    IResizeLayer,
    ResizeCoordinateTransformation,
)
from engine.types import from_numpy_dtype


def _resize_axis(layer: IResizeLayer, x: cupy.ndarray, axis: int, out: int, scale: float
                 ) -> cupy.ndarray:
    size = x.shape[axis]
    key = (axis, x.shape, out, scale)
    if InterpolationMode(layer.resize_mode) == InterpolationMode.NEAREST:
        index = derived_constant(layer, key, lambda: _nearest_indices(
            layer, source_coordinates(layer, size, out, scale), size))
        return cupy.take(x, index, axis=axis)
    index = derived_constant(layer, key + ("index",), lambda: _taps(
        layer, source_coordinates(layer, size, out, scale), size)[0])
    weights = derived_constant(layer, key + ("weights",), lambda: _taps(
        layer, source_coordinates(layer, size, out, scale), size)[1].astype(np.float32))
    shape = [1] * x.ndim
    shape[axis] = out
    result = cupy.zeros(x.shape[:axis] + (out,) + x.shape[axis + 1:], cupy.float32)
    for tap in range(index.shape[1]):
        result += cupy.take(x, index[:, tap], axis=axis) * weights[:, tap].reshape(shape)
    return result


def _tensorrt_modes(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    """Not the layer's extensions (antialias, TF_CROP_AND_RESIZE): only the CPU kernel has
    them."""
    assert isinstance(layer, IResizeLayer)
    if ResizeCoordinateTransformation(layer.coordinate_transformation) == \
            ResizeCoordinateTransformation.TF_CROP_AND_RESIZE:
        return False
    return not layer.antialias or \
        InterpolationMode(layer.resize_mode) == InterpolationMode.NEAREST


@kernel(LayerType.RESIZE, backend="gpu", name="gpu.resize_separable",
        supports=both(device_types_only, _tensorrt_modes))
def resize(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IResizeLayer)
    x = inputs[0]
    assert x is not None
    given = inputs[1] if len(inputs) > 1 else None
    if given is not None:
        values = host_value(given)
        outs, scales = layer.resolve(x.shape, values, from_numpy_dtype(values.dtype))
    else:
        outs, scales = layer.resolve(x.shape)
    nearest = InterpolationMode(layer.resize_mode) == InterpolationMode.NEAREST
    y = x if nearest else x.astype(cupy.float32, copy=False)
    for axis, (size, out, scale) in enumerate(zip(x.shape, outs, scales)):
        if size != out or scale != 1.0:
            y = _resize_axis(layer, y, axis, out, scale)
    return [y.copy() if y is x else y.astype(x.dtype, copy=False)]
