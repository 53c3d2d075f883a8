"""CPU kernel of resize: separable, one axis at a time, each a gather of neighbouring slices
weighted by the interpolation coefficients (nearest: one tap, linear: two, cubic: four; with
``antialias``, as many as the filter stretched by 1 / scale covers)."""

from __future__ import annotations

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.spatial_resize import (
    InterpolationMode,
    IResizeLayer,
    ResizeCoordinateTransformation,
    ResizeRoundMode,
    ResizeSelector,
)
from engine.types import from_numpy_dtype


def source_coordinates(layer: IResizeLayer, size: int, out: int, scale: float) -> np.ndarray:
    """The input coordinate (float64) each of the ``out`` output positions maps to."""
    x = np.arange(out, dtype=np.float64)
    transform = ResizeCoordinateTransformation(layer.coordinate_transformation)
    if transform == ResizeCoordinateTransformation.ALIGN_CORNERS:
        return x * (size - 1) / (out - 1) if out > 1 else np.zeros(out)
    if transform == ResizeCoordinateTransformation.ASYMMETRIC:
        return x / scale
    if out == 1 and ResizeSelector(layer.selector_for_single_pixel) == ResizeSelector.UPPER:
        return np.zeros(out)
    return (x + 0.5) / scale - 0.5


def _nearest_indices(layer: IResizeLayer, coords: np.ndarray, size: int) -> np.ndarray:
    rounding = ResizeRoundMode(layer.nearest_rounding)
    if rounding == ResizeRoundMode.HALF_UP:
        index = np.floor(coords + 0.5)
    elif rounding == ResizeRoundMode.HALF_DOWN:
        index = np.ceil(coords - 0.5)
    elif rounding == ResizeRoundMode.FLOOR:
        index = np.floor(coords)
    else:
        index = np.ceil(coords)
    return np.clip(index, 0, size - 1).astype(np.int64)


def crop_coordinates(layer: IResizeLayer, axis: int, size: int, out: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """TF_CROP_AND_RESIZE: the input coordinate of each output position, which spans the
    axis' roi, and whether it falls outside the input (reading ``extrapolation_value``)."""
    roi = layer.roi
    assert roi is not None
    # Rounded to float32 as onnxruntime does: a coordinate a rounding error away from a half
    # pixel then picks the same nearest pixel.
    start, end = roi[axis], roi[len(roi) // 2 + axis]
    if out > 1:
        x = start * (size - 1) + np.arange(out) * (end - start) * (size - 1) / (out - 1)
    else:
        x = np.full(out, 0.5 * (start + end) * (size - 1))
    x = x.astype(np.float32).astype(np.float64)
    return x, (x < 0) | (x > size - 1)


def _keys_cubic(d: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel at distances ``d``."""
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _cubic_weights(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution weights of the taps at floor - 1 .. floor + 2, ``[out, 4]``."""
    return _keys_cubic(np.stack([t + 1, t, 1 - t, 2 - t], axis=1), a)


def _excluding_outside(index: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """``weights`` with the taps outside the input zeroed and each row renormalized."""
    weights = np.where((index < 0) | (index >= size), 0.0, weights)
    total = weights.sum(axis=1, keepdims=True)
    return weights / np.where(total == 0, 1.0, total)


def _antialias_taps(layer: IResizeLayer, coords: np.ndarray, size: int, scale: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Input indices ``[out, taps]`` and weights of the linear or cubic filter stretched by
    1 / scale when downscaling (ONNX Resize's antialias); as ``_taps`` when upscaling."""
    cubic = InterpolationMode(layer.resize_mode) == InterpolationMode.CUBIC
    radius = 2 if cubic else 1
    stretch = min(scale, 1.0)
    first = int(np.floor(-radius / stretch)) + 1
    offsets = np.arange(first, 2 - first)
    # The taps are counted from the pixel left of the coordinate, the one below it when the
    # coordinate is a whole pixel (as ONNX's reference), so t lies in (0, 1].
    base = np.ceil(coords) - 1
    t = coords - base
    distances = (offsets[None, :] - t[:, None]) * stretch
    if cubic:
        weights = _keys_cubic(distances, float(layer.cubic_coeff))
    else:
        weights = np.clip(1 - np.abs(distances), 0, 1)
    weights = weights / weights.sum(axis=1, keepdims=True)
    index = base[:, None] + offsets[None, :]
    if layer.exclude_outside:
        weights = _excluding_outside(index, weights, size)
    # Taps past the edges read the edge value.
    return np.clip(index, 0, size - 1).astype(np.int64), weights


def _taps(layer: IResizeLayer, coords: np.ndarray, size: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """Input indices ``[out, taps]`` and their weights for one axis."""
    mode = InterpolationMode(layer.resize_mode)
    if mode == InterpolationMode.LINEAR:
        coords = np.clip(coords, 0, size - 1)
        base = np.floor(coords)
        t = coords - base
        index = np.stack([base, base + 1], axis=1)
        weights = np.stack([1 - t, t], axis=1)
        return np.clip(index, 0, size - 1).astype(np.int64), weights
    base = np.floor(coords)
    t = coords - base
    index = base[:, None] + np.arange(-1, 3)[None, :]
    weights = _cubic_weights(t, float(layer.cubic_coeff))
    if layer.exclude_outside:
        weights = _excluding_outside(index, weights, size)
    # Taps past the edges read the edge value.
    return np.clip(index, 0, size - 1).astype(np.int64), weights


def axis_plan(layer: IResizeLayer, axis: int, size: int, out: int, scale: float
              ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """How one axis of ``size`` resizes to ``out`` positions: the input indices (``[out]``
    for NEAREST, else ``[out, taps]``), the taps' float32 weights (None for NEAREST), and
    the positions outside the input that read ``extrapolation_value`` (None if none). The
    GPU kernel applies the same tables."""
    outside = None
    if ResizeCoordinateTransformation(layer.coordinate_transformation) == \
            ResizeCoordinateTransformation.TF_CROP_AND_RESIZE:
        coords, outside = crop_coordinates(layer, axis, size, out)
    else:
        coords = source_coordinates(layer, size, out, scale)
    if outside is not None and not outside.any():
        outside = None
    if InterpolationMode(layer.resize_mode) == InterpolationMode.NEAREST:
        return _nearest_indices(layer, coords, size), None, outside
    if layer.antialias:
        index, weights = _antialias_taps(layer, coords, size, scale)
    else:
        index, weights = _taps(layer, coords, size)
    return index, weights.astype(np.float32), outside


def resize_axis(layer: IResizeLayer, x: np.ndarray, axis: int, out: int, scale: float
                ) -> np.ndarray:
    """``x`` resized along ``axis`` to ``out`` positions."""
    shape = [1] * x.ndim
    shape[axis] = out
    index, weights, outside = axis_plan(layer, axis, x.shape[axis], out, scale)
    if weights is None:
        result = np.take(x, index, axis=axis)
    else:
        result = np.zeros(x.shape[:axis] + (out,) + x.shape[axis + 1:], np.float32)
        for tap in range(index.shape[1]):
            result += np.take(x, index[:, tap], axis=axis) * weights[:, tap].reshape(shape)
    if outside is not None:
        fill = np.asarray(layer.extrapolation_value).astype(result.dtype)
        result = np.where(outside.reshape(shape), fill, result)
    return result


def resized_axes(layer: IResizeLayer, shape: tuple[int, ...], given: np.ndarray | None
                 ) -> list[tuple[int, int, float]]:
    """(axis, output size, scale) of each axis the layer changes (resizes or crops), for an
    input of ``shape`` and the host value of its sizes-or-scales input (None: the layer's
    own); the GPU kernel walks the same axes."""
    if given is not None:
        outs, scales = layer.resolve(shape, given, from_numpy_dtype(given.dtype))
    else:
        outs, scales = layer.resolve(shape)
    return [(axis, out, scale) for axis, (size, out, scale) in enumerate(zip(shape, outs, scales))
            if size != out or scale != 1.0 or layer.crops(axis)]


@kernel(LayerType.RESIZE, backend="cpu", name="cpu.resize_separable")
def resize(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    assert isinstance(layer, IResizeLayer)
    x = inputs[0]
    assert x is not None
    given = inputs[1] if len(inputs) > 1 else None
    nearest = InterpolationMode(layer.resize_mode) == InterpolationMode.NEAREST
    y = x if nearest else x.astype(np.float32, copy=False)
    for axis, out, scale in resized_axes(layer, x.shape, given):
        y = resize_axis(layer, y, axis, out, scale)
    return [np.array(y, dtype=x.dtype, copy=True) if y is x else y.astype(x.dtype, copy=False)]
