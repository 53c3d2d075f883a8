"""CPU kernels of ``IQuantizeLayer`` and ``IDequantizeLayer`` (the plain math; fused quantized
layers come from the builder)."""

from __future__ import annotations

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.shape_quantize import IDequantizeLayer, IQuantizeLayer, scale_blocks
from engine.types import DataType, nptype

# Saturation bounds of each quantized type (TensorRT clamps, never wraps).
SATURATION = {DataType.INT8: (-128.0, 127.0), DataType.INT4: (-8.0, 7.0),
              DataType.FP8: (-448.0, 448.0)}


def broadcast_scale(scale: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """``scale`` as float32, broadcastable against a tensor of ``shape`` (per tensor, per
    channel along ``axis``, or per block, each block's scale repeated over the block)."""
    scale = np.asarray(scale).astype(np.float32)
    blocks = scale_blocks(shape, scale.shape, axis)
    if blocks is None:
        return scale.reshape(())
    if scale.ndim == 1 and (len(shape) != 1 or axis >= 0):
        return scale.reshape([-1 if i == axis else 1 for i in range(len(shape))])
    for dim, block in enumerate(blocks):
        scale = np.repeat(scale, block, axis=dim)
    return scale


@kernel(LayerType.QUANTIZE, backend="cpu", name="cpu.quantize")
def quantize(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    assert isinstance(layer, IQuantizeLayer)
    x, scale = inputs[0], inputs[1]
    assert x is not None and scale is not None
    zero_point = inputs[2] if len(inputs) > 2 else None
    scaled = x.astype(np.float32) / broadcast_scale(scale, x.shape, layer.axis)
    low, high = SATURATION[layer.to_type]
    if layer.to_type == DataType.FP8:
        # The cast to float8 rounds to nearest even itself; saturate first (e4m3fn has no inf).
        codes = np.clip(scaled, low, high)
    else:
        codes = np.clip(np.rint(scaled), low, high)  # np.rint rounds half to even
    if zero_point is not None:
        zero = broadcast_scale(zero_point, x.shape, layer.axis)  # zeros, shaped as the scale
        codes = np.clip(codes + zero, low, high)
    return [codes.astype(nptype(layer.to_type))]


@kernel(LayerType.DEQUANTIZE, backend="cpu", name="cpu.dequantize")
def dequantize(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    assert isinstance(layer, IDequantizeLayer)
    q, scale = inputs[0], inputs[1]
    assert q is not None and scale is not None
    zero_point = inputs[2] if len(inputs) > 2 else None
    values = q.astype(np.float32)
    if zero_point is not None:
        values = values - broadcast_scale(zero_point, q.shape, layer.axis)
    return [(values * broadcast_scale(scale, q.shape, layer.axis)).astype(
        nptype(layer.to_type))]
