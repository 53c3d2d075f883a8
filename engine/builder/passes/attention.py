"""Scaled dot-product attention recognition::

    scores = q @ k (op1 NONE: k given as [.., D, Sk]) or q @ k^T (op1 TRANSPOSE)
    scores = scores * c  or  scores / c        (optional; c a scalar constant)
    scores = scores + mask                      (optional)
    out    = softmax(scores, last axis) @ v

becomes one ``IFusedAttentionLayer``.

Preconditions: each intermediate has one reader; the softmax is over the last axis; the
target backend has a tactic for the fused layer.
"""

from __future__ import annotations

from engine.builder.passes.context import PassContext
from engine.builder.passes.rewrite import (
    insert_layer,
    only_consumer,
    remove_layer,
    replace_tensor,
    scalar_constant,
)
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layer import ILayer, LayerType
from engine.network.layers.fused_attention import IFusedAttentionLayer
from engine.network.layers.math_contraction import IMatrixMultiplyLayer, MatrixOperation
from engine.network.layers.math_elementwise import ElementWiseOperation, IElementWiseLayer
from engine.network.layers.math_reduction import ISoftMaxLayer
from engine.network.tensor import ITensor


def _single(network: INetworkDefinition, tensor: ITensor | None) -> ILayer | None:
    """The producer of ``tensor`` when ``tensor`` has one reader."""
    if tensor is None or tensor._producer is None or only_consumer(network, tensor) is None:
        return None
    return tensor._producer


def _match(network: INetworkDefinition, second: IMatrixMultiplyLayer
           ) -> IFusedAttentionLayer | None:
    if second.op0 != MatrixOperation.NONE or second.op1 != MatrixOperation.NONE:
        return None
    softmax = _single(network, second._inputs[0])
    if type(softmax) is not ISoftMaxLayer:
        return None
    rank = len(network._info(softmax._outputs[0]).shape)
    if int(softmax.axes) != 1 << (rank - 1):
        return None
    chain: list[ILayer] = [softmax]
    tensor = softmax._inputs[0]
    mask = None
    layer = _single(network, tensor)
    if type(layer) is IElementWiseLayer and layer.op == ElementWiseOperation.SUM:
        for scores, candidate in (layer._inputs, layer._inputs[::-1]):
            if type(_single(network, scores)) in (IElementWiseLayer, IMatrixMultiplyLayer) \
                    and candidate is not scores:
                mask, tensor = candidate, scores
                chain.append(layer)
                break
        layer = _single(network, tensor)
    scale = 1.0
    if type(layer) is IElementWiseLayer and layer.op in (ElementWiseOperation.PROD,
                                                          ElementWiseOperation.DIV):
        a, b = layer._inputs
        value = scalar_constant(b)
        if value is None and layer.op == ElementWiseOperation.PROD:
            value, a = scalar_constant(a), b
        if value is None or value == 0:
            return None
        scale = value if layer.op == ElementWiseOperation.PROD else 1.0 / value
        chain.append(layer)
        tensor = a
        layer = _single(network, tensor)
    if type(layer) is not IMatrixMultiplyLayer or layer.op0 != MatrixOperation.NONE or \
            layer.op1 == MatrixOperation.VECTOR:
        return None
    chain.append(layer)
    q, k = layer._inputs
    fused = IFusedAttentionLayer(network, q, k, second._inputs[1], mask, scale,  # type: ignore[arg-type]
                                 layer.op1 == MatrixOperation.TRANSPOSE)
    fused.name = " + ".join(x.name for x in reversed(chain)) + f" + {second.name}"
    fused._matched = chain  # type: ignore[attr-defined]
    return fused


def recognize_attention(network: INetworkDefinition, context: PassContext | None = None
                        ) -> bool:
    context = context or PassContext()
    if not context.has_tactics(LayerType.FUSED_ATTENTION):
        return False
    changed = False
    for layer in topological_order(network._layers):
        if type(layer) is not IMatrixMultiplyLayer or layer not in network._layers:
            continue
        fused = _match(network, layer)
        if fused is None or not context.accepts(fused):
            continue
        chain = fused.__dict__.pop("_matched")
        out = layer._outputs[0]
        replace_tensor(network, out, insert_layer(network, fused, like=out))
        for matched in chain + [layer]:
            remove_layer(network, matched)
        changed = True
    return changed
