"""``LayerFamily``: the base of the ``add_*`` mixins (one per layer family) that make up
``INetworkDefinition``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar, cast

from engine.network.layer import ILayer

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition

_P = ParamSpec("_P")
_L = TypeVar("_L", bound=ILayer)


class LayerFamily:
    """What a family's ``add_*`` methods use of the network they are mixed into."""

    @property
    def _definition(self) -> INetworkDefinition:
        # The families are mixed into INetworkDefinition alone; mypy takes an explicit
        # ``self: INetworkDefinition`` only from the class itself or its subclasses.
        return cast("INetworkDefinition", self)

    def _add(self, layer_class: Callable[Concatenate[INetworkDefinition, _P], _L],
             *args: _P.args, **kwargs: _P.kwargs) -> _L:
        """Make a ``layer_class`` in this network (its first argument) and add it."""
        network = self._definition
        return network._add_layer(layer_class(network, *args, **kwargs))
