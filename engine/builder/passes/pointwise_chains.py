"""Pointwise fusion: a group of elementwise, unary, activation and cast layers whose
intermediate results each have one reader inside the group becomes one
``IFusedPointwiseLayer`` holding their operations as a program (its CPU kernel runs the list;
a GPU backend can compile it into one kernel).

Preconditions: every fused intermediate tensor is read once, by a layer of the group, and is
not a network output; the target backend has a tactic for the fused layer.
"""

from __future__ import annotations

from engine.builder.passes.context import PassContext
from engine.builder.passes.rewrite import insert_layer, only_consumer, remove_layer, replace_tensor
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layer import ILayer, LayerType
from engine.network.layers.fused_pointwise import IFusedPointwiseLayer
from engine.network.layers.math_elementwise import ElementWiseOperation, IElementWiseLayer
from engine.network.layers.math_pointwise import (
    ActivationType,
    IActivationLayer,
    ICastLayer,
    IUnaryLayer,
    UnaryOperation,
)
from engine.network.tensor import ITensor
from engine.types import DataType

POINTWISE = (IElementWiseLayer, IUnaryLayer, IActivationLayer, ICastLayer)


def _is_pointwise(layer: ILayer | None) -> bool:
    return type(layer) in POINTWISE and not layer._output_types  # type: ignore[union-attr]


def _step(layer: ILayer, operands: list[int]) -> tuple:
    if isinstance(layer, IElementWiseLayer):
        return ("elementwise", ElementWiseOperation(layer.op).name, *operands)
    if isinstance(layer, IUnaryLayer):
        return ("unary", UnaryOperation(layer.op).name, *operands)
    if isinstance(layer, IActivationLayer):
        return ("activation", ActivationType(layer.type).name, *operands, float(layer.alpha),
                float(layer.beta))
    assert isinstance(layer, ICastLayer)
    return ("cast", DataType(layer.to_type).name, *operands)


def _group(network: INetworkDefinition, root: ILayer) -> list[ILayer]:
    """The layers fused with ``root`` (its last), in execution order."""
    members = {id(root): root}
    frontier = [root]
    while frontier:
        layer = frontier.pop()
        for tensor in layer._inputs:
            producer = None if tensor is None else tensor._producer
            if (_is_pointwise(producer) and id(producer) not in members
                    and only_consumer(network, tensor) is layer):  # type: ignore[arg-type]
                members[id(producer)] = producer  # type: ignore[index,assignment]
                frontier.append(producer)  # type: ignore[arg-type]
    return [layer for layer in topological_order(members.values()) if id(layer) in members]


def fuse_pointwise_chains(network: INetworkDefinition, context: PassContext | None = None
                          ) -> bool:
    context = context or PassContext()
    if not context.has_tactics(LayerType.FUSED_POINTWISE):
        return False
    changed = False
    fused_ids: set[int] = set()
    for root in reversed(topological_order(network._layers)):
        if id(root) in fused_ids or not _is_pointwise(root):
            continue
        group = _group(network, root)
        if len(group) < 2:
            continue
        inside = {id(layer) for layer in group}
        inputs: list[ITensor] = []
        slots: dict[ITensor, int] = {}
        for layer in group:
            for t in layer._inputs:
                if t is not None and (t._producer is None or id(t._producer) not in inside) \
                        and t not in slots:
                    slots[t] = len(inputs)
                    inputs.append(t)
        program = []
        for layer in group:
            operands = [slots[t] for t in layer._inputs]  # type: ignore[index]
            program.append(_step(layer, operands))
            slots[layer._outputs[0]] = len(inputs) + len(program) - 1
        fused = IFusedPointwiseLayer(network, inputs, program)
        if not context.accepts(fused):
            continue
        fused.name = " + ".join(layer.name for layer in group)
        last = root._outputs[0]
        output = insert_layer(network, fused, like=last)
        replace_tensor(network, last, output)
        for layer in group:
            remove_layer(network, layer)
        fused_ids |= inside
        changed = True
    return changed
