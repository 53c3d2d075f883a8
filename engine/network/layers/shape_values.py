"""Shape tensors as dims: the helper every layer with a shape-tensor input uses.

A shape tensor (a 1-D INT32 or INT64 tensor whose values set another tensor's shape) is often
known while the network is being defined: it comes from a Constant, or from a Shape layer over a
static tensor, through a few Gathers and Concatenations. When its value is known, the layer it
feeds can give static output dims; when it is not, only its length (the output rank) is known.

>>> from engine.network.layer import TensorInfo
>>> from engine.types import DataType
>>> import numpy as np
>>> info = TensorInfo((2,), DataType.INT64, np.array([3, 4]))
>>> shape_tensor_length(info)
2
"""

from __future__ import annotations

from engine.network.layer import ILayer, TensorInfo
from engine.types import DataType

SHAPE_TENSOR_TYPES = (DataType.INT32, DataType.INT64)


def check_shape_tensor(layer: ILayer, info: TensorInfo, what: str, *, scalar: bool = False
                       ) -> None:
    """Fail naming ``layer`` unless ``info`` is an INT32/INT64 tensor of rank 1 (or 0 with
    ``scalar``)."""
    if info.dtype not in SHAPE_TENSOR_TYPES:
        layer.fail(f"{what} must be an INT32 or INT64 tensor, got {info.dtype.name}")
    allowed = (0, 1) if scalar else (1,)
    if info.rank not in allowed:
        layer.fail(f"{what} must be a {'scalar or ' if scalar else ''}1-D tensor, got shape "
                   f"{info.shape}")


def shape_tensor_length(info: TensorInfo) -> int:
    """How many values the 1-D shape tensor holds (-1 while unknown)."""
    return 1 if info.rank == 0 else info.shape[0]


def shape_tensor_values(layer: ILayer, info: TensorInfo | None, what: str, *,
                        scalar: bool = False) -> tuple[int, ...] | None:
    """The values of an optional shape-tensor input as ints, or None when it is absent or its
    value is not known at build time. Fails naming ``layer`` when the tensor is not a shape
    tensor.
    """
    if info is None:
        return None
    check_shape_tensor(layer, info, what, scalar=scalar)
    if info.value is None:
        return None
    return tuple(int(v) for v in info.value.reshape(-1))


def dims_or_unknown(layer: ILayer, info: TensorInfo | None, what: str
                    ) -> tuple[int, ...] | None:
    """Dims set by an optional shape-tensor input: its values when known, else as many -1s as
    it has elements. None when the input is absent; fails when even its length is unknown."""
    if info is None:
        return None
    values = shape_tensor_values(layer, info, what)
    if values is not None:
        return values
    length = shape_tensor_length(info)
    if length < 0:
        layer.fail(f"{what} has an unknown length, so the output rank is unknown")
    return (-1,) * length
