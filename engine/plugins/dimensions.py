"""Dimension expressions: how a plugin states its output shapes in terms of its inputs'.

Shapes here are evaluated, not kept symbolic: while a network is defined a dimension may be
unknown (-1) and every expression on it is unknown too; when a context runs, every input
dimension is known, so every expression has its value. That is all the engine needs, since
it re-infers shapes for every new set of input shapes.

>>> from engine.plugins.dimensions import IExprBuilder, DimensionOperation
>>> b = IExprBuilder()
>>> b.operation(DimensionOperation.PROD, b.constant(3), b.constant(4)).get_constant_value()
12
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any


class DimensionOperation(enum.IntEnum):
    SUM = 0
    PROD = 1
    MAX = 2
    MIN = 3
    SUB = 4
    EQUAL = 5
    LESS = 6
    FLOOR_DIV = 7
    CEIL_DIV = 8


_OPERATIONS: dict[DimensionOperation, Callable[[int, int], int]] = {
    DimensionOperation.SUM: lambda a, b: a + b,
    DimensionOperation.PROD: lambda a, b: a * b,
    DimensionOperation.MAX: max,
    DimensionOperation.MIN: min,
    DimensionOperation.SUB: lambda a, b: a - b,
    DimensionOperation.EQUAL: lambda a, b: int(a == b),
    DimensionOperation.LESS: lambda a, b: int(a < b),
    DimensionOperation.FLOOR_DIV: lambda a, b: a // b,
    DimensionOperation.CEIL_DIV: lambda a, b: -(-a // b),
}


class IDimensionExpr:
    """One dimension: a known value or unknown. Supports ``+ - * // max min`` with ints and
    other expressions (the quick-plugin API's arithmetic)."""

    def __init__(self, value: int | None, size_tensor: bool = False) -> None:
        self._value = None if value is None or value < 0 else int(value)
        self._size_tensor = size_tensor

    def is_constant(self) -> bool:
        return self._value is not None

    def get_constant_value(self) -> int:
        if self._value is None:
            raise ValueError("dimension expression has no constant value here (it depends on "
                             "a dynamic dimension)")
        return self._value

    def is_size_tensor(self) -> bool:
        return self._size_tensor

    @property
    def value(self) -> int:
        """The value, -1 when unknown (an extension)."""
        return -1 if self._value is None else self._value

    def _apply(self, op: DimensionOperation, other: Any, swap: bool = False) -> IDimensionExpr:
        rhs = other if isinstance(other, IDimensionExpr) else IDimensionExpr(int(other))
        a, b = (rhs, self) if swap else (self, rhs)
        if a._value is None or b._value is None:
            return IDimensionExpr(None)
        if op in (DimensionOperation.FLOOR_DIV, DimensionOperation.CEIL_DIV) and b._value == 0:
            raise ValueError("dimension expression divides by zero")
        return IDimensionExpr(_OPERATIONS[op](a._value, b._value))

    def __add__(self, other: Any) -> IDimensionExpr:
        return self._apply(DimensionOperation.SUM, other)

    __radd__ = __add__

    def __mul__(self, other: Any) -> IDimensionExpr:
        return self._apply(DimensionOperation.PROD, other)

    __rmul__ = __mul__

    def __sub__(self, other: Any) -> IDimensionExpr:
        return self._apply(DimensionOperation.SUB, other)

    def __rsub__(self, other: Any) -> IDimensionExpr:
        return self._apply(DimensionOperation.SUB, other, swap=True)

    def __floordiv__(self, other: Any) -> IDimensionExpr:
        return self._apply(DimensionOperation.FLOOR_DIV, other)

    def __rfloordiv__(self, other: Any) -> IDimensionExpr:
        return self._apply(DimensionOperation.FLOOR_DIV, other, swap=True)

    def __int__(self) -> int:
        return self.get_constant_value()

    def __repr__(self) -> str:
        return f"IDimensionExpr({self.value})"


class DimsExprs(list):  # type: ignore[type-arg]
    """A shape as a list of ``IDimensionExpr`` (ints are accepted and converted)."""

    def __init__(self, dims: Iterable[Any] = ()) -> None:
        super().__init__(d if isinstance(d, IDimensionExpr) else IDimensionExpr(int(d))
                         for d in dims)

    @property
    def nbDims(self) -> int:  # noqa: N802 - TensorRT's name
        return len(self)

    def values(self) -> tuple[int, ...]:
        """The dimensions, -1 where unknown (an extension)."""
        return tuple(d.value for d in self)


class IExprBuilder:
    """Makes dimension expressions for ``get_output_shapes``."""

    def constant(self, value: int) -> IDimensionExpr:
        return IDimensionExpr(int(value))

    def operation(self, op: DimensionOperation, first: IDimensionExpr,
                  second: IDimensionExpr) -> IDimensionExpr:
        return first._apply(DimensionOperation(op), second)

    def declare_size_tensor(self, output_index: int, opt_value: IDimensionExpr,
                            upper_bound: IDimensionExpr) -> IDimensionExpr:
        """A data-dependent dimension (its value is known only after the plugin runs)."""
        return IDimensionExpr(None, size_tensor=True)
