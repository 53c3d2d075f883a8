"""Importers by op type: each registers itself where it is defined.

>>> from engine.onnx.registry import importer
>>> @importer("MyRelu", since=1, domain="com.example")
... def my_relu(ctx, node):
...     ...

An op may have several importers, one per opset where its behaviour changed; the parser picks
the one with the largest ``since`` not above the model's opset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.onnx.context import ImportContext, Node

Importer = Callable[["ImportContext", "Node"], Any]

# (domain, op_type) -> [(since, importer)], sorted by since.
_IMPORTERS: dict[tuple[str, str], list[tuple[int, Importer]]] = {}

DEFAULT_DOMAINS = ("", "ai.onnx")


def importer(op_type: str, since: int = 1, domain: str = "") -> Callable[[Importer], Importer]:
    """Register the decorated function as the importer of ``op_type`` from opset ``since``."""

    def register(fn: Importer) -> Importer:
        entries = _IMPORTERS.setdefault((_canonical(domain), op_type), [])
        if any(s == since for s, _ in entries):
            raise AssertionError(f"two importers for {op_type} since opset {since}")
        entries.append((since, fn))
        entries.sort(key=lambda e: e[0])
        return fn

    return register


def _canonical(domain: str) -> str:
    return "" if domain in DEFAULT_DOMAINS else domain


def find_importer(op_type: str, opset: int, domain: str = "") -> Importer | None:
    """The importer of ``op_type`` for ``opset``, or None."""
    chosen = None
    for since, fn in _IMPORTERS.get((_canonical(domain), op_type), []):
        if since <= opset:
            chosen = fn
    return chosen


def supported_ops(domain: str = "") -> list[str]:
    """The op types that have an importer in ``domain``."""
    d = _canonical(domain)
    return sorted(op for dom, op in _IMPORTERS if dom == d)


def opsets_of(op_type: str, domain: str = "") -> list[int]:
    """The opsets from which ``op_type``'s importers apply."""
    return [s for s, _ in _IMPORTERS.get((_canonical(domain), op_type), [])]
