"""LayerNorm recognition: ``(x - mean(x)) / sqrt(mean((x - mean(x)) ^ 2) + eps)``, optionally
``* gamma + beta``, as PyTorch exports ``LayerNorm`` below opset 17, becomes one
``INormalizationLayer`` over the same axes.

Preconditions: constants are folded; both means reduce the same axes with kept dimensions;
gamma and beta are constants that broadcast to the input. Replaced layers are left to
``eliminate_dead_layers``.
"""

from __future__ import annotations

import numpy as np

from engine.builder.passes.context import PassContext
from engine.builder.passes.normalization_match import affine_tail, mean_over, normalized_by
from engine.builder.passes.rewrite import add_constant, insert_layer, produced_by, replace_tensor
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layers.math_elementwise import ElementWiseOperation, IElementWiseLayer
from engine.network.layers.spatial_norm import INormalizationLayer
from engine.types import nptype


def recognize_layer_norm(network: INetworkDefinition, context: PassContext | None = None
                         ) -> bool:
    changed = False
    for layer in topological_order(network._layers):
        if type(layer) is not IElementWiseLayer or layer.op not in (ElementWiseOperation.DIV,
                                                                    ElementWiseOperation.PROD):
            continue
        found = normalized_by(layer._outputs[0])
        if found is None:
            continue
        out, centered, axes, epsilon = found
        sub = produced_by(centered, IElementWiseLayer, op=ElementWiseOperation.SUB)
        mean = None if sub is None else mean_over(sub._inputs[1])
        if mean is None or mean[0] is not sub._inputs[0] or mean[1] != axes:  # type: ignore[union-attr]
            continue
        x = mean[0]
        info = network._info(x)
        dtype = nptype(info.dtype)
        last, gamma, beta = affine_tail(network, out, info.rank)
        ones: np.ndarray = np.ones((1,) * info.rank, dtype)
        scale = add_constant(network, (ones if gamma is None else gamma).astype(dtype),
                             f"{layer.name} [gamma]")
        bias = add_constant(network, (ones * 0 if beta is None else beta).astype(dtype),
                            f"{layer.name} [beta]")
        norm = INormalizationLayer(network, x, scale, bias, axes)
        norm.epsilon = epsilon
        norm.name = f"{layer.name} [layer_norm]"
        replace_tensor(network, last, insert_layer(network, norm, like=last))
        changed = True
    return changed
