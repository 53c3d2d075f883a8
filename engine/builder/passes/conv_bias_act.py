"""Convolution + bias + activation fusion: ``activation(conv(x) + bias)`` becomes one
``IFusedConvolutionLayer`` named ``"conv1 + relu1"``, as TensorRT names fused layers.

Preconditions: per-channel adds are already folded into the convolution's bias
(``fold_scales``); the convolution's kernel and bias are weights, its only reader is the
activation, and the target backend has a tactic for the fused layer.
"""

from __future__ import annotations

from engine.builder.passes.context import PassContext
from engine.builder.passes.rewrite import only_consumer, replace_chain
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layer import LayerType
from engine.network.layers.fused import IFusedConvolutionLayer
from engine.network.layers.math_pointwise import ActivationType, IActivationLayer
from engine.network.layers.spatial_conv import IConvolutionLayer


def fuse_conv_bias_act(network: INetworkDefinition, context: PassContext | None = None) -> bool:
    context = context or PassContext()
    if not context.has_tactics(LayerType.FUSED_CONVOLUTION):
        return False
    changed = False
    for conv in topological_order(network._layers):
        if type(conv) is not IConvolutionLayer or len(
                [t for t in conv._inputs if t is not None]) != 1:
            continue
        act = only_consumer(network, conv._outputs[0])
        if not isinstance(act, IActivationLayer):
            continue
        fused = IFusedConvolutionLayer.from_convolution(
            conv, None, ActivationType(act.type), act.alpha, act.beta)
        if not context.accepts(fused):
            continue
        replace_chain(network, fused, [conv, act])
        changed = True
    return changed
