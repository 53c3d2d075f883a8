"""Residual-add fusion into matrix multiplies: ``activation(a @ b + bias + residual)`` (bias
and activation optional), the sublayer output plus its shortcut in a transformer block,
becomes one ``IFusedMatrixMultiplyLayer`` reading the residual as input 3, named
``"matmul1 + add1 + add2"``. Runs after matrix multiply + bias fusion, so the product may
already be a fused layer with its bias.

Preconditions: the product has no activation of its own and its only reader is the SUM; the
residual has the product's shape and type (no broadcasting); the target backend has a tactic
for the fused layer. When both inputs of the SUM are products, the one computed later is
fused (the other is then ready before it runs).
"""

from __future__ import annotations

from typing import TypeGuard

from engine.builder.passes.context import PassContext
from engine.builder.passes.rewrite import (
    only_consumer,
    other_input,
    replace_chain,
)
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layer import ILayer, LayerType
from engine.network.layers.fused import IFusedMatrixMultiplyLayer
from engine.network.layers.math_contraction import IMatrixMultiplyLayer
from engine.network.layers.math_elementwise import ElementWiseOperation, IElementWiseLayer
from engine.network.layers.math_pointwise import ActivationType, IActivationLayer


def _product(layer: ILayer) -> TypeGuard[IMatrixMultiplyLayer]:
    if type(layer) is IMatrixMultiplyLayer:
        return True
    return type(layer) is IFusedMatrixMultiplyLayer and layer.activation is None and \
        len(layer._inputs) <= 3


def fuse_matmul_residual_add(network: INetworkDefinition, context: PassContext | None = None
                             ) -> bool:
    context = context or PassContext()
    if not context.has_tactics(LayerType.FUSED_MATRIX_MULTIPLY):
        return False
    changed = False
    for product in reversed(topological_order(network._layers)):
        if not _product(product):
            continue
        out = product._outputs[0]
        add = only_consumer(network, out)
        if not isinstance(add, IElementWiseLayer) or add.op != ElementWiseOperation.SUM:
            continue
        residual = other_input(add, out)
        if residual is None or residual is out or \
                network._info(residual).shape != network._info(out).shape or \
                network._info(residual).dtype != network._info(out).dtype:
            continue
        act = only_consumer(network, add._outputs[0])
        act = act if isinstance(act, IActivationLayer) else None
        inputs = product._inputs
        a, b = inputs[0], inputs[1]
        assert a is not None and b is not None  # a product reads both of its inputs
        fused = IFusedMatrixMultiplyLayer(network, a, product.op0, b, product.op1,
                                          inputs[2] if len(inputs) > 2 else None)
        fused._inputs = [inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None,
                         residual]
        fused._precision = product._precision
        if act is not None:
            fused.activation = ActivationType(act.type)
            fused.alpha, fused.beta = float(act.alpha), float(act.beta)
        if not context.accepts(fused):
            continue
        replace_chain(network, fused, [layer for layer in (product, add, act) if layer is not None])
        changed = True
    return changed
