"""``IOptimizationProfile``: the range of shapes each dynamic input may take.

>>> import engine as trt
>>> profile = trt.Builder(trt.Logger()).create_optimization_profile()
>>> profile.set_shape("x", (1, 3), (8, 3), (32, 3))
>>> profile.get_shape("x")
[(1, 3), (8, 3), (32, 3)]
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.types import Dims


class IOptimizationProfile:
    """Minimum, optimum and maximum shapes per input (and values per shape input)."""

    def __init__(self) -> None:
        self._shapes: dict[str, tuple[Dims, Dims, Dims]] = {}
        self._shape_values: dict[str, tuple[tuple[int, ...], ...]] = {}
        self.extra_memory_target = 1.0

    def set_shape(self, input: str, min: Sequence[int], opt: Sequence[int],  # noqa: A002
                  max: Sequence[int]) -> None:
        lo, mid, hi = Dims(min), Dims(opt), Dims(max)
        if not len(lo) == len(mid) == len(hi):
            raise ValueError(f"profile for '{input}': min/opt/max have different ranks "
                             f"({tuple(lo)}, {tuple(mid)}, {tuple(hi)})")
        if any(not 0 <= a <= b <= c for a, b, c in zip(lo, mid, hi)):
            raise ValueError(f"profile for '{input}': need 0 <= min <= opt <= max in every "
                             f"dimension, got {tuple(lo)}, {tuple(mid)}, {tuple(hi)}")
        self._shapes[input] = (lo, mid, hi)

    def get_shape(self, input: str) -> list[Dims]:  # noqa: A002
        return list(self._shapes.get(input, ()))

    def set_shape_input(self, input: str, min: Sequence[int], opt: Sequence[int],  # noqa: A002
                        max: Sequence[int]) -> None:
        self._shape_values[input] = (tuple(min), tuple(opt), tuple(max))

    def get_shape_input(self, input: str) -> list[tuple[int, ...]]:  # noqa: A002
        return list(self._shape_values.get(input, ()))

    def is_valid(self) -> bool:
        return bool(self._shapes or self._shape_values)

    def __bool__(self) -> bool:
        return self.is_valid()

    def inputs(self) -> list[str]:
        return list(self._shapes)
