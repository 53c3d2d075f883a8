"""Graph surgery shared by the passes: replace a tensor's uses, remove a layer, add a
constant. Passes call these rather than touching the network's lists themselves."""

from __future__ import annotations

import numpy as np

from engine.network.definition import INetworkDefinition
from engine.network.layer import ILayer
from engine.network.layers.basic import IConstantLayer
from engine.network.tensor import ITensor
from engine.types import Weights


def replace_tensor(network: INetworkDefinition, old: ITensor, new: ITensor) -> None:
    """Make every reader of ``old`` read ``new``; a network output keeps its name."""
    for layer, index in network._consumers_of(old):
        layer._inputs[index] = new
        network._relink(layer)
    if old in network._outputs:
        network._outputs[network._outputs.index(old)] = new
        name = old.name
        old.name = name + " (replaced)"
        new.name = name
    network._cache.clear()


def remove_layer(network: INetworkDefinition, layer: ILayer) -> None:
    network._unlink(layer)
    network._layers.remove(layer)
    network._cache.clear()


def add_constant(network: INetworkDefinition, value: np.ndarray, name: str) -> ITensor:
    """A new constant layer holding ``value``; returns its output."""
    layer = IConstantLayer(network, value.shape, Weights(np.ascontiguousarray(value)))
    layer.name = name
    network._layers.append(layer)
    output = layer._outputs[0]
    output.name = name + "_output"
    return output


def producer_constant(tensor: ITensor | None) -> IConstantLayer | None:
    """The constant layer that produces ``tensor``, if that is what produces it."""
    if tensor is None:
        return None
    producer = tensor._producer
    return producer if isinstance(producer, IConstantLayer) else None
