"""The names weights answer to when an engine is refitted (TensorRT's naming), and which of
them a weight-stripped plan leaves out.

>>> from engine.network.weight_names import weights_of_layers
>>> weights_of_layers([])
({}, {})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from engine.network.layer import ILayer, LayerType
from engine.types import Weights

Targets = list[tuple[ILayer, str]]


def weights_of_layers(layers: Iterable[ILayer]) -> tuple[dict[str, Targets], dict[str, str]]:
    """The weights of ``layers`` by their refit name, each name with the (layer, attribute)
    pairs holding those weights (one initializer may feed several layers), and the other
    names they answer to (aliases).

    The refit name is the name the weights were given (``set_weights_name``; the ONNX
    initializer's name for parsed models), else a constant's output tensor name, else
    ``"<layer name>.<attribute>"``. Those last two, and a constant's layer name, are always
    aliases."""
    found: dict[str, Targets] = {}
    aliases: dict[str, str] = {}
    for layer in layers:
        for attribute in type(layer)._attributes:
            value = getattr(layer, attribute, None)
            if not isinstance(value, Weights) or value.size == 0:
                continue
            if layer.layer_type == LayerType.CONSTANT:
                others = [layer._outputs[0].name, layer.name]
            else:
                others = [f"{layer.name}.{attribute}"]
            name = value.name if value.name is not None else others[0]
            found.setdefault(name, []).append((layer, attribute))
            for alias in others:
                aliases.setdefault(alias, name)
    return found, {alias: name for alias, name in aliases.items() if alias not in found}


def strip_predicate(layers: Iterable[ILayer], names: Iterable[str] | None
                    ) -> bool | Callable[[Weights], bool]:
    """What to leave out of a weight-stripped plan: every weight (``names`` None), or the
    weights of those refit names."""
    if names is None:
        return True
    found, _ = weights_of_layers(layers)
    chosen = {id(getattr(layer, attribute)) for name in names
              for layer, attribute in found.get(name, [])}
    return lambda weights: id(weights) in chosen
