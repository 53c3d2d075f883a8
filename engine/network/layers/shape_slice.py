"""``ISliceLayer``: strided windows of a tensor, with TensorRT's out-of-bounds ``SampleMode``s.

Output coordinate ``y`` along a sliced axis reads input coordinate ``x = start + y * stride``
(strides may be negative); ``mode`` says what happens when ``x`` falls outside ``[0, d)``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from engine.network.layer import ILayer, LayerType, TensorInfo, attribute_enum
from engine.network.layers.shape_reshape import normalized_axes
from engine.network.layers.shape_values import dims_or_unknown
from engine.types import Dims

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


@attribute_enum
class SampleMode(enum.IntEnum):
    """How ``ISliceLayer`` (and grid sampling) treat out-of-bounds coordinates."""

    STRICT_BOUNDS = 0  # out-of-bounds coordinates are an error
    WRAP = 1  # coordinates wrap around periodically
    CLAMP = 2  # coordinates are clamped to the nearest edge
    FILL = 3  # out-of-bounds elements take the fill value (input 4, default 0)
    REFLECT = 4  # coordinates reflect about the edge elements, repeatedly


def source_indices(mode: SampleMode, coords: np.ndarray, size: int
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Input indices for ``coords`` along an axis of ``size`` elements under ``mode``, and for
    FILL the mask of in-bounds coordinates. Raises ``ValueError`` when the mode cannot map them.
    """
    inside = (coords >= 0) & (coords < size)
    if mode == SampleMode.STRICT_BOUNDS:
        if not inside.all():
            bad = coords[~inside]
            raise ValueError(f"STRICT_BOUNDS slice reads coordinate {int(bad[0])} of an axis of "
                             f"size {size}")
        return coords, None
    if mode == SampleMode.FILL:
        return np.clip(coords, 0, max(size - 1, 0)), inside
    if size == 0:
        raise ValueError(f"{mode.name} slice of an empty axis")
    if mode == SampleMode.WRAP:
        return np.mod(coords, size), None
    if mode == SampleMode.CLAMP:
        return np.clip(coords, 0, size - 1), None
    if size == 1:
        return np.zeros_like(coords), None
    period = 2 * size - 2
    folded = np.mod(np.abs(coords), period)
    return np.where(folded >= size, period - folded, folded), None


def slice_indices(mode: SampleMode, shape: tuple[int, ...], axes: Sequence[int],
                  start: Sequence[int], size: Sequence[int], stride: Sequence[int]
                  ) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-axis input indices of a slice (for ``np.ix_``-style gathering) and the mask of
    in-bounds elements (all True unless ``mode`` is FILL). Backend-neutral: the CPU and GPU
    kernels both gather with these."""
    index: list[np.ndarray] = [np.arange(d) for d in shape]
    inside = np.ones((), bool)
    for axis, s0, n, st in zip(axes, start, size, stride):
        coords = s0 + np.arange(n, dtype=np.int64) * st
        index[axis], mask = source_indices(mode, coords, shape[axis])
        if mask is not None:
            mask_shape = [1] * len(shape)
            mask_shape[axis] = n
            inside = inside & mask.reshape(mask_shape)
    return index, inside


class ISliceLayer(ILayer):
    """Slices ``input``: ``start``, ``shape`` (the output size) and ``stride`` per sliced axis.

    Inputs 1, 2, 3 and 5 may replace ``start``, ``shape``, ``stride`` and ``axes`` with shape
    tensors; input 4 is the fill value for ``SampleMode.FILL``. Without ``axes`` every axis is
    sliced.
    """

    type = LayerType.SLICE
    _validated_on_add = False  # attributes are set after add_*
    _attributes: ClassVar[tuple[str, ...]] = ("start", "shape", "stride", "mode", "axes")
    _shape_inputs = (1, 2, 3, 5)
    _max_inputs = 6

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 start: Sequence[int], shape: Sequence[int], stride: Sequence[int]) -> None:
        super().__init__(network, [input])
        self.start = Dims(start)
        self.shape = Dims(shape)
        self.stride = Dims(stride)
        self.mode = SampleMode.STRICT_BOUNDS
        self.axes: Dims | None = None

    def __setattr__(self, key: str, value: Any) -> None:
        if key in ("start", "shape", "stride") or (key == "axes" and value is not None):
            value = Dims(value)
        elif key == "mode":
            value = SampleMode(value)
        super().__setattr__(key, value)

    def parameters(self, inputs: list[TensorInfo | None], rank: int
                   ) -> tuple[tuple[int | None, ...], tuple[int | None, ...],
                              tuple[int | None, ...], tuple[int, ...] | None]:
        """start, size, stride (None where a shape tensor's value is unknown) and the sliced
        axes (None: unknown)."""

        def given(index: int, attribute: Sequence[int], what: str) -> tuple[int | None, ...]:
            info = inputs[index] if len(inputs) > index else None
            dims = dims_or_unknown(self, info, f"{what} (input {index})")
            if dims is None:
                return tuple(attribute)
            return dims if info is not None and info.value is not None else (None,) * len(dims)

        start = given(1, self.start, "start")
        size = given(2, self.shape, "size")
        stride = given(3, self.stride, "stride")
        axes_info = inputs[5] if len(inputs) > 5 else None
        if axes_info is not None:
            axes_dims = given(5, (), "axes")
        else:
            axes_dims = tuple(range(rank)) if self.axes is None else tuple(self.axes)
        count = len(axes_dims)
        for name, values in (("start", start), ("size", size), ("stride", stride)):
            if len(values) != count:
                self.fail(f"{name} has {len(values)} values, but {count} axes are sliced "
                          f"(input rank {rank})")
        size_info = inputs[2] if len(inputs) > 2 else None
        if (size_info is None or size_info.value is not None) and any(n < 0 for n in size):  # type: ignore[operator]
            self.fail(f"size {size} must not be negative")
        if axes_info is not None and axes_info.value is None:
            return start, size, stride, None
        known_axes = [a for a in axes_dims if a is not None]
        assert len(known_axes) == count  # input 5, when given, has a known value here
        normalized_axes(self, known_axes, rank, "axes")  # validates range and repeats
        return start, size, stride, tuple(a % rank for a in known_axes)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        start, size, stride, axes = self.parameters(inputs, x.rank)
        if axes is None:
            return [TensorInfo((-1,) * x.rank, x.dtype)]
        shape = list(x.shape)
        for axis, s0, n, st in zip(axes, start, size, stride):
            shape[axis] = -1 if n is None else n
            d = x.shape[axis]
            if self.mode == SampleMode.STRICT_BOUNDS and d >= 0 and n is not None and n > 0 \
                    and st is not None and s0 is not None:
                last = s0 + (n - 1) * st
                if not (0 <= s0 < d and 0 <= last < d):
                    self.fail(f"STRICT_BOUNDS slice of axis {axis} (size {d}) reads "
                              f"coordinates {s0}..{last}; set mode to FILL, CLAMP, WRAP or "
                              f"REFLECT to allow that")
        fill = inputs[4] if len(inputs) > 4 else None
        if fill is not None:
            if self.mode != SampleMode.FILL:
                self.fail(f"a fill value (input 4) needs mode FILL, mode is {self.mode.name}")
            if fill.rank > 1 or (fill.rank == 1 and fill.shape[0] not in (1, -1)):
                self.fail(f"the fill value (input 4) must hold one element, got shape "
                          f"{fill.shape}")
        return [TensorInfo(tuple(shape), x.dtype)]
