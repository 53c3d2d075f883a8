"""Remove redundant dequantize → quantize pairs: quantizing ``DQ(codes, s)`` again with the
same scale, axis and type gives back ``codes`` exactly, so readers of the quantize layer read
the codes themselves (and a quantize → dequantize chain repeated between layers collapses).

Preconditions: both scales are constants of equal shape and value, zero points are absent or
zeros, the quantize layer's ``to_type`` is the codes' type. Layers left without readers go with
dead-layer elimination.
"""

from __future__ import annotations

import numpy as np

from engine.builder.passes.quantize_operands import dequantized_operand
from engine.builder.passes.rewrite import producer_constant, replace_tensor
from engine.network.definition import INetworkDefinition
from engine.network.layers.shape_quantize import IQuantizeLayer


def remove_redundant_dequantize_quantize(network: INetworkDefinition) -> bool:
    changed = False
    for layer in list(network._layers):
        if not isinstance(layer, IQuantizeLayer):
            continue
        operand = dequantized_operand(layer._inputs[0])
        scale = producer_constant(layer._inputs[1])
        zero = layer._inputs[2] if len(layer._inputs) > 2 else None
        if operand is None or scale is None or layer._outputs[0].is_network_output:
            continue
        if zero is not None:
            value = producer_constant(zero)
            if value is None or np.any(value.array().astype(np.float32) != 0):
                continue
        same_scale = np.array_equal(np.asarray(scale.array(), np.float32), operand.scale)
        same_axis = operand.per_tensor or layer.axis == operand.axis
        if not (same_scale and same_axis) or layer.to_type != operand.code_type \
                or tuple(layer.block_shape) != tuple(operand.layer.block_shape):
            continue
        replace_tensor(network, layer._outputs[0], operand.codes)
        changed = True
    return changed
