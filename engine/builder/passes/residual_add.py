"""Residual-add fusion: ``activation(conv(x) + residual)`` (the activation optional), the
shortcut of a residual block, becomes one ``IFusedConvolutionLayer`` reading the residual as
an extra input, named ``"conv1 + add1 + relu1"``.

Preconditions: the convolution's kernel and bias are weights and its only reader is the SUM;
the residual has the convolution output's shape and type (no broadcasting); the target
backend has a tactic for the fused layer. When both inputs of the SUM are convolutions, the
one computed later is fused (the other is then ready before it runs).
"""

from __future__ import annotations

from engine.builder.passes.context import PassContext
from engine.builder.passes.rewrite import (
    only_consumer,
    other_input,
    replace_chain,
)
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layer import LayerType
from engine.network.layers.fused import IFusedConvolutionLayer
from engine.network.layers.math_elementwise import ElementWiseOperation, IElementWiseLayer
from engine.network.layers.math_pointwise import ActivationType, IActivationLayer
from engine.network.layers.spatial_conv import IConvolutionLayer


def fuse_residual_add(network: INetworkDefinition, context: PassContext | None = None) -> bool:
    context = context or PassContext()
    if not context.has_tactics(LayerType.FUSED_CONVOLUTION):
        return False
    changed = False
    for conv in reversed(topological_order(network._layers)):
        if type(conv) is not IConvolutionLayer or len(
                [t for t in conv._inputs if t is not None]) != 1:
            continue
        out = conv._outputs[0]
        add = only_consumer(network, out)
        if not isinstance(add, IElementWiseLayer) or add.op != ElementWiseOperation.SUM:
            continue
        residual = other_input(add, out)
        if residual is None or residual is out:
            continue
        if network._info(residual).shape != network._info(out).shape:
            continue
        act = only_consumer(network, add._outputs[0])
        last = act if isinstance(act, IActivationLayer) else add
        fused = IFusedConvolutionLayer.from_convolution(
            conv, residual, ActivationType(act.type) if last is act else None,
            getattr(last, "alpha", 0.0), getattr(last, "beta", 0.0))
        if not context.accepts(fused):
            continue
        replace_chain(network, fused, [conv, add] + ([act] if last is act else []))
        changed = True
    return changed
