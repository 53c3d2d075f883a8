"""RMSNorm recognition: ``x / sqrt(mean(x ^ 2) + eps)`` (or ``x * (1 / sqrt(...))``),
optionally ``* gamma``, becomes one ``IFusedRMSNormalizationLayer``.

Preconditions: run after ``recognize_layer_norm`` and ``eliminate_dead_layers`` (a layer norm
ends in the same pattern over ``x - mean(x)``); gamma is a constant broadcasting to the
input; the target backend has a tactic for the fused layer.
"""

from __future__ import annotations

import numpy as np

from engine.builder.passes.context import PassContext
from engine.builder.passes.normalization_match import affine_tail, normalized_by
from engine.builder.passes.rewrite import add_constant, insert_layer, replace_tensor
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layer import LayerType
from engine.network.layers.fused_attention import IFusedRMSNormalizationLayer
from engine.network.layers.math_elementwise import ElementWiseOperation, IElementWiseLayer
from engine.types import nptype


def recognize_rms_norm(network: INetworkDefinition, context: PassContext | None = None) -> bool:
    context = context or PassContext()
    if not context.has_tactics(LayerType.FUSED_RMS_NORMALIZATION):
        return False
    changed = False
    for layer in topological_order(network._layers):
        if type(layer) is not IElementWiseLayer or layer.op not in (ElementWiseOperation.DIV,
                                                                    ElementWiseOperation.PROD):
            continue
        found = normalized_by(layer._outputs[0])
        if found is None:
            continue
        out, x, axes, epsilon = found
        info = network._info(x)
        dtype = nptype(info.dtype)
        tail = affine_tail(network, out, info.rank)
        last, gamma = (tail[0], tail[1]) if tail[2] is None else (out, None)
        scale = add_constant(network, (np.ones((1,) * info.rank) if gamma is None else gamma)
                             .astype(dtype), f"{layer.name} [gamma]")
        norm = IFusedRMSNormalizationLayer(network, x, scale, axes, epsilon)
        if not context.accepts(norm):
            continue
        norm.name = f"{layer.name} [rms_norm]"
        replace_tensor(network, last, insert_layer(network, norm, like=last))
        changed = True
    return changed
