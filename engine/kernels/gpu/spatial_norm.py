"""GPU kernels of mean/variance normalization (layer, instance and group norm): two reduction
kernels (the sum, then the sum of squared deviations, both float32) and one elementwise kernel
that normalizes, scales and shifts; and of LRN across channels."""

from __future__ import annotations

import cupy
import numpy as np

from engine.kernels.cpu.spatial_norm import lrn_window_sums
from engine.kernels.gpu.capabilities import both, device_types_only
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.spatial_norm import ILRNLayer, INormalizationLayer
from engine.network.shapes import axes_from_mask

_sum = cupy.ReductionKernel("T x", "float32 y", "(float)x", "a + b", "y = a", "0",
                            "engine_norm_sum")
_deviations = cupy.ReductionKernel(
    "T x, float32 s, float32 inv", "float32 y",
    "((float)x - s * inv) * ((float)x - s * inv)", "a + b", "y = a", "0",
    "engine_norm_squared_deviations")
_normalize = cupy.ElementwiseKernel(
    "T x, float32 s, float32 d, float32 inv, float32 eps", "float32 y",
    "y = ((float)x - s * inv) * rsqrtf(d * inv + eps)", "engine_norm_normalize")
_normalize_affine = cupy.ElementwiseKernel(
    "T x, float32 s, float32 d, S g, S b, float32 inv, float32 eps", "T y",
    "y = (T)(((float)x - s * inv) * rsqrtf(d * inv + eps) * (float)g + (float)b)",
    "engine_norm_normalize_affine")
_affine = cupy.ElementwiseKernel("float32 n, S g, S b", "T y", "y = (T)(n * (float)g + (float)b)",
                                 "engine_norm_affine")


def _coefficients_fit(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, INormalizationLayer)
    return layer.check_coefficients(inputs) and all(
        i is not None and i.dtype.name in ("FLOAT", "HALF") for i in inputs)


def statistics(x: cupy.ndarray, axes: tuple[int, ...]) -> tuple[cupy.ndarray, cupy.ndarray,
                                                                  np.float32]:
    """Per normalized slice: the sum, the sum of squared deviations, and 1 / count."""
    sums = _sum(x, axis=axes, keepdims=True)
    inv = np.float32(1.0 / max(x.size // max(sums.size, 1), 1))
    deviations = _deviations(x, cupy.broadcast_to(sums, x.shape), inv, axis=axes,
                             keepdims=True)
    return sums, deviations, inv


@kernel(LayerType.NORMALIZATION, backend="gpu", name="gpu.normalization_reductions",
        supports=both(device_types_only, _coefficients_fit))
def normalization(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, INormalizationLayer)
    x, scale, bias = inputs
    axes = tuple(axes_from_mask(int(layer.axes), x.ndim))
    groups = int(layer.num_groups)
    eps = np.float32(layer.epsilon)
    out = cupy.empty(x.shape, x.dtype)
    if groups <= 1:
        sums, deviations, inv = statistics(x, axes)
        _normalize_affine(x, sums, deviations, scale, bias, inv, eps, out)
        return [out]
    # [N, C, ...] -> [N, G, C/G, ...]: each group normalizes over its channels and the axes.
    grouped = x.reshape(x.shape[:1] + (groups, x.shape[1] // groups) + x.shape[2:])
    reduce = (2,) + tuple(a + 1 for a in axes)
    sums, deviations, inv = statistics(grouped, reduce)
    normalized = cupy.empty(grouped.shape, cupy.float32)
    _normalize(grouped, sums, deviations, inv, eps, normalized)
    if scale.ndim > 1 and scale.shape[1] == groups != x.shape[1]:  # per-group coefficients
        scale, bias = (cupy.repeat(v, x.shape[1] // groups, axis=1) for v in (scale, bias))
    _affine(normalized.reshape(x.shape), scale, bias, out)
    return [out]


# -- LRN ----------------------------------------------------------------------------------------
_lrn = cupy.ElementwiseKernel(
    "T x, float32 sums, float32 k, float32 scale, float32 beta", "T y",
    "y = (T)((float)x / powf(k + scale * sums, beta))", "engine_lrn")


@kernel(LayerType.LRN, backend="gpu", name="gpu.lrn_cumsum",
        supports=both(device_types_only, lambda layer, inputs: all(
            i is not None and i.dtype.name in ("FLOAT", "HALF") for i in inputs)))
def lrn(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    """The CPU kernel's arithmetic in float32: window sums of squares over the channels by
    differences of a zero-led cumulative sum, then ``x / (k + alpha / n * sum) ** beta``."""
    assert isinstance(layer, ILRNLayer)
    (x,) = inputs
    data = x.astype(cupy.float32, copy=False)
    axis = x.ndim - 3
    half = (layer.window_size - 1) // 2
    squares = cupy.moveaxis(data * data, axis, 0)
    sums = cupy.moveaxis(lrn_window_sums(cupy, squares, half), 0, axis)
    out = cupy.empty(x.shape, x.dtype)
    _lrn(x, sums, np.float32(layer.k), np.float32(layer.alpha / layer.window_size),
         np.float32(layer.beta), out)
    return [out]
