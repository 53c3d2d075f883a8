"""Dead-layer elimination: layers whose outputs reach no network output are removed (layers
with no outputs at all, assertions, are kept with what they read).

Preconditions: the network is acyclic. Tensors that are not network outputs are transient
(TensorRT's rule), so nothing outside the network can observe a removed layer.
"""

from __future__ import annotations

from engine.network.definition import INetworkDefinition


def eliminate_dead_layers(network: INetworkDefinition) -> bool:
    live: set[int] = set()
    stack = [t._producer for t in network._outputs if t._producer is not None]
    # Layers without outputs (assertions) act by failing a run: they are live roots too.
    stack += [layer for layer in network._layers if not layer._outputs]
    while stack:
        layer = stack.pop()
        if id(layer) in live:
            continue
        live.add(id(layer))
        stack.extend(t._producer for t in layer._inputs
                     if t is not None and t._producer is not None)
    dead = [layer for layer in network._layers if id(layer) not in live]
    for layer in dead:
        network._unlink(layer)
        network._layers.remove(layer)
    return bool(dead)
