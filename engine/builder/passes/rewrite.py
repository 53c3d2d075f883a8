"""Graph surgery shared by the passes: replace a tensor's uses, remove a layer, add a
constant. Passes call these rather than touching the network's lists themselves.

Each forgets only the inferred infos that the change can alter (those downstream of it), not
the whole network's: a pass asks for infos after every rewrite, and re-inferring the network
each time made the passes quadratic in its size.
"""

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
        network._invalidate(layer)  # relinks it and forgets what follows it
    if old in network._outputs:
        network._outputs[network._outputs.index(old)] = new
        name = old.name
        old.name = name + " (replaced)"
        new.name = name
        new.location = old.location  # a HOST output stays a HOST output
        if old.dynamic_range is not None:
            new.set_dynamic_range(*old.dynamic_range)


def remove_layer(network: INetworkDefinition, layer: ILayer) -> None:
    network._invalidate(layer)
    network._unlink(layer)
    network._layers.remove(layer)


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


def insert_layer(network: INetworkDefinition, layer: ILayer, like: ITensor | None = None
                 ) -> ITensor:
    """Add ``layer`` (constructed by a pass) to ``network``; returns its first output, named
    after ``like`` (the tensor it replaces) when given."""
    network._layers.append(layer)
    network._link(layer)
    output = layer._outputs[0]
    if like is not None:
        output.name = like.name  # ``like`` is about to be replaced and removed
    return output


def replace_chain(network: INetworkDefinition, fused: ILayer, chain: list[ILayer]) -> None:
    """Put ``fused`` in place of ``chain`` (layers in execution order, each reading the one
    before): it is named after them (``"conv1 + add1 + relu1"``), its output takes over the
    last one's output tensor (name and readers), and the chain's layers are removed."""
    fused.name = " + ".join(layer.name for layer in chain)
    last = chain[-1]._outputs[0]
    replace_tensor(network, last, insert_layer(network, fused, like=last))
    for layer in chain:
        remove_layer(network, layer)


def only_consumer(network: INetworkDefinition, tensor: ITensor) -> ILayer | None:
    """The single layer reading ``tensor`` (once), if that is its only use: not a network
    output, not read twice, not read by several layers."""
    uses = network._consumers_of(tensor)
    if len(uses) != 1 or tensor in network._outputs:
        return None
    return uses[0][0]


def constant_value(tensor: ITensor | None) -> np.ndarray | None:
    """The value of ``tensor`` when a constant layer produces it."""
    constant = producer_constant(tensor)
    return None if constant is None else np.asarray(constant.array())


def other_input(layer: ILayer, tensor: ITensor) -> ITensor | None:
    """The input of a two-input layer that is not ``tensor``."""
    a, b = layer._inputs[0], layer._inputs[1]
    return b if a is tensor else a


def scalar_constant(tensor: ITensor | None) -> float | None:
    """The value of a constant whose elements all equal one float, else None."""
    value = constant_value(tensor)
    if value is None or value.size == 0 or value.dtype.kind != "f":
        return None
    first = float(value.reshape(-1)[0])
    return first if np.all(value == value.reshape(-1)[0]) else None


def produced_by(tensor: ITensor | None, cls: type, **attributes: object) -> ILayer | None:
    """The producer of ``tensor`` if it is a ``cls`` whose attributes equal ``attributes``."""
    layer = None if tensor is None else tensor._producer
    if type(layer) is not cls:
        return None
    for name, want in attributes.items():
        if getattr(layer, name) != want:
            return None
    return layer
