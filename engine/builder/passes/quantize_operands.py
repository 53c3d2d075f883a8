"""What the quantization passes share: recognizing a dequantized operand — the output of an
``IDequantizeLayer`` whose scale is a build-time constant — and reading its codes.

An operand is *dynamic* (codes computed at run time, e.g. by a quantize layer on an
activation; TensorRT quantizes activations per tensor only) or *constant* (weights: constant
codes, or a quantize layer on constant real weights, evaluated here once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.builder.passes.rewrite import producer_constant
from engine.kernels.cpu.shape_quantize import quantize
from engine.network.layers.shape_quantize import IDequantizeLayer, IQuantizeLayer
from engine.network.tensor import ITensor
from engine.types import DataType


@dataclass(frozen=True)
class DequantizedOperand:
    """``dequantize(codes, scale, axis) -> real_type``; ``constant_codes`` for weights."""

    layer: IDequantizeLayer
    codes: ITensor
    scale: np.ndarray
    axis: int
    code_type: DataType
    real_type: DataType
    constant_codes: np.ndarray | None

    @property
    def per_tensor(self) -> bool:
        return self.scale.size == 1


def _constant_value(tensor: ITensor | None) -> np.ndarray | None:
    constant = producer_constant(tensor)
    return None if constant is None else np.asarray(constant.array())


def dequantized_operand(tensor: ITensor | None) -> DequantizedOperand | None:
    """The dequantize layer producing ``tensor``, when its scale (and zero point, zeros) are
    constants; None otherwise."""
    layer = None if tensor is None else tensor._producer
    if not isinstance(layer, IDequantizeLayer) or layer._inputs[0] is None:
        return None
    scale = _constant_value(layer._inputs[1])
    if scale is None:
        return None
    zero = layer._inputs[2] if len(layer._inputs) > 2 else None
    if zero is not None:
        value = _constant_value(zero)
        if value is None or np.any(value.astype(np.float32) != 0):
            return None
    codes_tensor = layer._inputs[0]
    code_type = codes_tensor.dtype
    return DequantizedOperand(layer, codes_tensor, scale.astype(np.float32), layer.axis,
                              code_type, layer.to_type, constant_codes(codes_tensor))


def constant_codes(codes: ITensor) -> np.ndarray | None:
    """Codes known at build time: a constant, or a quantize layer of constants."""
    value = _constant_value(codes)
    if value is not None:
        return value
    producer = codes._producer
    if isinstance(producer, IQuantizeLayer):
        args = [_constant_value(t) for t in producer._inputs]
        if all(a is not None for t, a in zip(producer._inputs, args) if t is not None):
            return np.asarray(quantize(producer, args)[0])  # type: ignore[arg-type]
    return None
