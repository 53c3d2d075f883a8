"""Constant kernel and bias inputs back into weights: a convolution or deconvolution whose
kernel (input 1) or bias (input 2) is produced by a constant layer gets them as weights.

Exporters often route weights through nodes (ONNX Identity, casts) that the parser turns into
layers; once constant folding has reduced those to constants, this pass gives the layer its
weights back so that the fusions and weight-folding passes, which work on weights, apply.

Preconditions: runs after constant folding.
"""

from __future__ import annotations

from engine.builder.passes.rewrite import producer_constant
from engine.network.definition import INetworkDefinition
from engine.network.layers.spatial_conv import IConvolutionLayer, IDeconvolutionLayer
from engine.types import Weights


def inline_constant_weights(network: INetworkDefinition) -> bool:
    changed = False
    for layer in list(network._layers):
        if not isinstance(layer, (IConvolutionLayer, IDeconvolutionLayer)):
            continue
        inputs = layer._inputs
        kernel = producer_constant(inputs[1]) if len(inputs) > 1 else None
        bias = producer_constant(inputs[2]) if len(inputs) > 2 else None
        if len(inputs) > 1 and inputs[1] is not None and kernel is None:
            continue  # a kernel computed at run time: the layer keeps its tensor inputs
        if len(inputs) > 2 and inputs[2] is not None and bias is None:
            continue
        if kernel is None and bias is None:
            continue
        if kernel is not None:
            layer.kernel = Weights(kernel.array())
        if bias is not None:
            layer.bias = Weights(bias.array().reshape(-1))
        layer._inputs[:] = inputs[:1]
        network._relink(layer)
        network._cache.clear()
        changed = True
    return changed
