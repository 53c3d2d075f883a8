"""Layers between indices and dense tensors: ``IOneHotLayer`` and ``INonZeroLayer``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from engine.network.inference import MAX_VALUE_ELEMENTS
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.shape_gather import INDEX_TYPES
from engine.network.layers.shape_values import shape_tensor_values
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


class IOneHotLayer(ILayer):
    """One-hot encoding: ``values`` = [off, on] (input 1) written along a new axis ``axis``
    of size ``depth`` (input 2, a scalar shape tensor). Indices in ``[-depth, depth)`` are
    hot (negative ones count from the end); others give all-off rows."""

    type = LayerType.ONE_HOT
    _attributes: ClassVar[tuple[str, ...]] = ("axis",)
    _shape_inputs = (2,)
    _max_inputs = 3

    def __init__(self, network: INetworkDefinition, indices: ITensor, values: ITensor,
                 depth: ITensor, axis: int) -> None:
        super().__init__(network, [indices, values, depth])
        self.axis = axis

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, int(value) if key == "axis" else value)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        indices, values, depth = self.require_inputs(inputs, 3)
        if indices.dtype not in INDEX_TYPES:
            self.fail(f"indices must be INT32 or INT64, got {indices.dtype.name}")
        if values.rank != 1 or values.shape[0] not in (2, -1):
            self.fail(f"values must be a 2-element [off, on] tensor, got shape {values.shape}")
        if depth.rank == 1 and depth.shape[0] not in (1, -1):
            self.fail(f"depth must be a scalar, got shape {depth.shape}")
        known = shape_tensor_values(self, depth, "depth (input 2)", scalar=True)
        size = -1 if known is None else known[0]
        if size < -1 or (known is not None and size < 0):
            self.fail(f"depth must not be negative, got {size}")
        rank = indices.rank + 1
        if not -rank <= self.axis < rank:
            self.fail(f"axis {self.axis} is out of range [{-rank}, {rank - 1}]")
        axis = self.axis % rank
        shape = indices.shape[:axis] + (size,) + indices.shape[axis:]
        return [TensorInfo(shape, values.dtype)]


def nonzero_indices(x: np.ndarray) -> np.ndarray:
    """The coordinates of the non-zero elements of ``x``, as an INT64 array [rank, count]."""
    if x.ndim == 0:  # no coordinates to list; NumPy deprecates nonzero on scalars
        return np.zeros((0, int(bool(x))), np.int64)
    return np.asarray(np.nonzero(x), np.int64).reshape(x.ndim, -1)


class INonZeroLayer(ILayer):
    """The coordinates of its input's non-zero elements, [rank, count] in row-major order;
    INT64 (``set_output_type(0, trt.int32)`` for INT32). The count is data dependent."""

    type = LayerType.NON_ZERO

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        if x.value is not None:
            value = nonzero_indices(x.value)
            keep = value if value.size <= MAX_VALUE_ELEMENTS else None
            return [TensorInfo(value.shape, DataType.INT64, keep)]
        return [TensorInfo((x.rank, -1), DataType.INT64)]
