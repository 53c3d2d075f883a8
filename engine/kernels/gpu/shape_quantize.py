"""GPU kernels of ``IQuantizeLayer`` and ``IDequantizeLayer`` to and from INT8 (per tensor,
per channel or per block scales, as the CPU kernels); CuPy has no FP8 or INT4 arrays."""

from __future__ import annotations

from typing import Any

import cupy
import numpy as np

from engine.kernels.gpu.capabilities import device_types_only, memory_order
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.shape_quantize import IDequantizeLayer, IQuantizeLayer, scale_blocks
from engine.types import nptype

_quantize = cupy.ElementwiseKernel(
    "T x, float32 s, float32 z", "int8 q",
    "q = (signed char)fminf(127.f, fmaxf(-128.f, "
    "fminf(127.f, fmaxf(-128.f, rintf((float)x / s))) + z));", "engine_quantize_int8")
_dequantize = cupy.ElementwiseKernel(
    "Q q, float32 s, float32 z", "T x", "x = (T)(((float)q - z) * s);", "engine_dequantize")


def broadcast_scale(scale: cupy.ndarray, shape: tuple[int, ...], axis: int) -> cupy.ndarray:
    """``scale`` as float32, broadcastable against a tensor of ``shape``."""
    scale = scale.astype(cupy.float32)
    blocks = scale_blocks(shape, scale.shape, axis)
    if blocks is None:
        return scale.reshape(())
    if scale.ndim == 1 and (len(shape) != 1 or axis >= 0):
        return scale.reshape([-1 if i == axis else 1 for i in range(len(shape))])
    for dim, block in enumerate(blocks):
        scale = cupy.repeat(scale, block, axis=dim)
    return scale


def _int8_codes(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    code = inputs[0] if isinstance(layer, IDequantizeLayer) else None
    target = layer.to_type if isinstance(layer, IQuantizeLayer) else None  # type: ignore[attr-defined]
    if code is not None and code.dtype.name != "INT8":
        return False
    if target is not None and target.name != "INT8":
        return False
    return device_types_only(layer, inputs)


def _zero(inputs: list[cupy.ndarray | None], shape: tuple[int, ...], axis: int
          ) -> cupy.ndarray:
    zero_point = inputs[2] if len(inputs) > 2 else None
    if zero_point is None:
        return np.float32(0.0)  # type: ignore[return-value]
    return broadcast_scale(zero_point, shape, axis)


def _pointwise(kernel: cupy.ElementwiseKernel, layer: IQuantizeLayer | IDequantizeLayer,
               inputs: list[cupy.ndarray | None], dtype: Any) -> cupy.ndarray:
    """``kernel(x, scale, zero)`` into a new ``dtype`` array laid out as ``x`` (a channels-last
    input gives a channels-last output, walked in memory order)."""
    x, scale = inputs[0], inputs[1]
    assert x is not None and scale is not None
    operands = [x, broadcast_scale(scale, x.shape, layer.axis), _zero(inputs, x.shape, layer.axis)]
    order = memory_order(x)
    if order is not None:
        operands = [a.transpose(order) if getattr(a, "ndim", 0) == x.ndim else a
                    for a in operands]
    out = cupy.empty(operands[0].shape, dtype)
    kernel(*operands, out)
    return out if order is None else out.transpose(tuple(np.argsort(order)))


@kernel(LayerType.QUANTIZE, backend="gpu", name="gpu.quantize_int8", supports=_int8_codes)
def quantize(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IQuantizeLayer)
    return [_pointwise(_quantize, layer, inputs, cupy.int8)]


@kernel(LayerType.DEQUANTIZE, backend="gpu", name="gpu.dequantize_int8", supports=_int8_codes)
def dequantize(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IDequantizeLayer)
    return [_pointwise(_dequantize, layer, inputs, nptype(layer.to_type))]
