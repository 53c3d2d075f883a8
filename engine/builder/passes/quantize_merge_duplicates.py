"""Merge quantize layers that compute the same codes: several ``IQuantizeLayer`` reading one
tensor with the same type, axis, block shape and constant scale (and zero point, or none)
become the first of them, whose codes every reader then reads. A tensor that two quantized
convolutions read (a ResNet stage's input feeds its first block's convolution and shortcut)
is quantized once instead of once per reader.

Preconditions: the scales (and zero points) are constants; no merged layer's output is a
network output (each output keeps its own tensor).
"""

from __future__ import annotations

import numpy as np

from engine.builder.passes.rewrite import constant_value, remove_layer, replace_tensor
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layers.shape_quantize import IQuantizeLayer


def _signature(layer: IQuantizeLayer) -> tuple | None:
    """What makes two quantize layers of one tensor give the same codes; None when a scale
    or zero point is computed at run time."""
    scale = constant_value(layer._inputs[1])
    zero_tensor = layer._inputs[2] if len(layer._inputs) > 2 else None
    zero = None if zero_tensor is None else constant_value(zero_tensor)
    if scale is None or (zero_tensor is not None and zero is None):
        return None
    zero_key = None if zero is None or not np.any(zero) else (zero.shape, zero.tobytes())
    scale = np.asarray(scale, np.float32)
    return (layer.to_type, layer.axis, tuple(layer.block_shape), scale.shape, scale.tobytes(),
            zero_key)


def merge_duplicate_quantize(network: INetworkDefinition) -> bool:
    changed = False
    first: dict[tuple, IQuantizeLayer] = {}
    for layer in topological_order(network._layers):
        if type(layer) is not IQuantizeLayer or layer._inputs[0] is None or \
                layer._outputs[0] in network._outputs:
            continue
        signature = _signature(layer)
        if signature is None:
            continue
        key = (id(layer._inputs[0]),) + signature
        kept = first.setdefault(key, layer)
        if kept is not layer:
            replace_tensor(network, layer._outputs[0], kept._outputs[0])
            remove_layer(network, layer)
            changed = True
    return changed
