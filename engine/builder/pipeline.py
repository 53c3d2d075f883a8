"""The order in which the builder runs its graph passes; the only place it is written."""

from __future__ import annotations

from collections.abc import Callable

from engine.builder.passes.constant_folding import fold_constants
from engine.builder.passes.dead_layers import eliminate_dead_layers
from engine.errors import BuildError
from engine.network.definition import INetworkDefinition

Pass = Callable[[INetworkDefinition], bool]

PASSES: list[Pass] = [
    eliminate_dead_layers,
    fold_constants,
    eliminate_dead_layers,
]


def run_passes(network: INetworkDefinition, passes: list[Pass] | None = None) -> list[str]:
    """Run the passes in order; returns the names of those that changed the network.

    A pass that fails is re-raised as ``BuildError`` naming it and the passes before it.
    """
    changed: list[str] = []
    ran: list[str] = []
    for fn in PASSES if passes is None else passes:
        try:
            if fn(network):
                changed.append(fn.__name__)
        except Exception as exc:
            raise BuildError(f"pass {fn.__name__} failed after {ran or 'no passes'}: "
                             f"{exc}") from exc
        ran.append(fn.__name__)
    return changed
