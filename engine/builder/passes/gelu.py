"""GELU recognition: the erf and tanh forms PyTorch's ONNX exporter writes become one
activation layer (GELU_ERF, GELU_TANH)::

    erf:  x * (erf(x / sqrt(2)) + 1) * 0.5        (x / sqrt(2) also as x * (1 / sqrt(2)))
    tanh: x * (tanh(sqrt(2 / pi) * (x + 0.044715 * x ^ 3)) + 1) * 0.5

the products in any association (``(x * a) * 0.5``, ``(a * 0.5) * x``, ``a * (x * 0.5)``).

Preconditions: the constants are folded (``fold_constants``). The replaced layers are left to
``eliminate_dead_layers`` (any of them still read elsewhere stays).
"""

from __future__ import annotations

import math

from engine.builder.passes.context import PassContext
from engine.builder.passes.rewrite import (
    insert_layer,
    only_consumer,
    other_input,
    produced_by,
    replace_tensor,
    scalar_constant,
)
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layer import ILayer
from engine.network.layers.math_elementwise import ElementWiseOperation, IElementWiseLayer
from engine.network.layers.math_pointwise import ActivationType, IActivationLayer, IUnaryLayer
from engine.network.layers.math_pointwise import UnaryOperation as Unary
from engine.network.tensor import ITensor

SUM, PROD, DIV, POW = (ElementWiseOperation.SUM, ElementWiseOperation.PROD,
                       ElementWiseOperation.DIV, ElementWiseOperation.POW)


def _close(value: float | None, want: float) -> bool:
    return value is not None and math.isclose(value, want, rel_tol=1e-4)


def _binary_with_constant(tensor: ITensor | None, op: ElementWiseOperation, value: float
                          ) -> ITensor | None:
    """If ``tensor`` is ``y op value`` (either side for SUM and PROD), ``y``."""
    layer = produced_by(tensor, IElementWiseLayer, op=op)
    if layer is None:
        return None
    a, b = layer._inputs
    if _close(scalar_constant(b), value):
        return a
    if op in (SUM, PROD) and _close(scalar_constant(a), value):
        return b
    return None


def _gelu_tail(network: INetworkDefinition, inner: ITensor, x: ITensor
               ) -> tuple[ITensor, list[ILayer]] | None:
    """From ``erf(...)`` or ``tanh(...)``: ``+ 1`` then the product with x and 0.5; returns
    the final tensor and the layers matched."""
    add = only_consumer(network, inner)
    if not (isinstance(add, IElementWiseLayer) and add.op == SUM
            and _close(scalar_constant(other_input(add, inner)), 1.0)):
        return None
    need = {"x", "half"}
    tensor = add._outputs[0]
    layers: list[ILayer] = [add]
    while need:
        product = only_consumer(network, tensor)
        if not isinstance(product, IElementWiseLayer) or product.op != PROD:
            return None
        other = other_input(product, tensor)
        if other is x and "x" in need:
            need -= {"x"}
        elif _close(scalar_constant(other), 0.5) and "half" in need:
            need -= {"half"}
        elif _binary_with_constant(other, PROD, 0.5) is x and len(need) == 2:
            need.clear()
        else:
            return None
        layers.append(product)
        tensor = product._outputs[0]
    return tensor, layers


def _match_erf(network: INetworkDefinition, erf: ILayer) -> tuple[ITensor, ITensor] | None:
    scaled = erf._inputs[0]
    x = _binary_with_constant(scaled, DIV, math.sqrt(2.0))
    if x is None:
        x = _binary_with_constant(scaled, PROD, 1.0 / math.sqrt(2.0))
    if x is None:
        return None
    tail = _gelu_tail(network, erf._outputs[0], x)
    return None if tail is None else (x, tail[0])


def _match_tanh(network: INetworkDefinition, tanh: ILayer) -> tuple[ITensor, ITensor] | None:
    inner = _binary_with_constant(tanh._inputs[0], PROD, math.sqrt(2.0 / math.pi))
    add = produced_by(inner, IElementWiseLayer, op=SUM)
    if add is None:
        return None
    for x, cubic in (add._inputs, add._inputs[::-1]):
        cube = _binary_with_constant(cubic, PROD, 0.044715)
        power = produced_by(cube, IElementWiseLayer, op=POW)
        if power is not None and power._inputs[0] is x and _close(
                scalar_constant(power._inputs[1]), 3.0):
            tail = _gelu_tail(network, tanh._outputs[0], x)  # type: ignore[arg-type]
            return None if tail is None else (x, tail[0])  # type: ignore[return-value]
    return None


def recognize_gelu(network: INetworkDefinition, context: PassContext | None = None) -> bool:
    changed = False
    for layer in topological_order(network._layers):
        if type(layer) is IUnaryLayer and layer.op == Unary.ERF:
            found, kind = _match_erf(network, layer), ActivationType.GELU_ERF
        elif type(layer) is IActivationLayer and layer.type == ActivationType.TANH:
            found, kind = _match_tanh(network, layer), ActivationType.GELU_TANH
        else:
            continue
        if found is None:
            continue
        x, out = found
        gelu = IActivationLayer(network, x, kind)
        gelu.name = f"{out._producer.name} [{kind.name.lower()}]"  # type: ignore[union-attr]
        replace_tensor(network, out, insert_layer(network, gelu, like=out))
        changed = True
    return changed
