"""``IGatherLayer`` and ``IScatterLayer``: reading and writing a tensor at given indices.

Indices may be negative (counted from the end of the axis), as in ONNX and TensorRT.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from engine.network.layer import ILayer, LayerType, TensorInfo, attribute_enum
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor

INDEX_TYPES = (DataType.INT32, DataType.INT64)


@attribute_enum
class GatherMode(enum.IntEnum):
    """What the indices of an ``IGatherLayer`` address."""

    DEFAULT = 0  # whole slices along ``axis`` (ONNX Gather)
    ELEMENT = 1  # single elements along ``axis`` (ONNX GatherElements)
    ND = 2  # slices addressed by leading coordinates (ONNX GatherND)


@attribute_enum
class ScatterMode(enum.IntEnum):
    """What the indices of an ``IScatterLayer`` address."""

    ELEMENT = 0  # single elements along ``axis`` (ONNX ScatterElements)
    ND = 1  # slices addressed by leading coordinates (ONNX ScatterND)


@attribute_enum
class ScatterReduction(enum.IntEnum):
    """How an ``IScatterLayer`` combines an update with the value already there (ONNX's
    ``reduction``): NONE overwrites; the others fold every update addressing one element
    into it in turn."""

    NONE = 0
    SUM = 1
    PROD = 2
    MAX = 3
    MIN = 4


def _same(a: int, b: int) -> bool:
    return a < 0 or b < 0 or a == b


def check_index_range(layer: ILayer, indices: np.ndarray | None, size: int, what: str) -> None:
    """Fail naming ``layer`` when known ``indices`` fall outside ``[-size, size)``."""
    if indices is None or size < 0 or indices.size == 0:
        return
    low, high = int(indices.min()), int(indices.max())
    if low < -size or high >= size:
        bad = low if low < -size else high
        layer.fail(f"{what}: index {bad} is out of range for an axis of size {size}")


def _check_indices(layer: ILayer, indices: TensorInfo) -> None:
    if indices.dtype not in INDEX_TYPES:
        layer.fail(f"indices must be INT32 or INT64, got {indices.dtype.name}")


class IGatherLayer(ILayer):
    """Gathers from ``input`` (input 0) at ``indices`` (input 1); see ``GatherMode``.

    ``num_elementwise_dims``: leading dims shared by data and indices (DEFAULT: 0 or 1; ND: the
    batch dims; ELEMENT: 0).
    """

    type = LayerType.GATHER
    _validated_on_add = False  # attributes are set after add_*
    _attributes: ClassVar[tuple[str, ...]] = ("axis", "num_elementwise_dims", "mode")
    _max_inputs = 2

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 indices: ITensor, axis: int, mode: GatherMode) -> None:
        super().__init__(network, [input, indices])
        self.axis = axis
        self.num_elementwise_dims = 0
        self.mode = mode

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "mode":
            value = GatherMode(value)
        elif key in ("axis", "num_elementwise_dims"):
            value = int(value)
        super().__setattr__(key, value)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        data, indices = self.require_inputs(inputs, 2)
        _check_indices(self, indices)
        n, axis, r = self.num_elementwise_dims, self.axis, data.rank
        if self.mode == GatherMode.ND:
            return [TensorInfo(self._nd_shape(data, indices), data.dtype)]
        if not 0 <= axis < r:
            self.fail(f"axis {axis} is out of range for input of rank {r}")
        check_index_range(self, indices.value, data.shape[axis], f"gather along axis {axis}")
        if self.mode == GatherMode.ELEMENT:
            if n != 0:
                self.fail(f"num_elementwise_dims must be 0 in ELEMENT mode, got {n}")
            if indices.rank != r:
                self.fail(f"ELEMENT mode needs indices of the data's rank {r}, got shape "
                          f"{indices.shape}")
            for d in range(r):
                a, b = indices.shape[d], data.shape[d]
                if d != axis and a >= 0 and b >= 0 and a > b:
                    self.fail(f"indices shape {indices.shape} exceeds data shape {data.shape} "
                              f"on dim {d}")
            return [TensorInfo(indices.shape, data.dtype)]
        if n not in (0, 1):
            self.fail(f"num_elementwise_dims must be 0 or 1 in DEFAULT mode, got {n}")
        if n == 1:
            if axis < 1 or indices.rank < 1:
                self.fail("with num_elementwise_dims 1 the axis must be at least 1 and the "
                          "indices at least 1-D")
            if not _same(data.shape[0], indices.shape[0]):
                self.fail(f"data shape {data.shape} and indices shape {indices.shape} differ on "
                          f"their shared leading dim")
        shape = data.shape[:axis] + indices.shape[n:] + data.shape[axis + 1:]
        return [TensorInfo(shape, data.dtype)]

    def _nd_shape(self, data: TensorInfo, indices: TensorInfo) -> tuple[int, ...]:
        b, r, q = self.num_elementwise_dims, data.rank, indices.rank
        if q < 1 or indices.shape[-1] < 0:
            self.fail(f"ND mode needs indices whose last dim is known, got shape "
                      f"{indices.shape}")
        k = indices.shape[-1]
        if b < 0 or b >= min(r, q) or b + k > r:
            self.fail(f"ND mode: {b} batch dims and index depth {k} do not fit data of rank {r} "
                      f"and indices of rank {q}")
        for d in range(b):
            if not _same(data.shape[d], indices.shape[d]):
                self.fail(f"data shape {data.shape} and indices shape {indices.shape} differ on "
                          f"batch dim {d}")
        if indices.value is not None and all(s >= 0 for s in data.shape[b:b + k]):
            for j, size in enumerate(data.shape[b:b + k]):
                check_index_range(self, indices.value[..., j], size, f"gather on dim {b + j}")
        return indices.shape[:-1] + data.shape[b + k:]


class IScatterLayer(ILayer):
    """A copy of ``data`` with ``updates`` written at ``indices``; see ``ScatterMode``, and
    ``ScatterReduction`` for ``reduction`` (default NONE)."""

    type = LayerType.SCATTER
    _validated_on_add = False  # attributes are set after add_*
    _attributes: ClassVar[tuple[str, ...]] = ("mode", "axis", "reduction")
    _max_inputs = 3

    def __init__(self, network: INetworkDefinition, data: ITensor, indices: ITensor,
                 updates: ITensor, mode: ScatterMode) -> None:
        super().__init__(network, [data, indices, updates])
        self.mode = mode
        self.axis = 0
        self.reduction = ScatterReduction.NONE

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "mode":
            value = ScatterMode(value)
        elif key == "reduction":
            value = ScatterReduction(value)
        elif key == "axis":
            value = int(value)
        super().__setattr__(key, value)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        data, indices, updates = self.require_inputs(inputs, 3)
        _check_indices(self, indices)
        if updates.dtype != data.dtype:
            self.fail(f"updates have type {updates.dtype.name}, data has {data.dtype.name}")
        if self.reduction != ScatterReduction.NONE and data.dtype == DataType.BOOL:
            self.fail(f"reduction {self.reduction.name} of BOOL data")
        r = data.rank
        if self.mode == ScatterMode.ELEMENT:
            if not 0 <= self.axis < r:
                self.fail(f"axis {self.axis} is out of range for data of rank {r}")
            if indices.rank != r or updates.rank != r:
                self.fail(f"ELEMENT mode needs data, indices and updates of one rank, got "
                          f"{data.shape}, {indices.shape}, {updates.shape}")
            if not all(_same(a, b) for a, b in zip(indices.shape, updates.shape)):
                self.fail(f"indices shape {indices.shape} and updates shape {updates.shape} "
                          f"differ")
            check_index_range(self, indices.value, data.shape[self.axis],
                              f"scatter along axis {self.axis}")
        else:
            if indices.rank < 1 or indices.shape[-1] < 0 or indices.shape[-1] > r:
                self.fail(f"ND mode needs indices whose last dim (known) is at most the data "
                          f"rank {r}, got shape {indices.shape}")
            k = indices.shape[-1]
            expected = indices.shape[:-1] + data.shape[k:]
            if len(expected) != updates.rank or not all(
                    _same(a, b) for a, b in zip(expected, updates.shape)):
                self.fail(f"ND mode needs updates of shape {expected}, got {updates.shape}")
        return [TensorInfo(data.shape, data.dtype)]
