"""Constant folding: a layer whose inputs are all constants, or whose outputs inference
already knows (shape arithmetic on static shapes), is computed once at build time and
replaced by constant layers.

Preconditions: the network is acyclic. Layers with no outputs (assertions) and fill layers
(random fills must stay random) are kept; so is any result larger than ``MAX_FOLDED_BYTES``
(folding a broadcast would trade a cheap kernel for a large weight).
"""

from __future__ import annotations

import numpy as np

from engine.builder.passes.rewrite import (
    add_constant,
    producer_constant,
    remove_layer,
    replace_tensor,
)
from engine.kernels.cpu import evaluate
from engine.network.definition import INetworkDefinition
from engine.network.inference import infer_all, topological_order
from engine.network.layer import LayerType, TensorInfo
from engine.network.layers.basic import IConstantLayer
from engine.types import nptype

MAX_FOLDED_BYTES = 64 << 20
_KEEP = {LayerType.ASSERTION, LayerType.FILL, LayerType.CONSTANT}


def fold_constants(network: INetworkDefinition) -> bool:
    order = topological_order(network._layers)
    known = infer_all(order, {t: TensorInfo(tuple(t.shape), t.dtype) for t in network._inputs})
    changed = False
    for layer in order:
        if layer.layer_type in _KEEP or layer.num_outputs == 0:
            continue
        values: list[np.ndarray] | None = None
        if all(known[t].value is not None for t in layer._outputs):
            values = [np.asarray(known[t].value) for t in layer._outputs]
        else:
            constants = [producer_constant(t) for t in layer._inputs if t is not None]
            if constants and all(isinstance(c, IConstantLayer) for c in constants):
                args = [None if t is None else producer_constant(t).array()  # type: ignore[union-attr]
                        for t in layer._inputs]
                values = [np.asarray(v) for v in evaluate(layer, args)]
        if values is None or sum(v.nbytes for v in values) > MAX_FOLDED_BYTES:
            continue
        for index, (tensor, value) in enumerate(zip(layer._outputs, values)):
            folded = add_constant(network, value.astype(nptype(known[tensor].dtype), copy=False),
                                  f"{layer.name} [folded {index}]")
            replace_tensor(network, tensor, folded)
        remove_layer(network, layer)
        changed = True
    return changed
