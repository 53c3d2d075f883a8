"""Matrix multiply + bias + activation fusion (a GEMM epilogue): ``activation(a @ b + bias)``
becomes one ``IFusedMatrixMultiplyLayer`` named ``"matmul1 + add1 + relu1"``; either the
bias or the activation may be missing, not both.

Preconditions: the bias is a constant that broadcasts to the product without enlarging it;
each fused tensor has one reader; the target backend has a tactic for the fused layer.
"""

from __future__ import annotations

from engine.builder.passes.context import PassContext
from engine.builder.passes.rewrite import (
    only_consumer,
    other_input,
    producer_constant,
    replace_chain,
)
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layer import ILayer, LayerType
from engine.network.layers.fused import IFusedMatrixMultiplyLayer
from engine.network.layers.math_contraction import IMatrixMultiplyLayer
from engine.network.layers.math_elementwise import ElementWiseOperation, IElementWiseLayer
from engine.network.layers.math_pointwise import ActivationType, IActivationLayer
from engine.network.shapes import broadcast_shapes


def _bias_add(network: INetworkDefinition, matmul: ILayer) -> IElementWiseLayer | None:
    out = matmul._outputs[0]
    add = only_consumer(network, out)
    if not isinstance(add, IElementWiseLayer) or add.op != ElementWiseOperation.SUM:
        return None
    bias = other_input(add, out)
    if bias is out or producer_constant(bias) is None:
        return None
    product, bias_shape = network._info(out).shape, network._info(bias).shape  # type: ignore[arg-type]
    try:
        if broadcast_shapes(product, bias_shape) != product:
            return None
    except ValueError:
        return None
    return add


def fuse_matmul_bias_act(network: INetworkDefinition, context: PassContext | None = None
                         ) -> bool:
    context = context or PassContext()
    if not context.has_tactics(LayerType.FUSED_MATRIX_MULTIPLY):
        return False
    changed = False
    for matmul in topological_order(network._layers):
        if type(matmul) is not IMatrixMultiplyLayer:
            continue
        add = _bias_add(network, matmul)
        tail = add._outputs[0] if add is not None else matmul._outputs[0]
        act = only_consumer(network, tail)
        act = act if isinstance(act, IActivationLayer) else None
        if add is None and act is None:
            continue
        bias = None if add is None else other_input(add, matmul._outputs[0])
        a, b = matmul._inputs[0], matmul._inputs[1]
        fused = IFusedMatrixMultiplyLayer(network, a, matmul.op0, b, matmul.op1,  # type: ignore[arg-type]
                                          bias)
        if act is not None:
            fused.activation = ActivationType(act.type)
            fused.alpha, fused.beta = float(act.alpha), float(act.beta)
        if not context.accepts(fused):
            continue
        replace_chain(network, fused, [layer for layer in (matmul, add, act) if layer is not None])
        changed = True
    return changed
