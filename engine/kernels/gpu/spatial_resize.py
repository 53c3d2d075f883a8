"""GPU kernel of resize: separable, one axis at a time, as the CPU kernel; the per-axis
index and weight tables (and TF_CROP_AND_RESIZE's extrapolated positions) are computed on the
host by the CPU kernel's ``axis_plan`` and kept on the device per input shape, so every mode
the CPU kernel has (antialias and crop-and-resize included) runs here too."""

from __future__ import annotations

import cupy
import numpy as np

from engine.kernels.cpu.spatial_resize import axis_plan, resized_axes
from engine.kernels.gpu.capabilities import device_types_only, host_value
from engine.kernels.gpu.weights import derived_constant
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.spatial_resize import (
    InterpolationMode,
    IResizeLayer,
)


def _resize_axis(layer: IResizeLayer, x: cupy.ndarray, axis: int, out: int, scale: float
                 ) -> cupy.ndarray:
    """``x`` resized along ``axis`` with the CPU kernel's tables (``axis_plan``), which are
    made on the host once per input shape and kept on the device."""
    size = x.shape[axis]
    key = (axis, x.shape, out, scale)
    index, weights, outside = axis_plan(layer, axis, size, out, scale)
    shape = [1] * x.ndim
    shape[axis] = out
    taps = derived_constant(layer, key + ("index",), lambda: index)
    if weights is None:
        result = cupy.take(x, taps, axis=axis)
    else:
        coefficients = derived_constant(layer, key + ("weights",), lambda: weights)
        result = cupy.zeros(x.shape[:axis] + (out,) + x.shape[axis + 1:], cupy.float32)
        for tap in range(taps.shape[1]):
            result += cupy.take(x, taps[:, tap], axis=axis) * \
                coefficients[:, tap].reshape(shape)
    if outside is not None:
        mask = derived_constant(layer, key + ("outside",), lambda: outside.reshape(shape))
        fill = cupy.asarray(np.asarray(layer.extrapolation_value, result.dtype))
        result = cupy.where(mask, fill, result)
    return result


@kernel(LayerType.RESIZE, backend="gpu", name="gpu.resize_separable",
        supports=device_types_only)
def resize(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IResizeLayer)
    x = inputs[0]
    assert x is not None
    given = inputs[1] if len(inputs) > 1 else None
    nearest = InterpolationMode(layer.resize_mode) == InterpolationMode.NEAREST
    y = x if nearest else x.astype(cupy.float32, copy=False)
    for axis, out, scale in resized_axes(layer, x.shape,
                                         None if given is None else host_value(given)):
        y = _resize_axis(layer, y, axis, out, scale)
    return [y.copy() if y is x else y.astype(x.dtype, copy=False)]
