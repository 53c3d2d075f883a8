"""The tactic registry: every kernel registers here, at its definition, by layer type.

>>> from engine.kernels.registry import kernel
>>> from engine.network.layer import LayerType
>>> @kernel(LayerType.IDENTITY, backend="cpu", name="cpu.copy")  # doctest: +SKIP
... def identity(layer, inputs):
...     return [inputs[0].copy()]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import BuildError
from engine.network.layer import ILayer, LayerType, TensorInfo

KernelFn = Callable[[ILayer, list[Any]], list[Any]]
SupportsFn = Callable[[ILayer, list[TensorInfo | None]], bool]


@dataclass(frozen=True)
class Tactic:
    """One implementation of one layer type on one backend; plans store it by ``name``."""

    backend: str
    layer_type: LayerType
    name: str
    run: KernelFn
    supports: SupportsFn | None = None
    source: str | None = None  # the TacticSource it belongs to (GPU libraries), if any

    def accepts(self, layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
        return self.supports is None or bool(self.supports(layer, inputs))


_TACTICS: dict[tuple[str, LayerType], list[Tactic]] = {}


def kernel(
    layer_type: LayerType,
    *,
    backend: str,
    name: str,
    supports: SupportsFn | None = None,
    source: str | None = None,
) -> Callable[[KernelFn], KernelFn]:
    """Register the decorated function as tactic ``name`` for ``layer_type`` on ``backend``.

    The function takes ``(layer, inputs)`` — the layer object and its input arrays (None for
    absent optional inputs) — and returns the list of output arrays.
    """

    def register(fn: KernelFn) -> KernelFn:
        tactics = _TACTICS.setdefault((backend, layer_type), [])
        if any(t.name == name for t in tactics):
            raise AssertionError(f"tactic {name!r} registered twice for {layer_type.name}")
        tactics.append(Tactic(backend, layer_type, name, fn, supports, source))
        return fn

    return register


def add_tactic(tactic: Tactic) -> None:
    """Register a tactic made elsewhere than at a kernel's definition (a derived form)."""
    tactics = _TACTICS.setdefault((tactic.backend, tactic.layer_type), [])
    if any(t.name == tactic.name for t in tactics):
        raise AssertionError(f"tactic {tactic.name!r} registered twice for "
                             f"{tactic.layer_type.name}")
    tactics.append(tactic)


def tactics_for(backend: str, layer_type: LayerType) -> list[Tactic]:
    """Every tactic registered for ``layer_type`` on ``backend``, in registration order."""
    return list(_TACTICS.get((backend, layer_type), []))


def get_tactic(backend: str, layer_type: LayerType, name: str) -> Tactic:
    """The tactic called ``name``; ``BuildError`` listing those that exist when absent."""
    for tactic in _TACTICS.get((backend, layer_type), []):
        if tactic.name == name:
            return tactic
    known = [t.name for t in _TACTICS.get((backend, layer_type), [])]
    raise BuildError(f"no tactic {name!r} for {layer_type.name} on backend {backend!r}; "
                     f"available: {known or 'none'}")


def layer_types_supported(backend: str) -> set[LayerType]:
    return {lt for (b, lt), tactics in _TACTICS.items() if b == backend and tactics}


def unregister(backend: str, layer_type: LayerType, name: str) -> None:
    """Remove tactic ``name`` (for plugins being deregistered, and for tests)."""
    tactics = _TACTICS.get((backend, layer_type), [])
    tactics[:] = [t for t in tactics if t.name != name]
