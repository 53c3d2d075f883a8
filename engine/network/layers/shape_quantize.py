"""``IQuantizeLayer`` and ``IDequantizeLayer``: conversions between real values and INT8, FP8
or INT4 codes with a scale (per tensor, per channel along ``axis``, or per block).

    quantize:   q = saturate(round_half_to_even(x / scale) + zero_point)
    dequantize: x = (q - zero_point) * scale

The scale is a scalar (per tensor), a 1-D tensor along ``axis`` (per channel), or a tensor of
the input's rank whose dims divide the input's (per block; ``block_shape`` records it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.types import DataType, Dims

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor

REAL_TYPES = (DataType.FLOAT, DataType.HALF, DataType.BF16)
QUANTIZED_TYPES = (DataType.INT8, DataType.FP8, DataType.INT4)


def scale_blocks(input_shape: Sequence[int], scale_shape: Sequence[int], axis: int
                 ) -> tuple[int, ...] | None:
    """Per input dim, how many consecutive input elements share one scale (-1 unknown);
    None when the scale is per tensor. Raises ``ValueError`` when the shapes do not fit."""
    rank = len(input_shape)
    if len(scale_shape) == 0:
        return None
    if len(scale_shape) == 1 and (rank != 1 or axis >= 0):
        if not 0 <= axis < rank:
            raise ValueError(f"a per-channel scale of shape {tuple(scale_shape)} needs axis in "
                             f"[0, {rank}), got {axis}")
        d, s = input_shape[axis], scale_shape[0]
        if d >= 0 and s >= 0 and d != s:
            raise ValueError(f"per-channel scale has {s} values, axis {axis} of the input has "
                             f"{d}")
        return tuple(1 if i == axis else d for i, d in enumerate(input_shape))
    if len(scale_shape) != rank:
        raise ValueError(f"scale of shape {tuple(scale_shape)} is neither a scalar, 1-D, nor of "
                         f"the input's rank {rank}")
    blocks = []
    for d, s in zip(input_shape, scale_shape):
        if d < 0 or s < 0:
            blocks.append(-1)
        elif s == 0 or d % s:
            raise ValueError(f"block scale of shape {tuple(scale_shape)} does not divide input "
                             f"shape {tuple(input_shape)}")
        else:
            blocks.append(d // s)
    return tuple(blocks)


class _QuantizationLayer(ILayer):
    _attributes: ClassVar[tuple[str, ...]] = ("axis", "to_type", "block_shape")
    _validated_on_add = False  # attributes are set after add_*
    _max_inputs = 3
    _from_types: ClassVar[tuple[DataType, ...]] = ()
    _to_types: ClassVar[tuple[DataType, ...]] = ()

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 scale: ITensor, to_type: DataType) -> None:
        super().__init__(network, [input, scale])
        self.axis = -1
        self.to_type = to_type
        self.block_shape = Dims()

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "axis":
            value = int(value)
        elif key == "to_type":
            value = DataType(value)
        elif key == "block_shape":
            value = Dims(value)
        super().__setattr__(key, value)

    def set_block_shape(self, block_shape: Sequence[int]) -> bool:
        """TensorRT's ``setBlockShape``: record the block shape (checked when inferred)."""
        self.block_shape = Dims(block_shape)
        return True

    def check(self, inputs: list[TensorInfo | None]) -> TensorInfo:
        x, scale = self.require_inputs(inputs, 2)
        if x.dtype not in self._from_types:
            self.fail(f"input type {x.dtype.name} is not one of "
                      f"{[t.name for t in self._from_types]}")
        if self.to_type not in self._to_types:
            self.fail(f"to_type {self.to_type.name} is not one of "
                      f"{[t.name for t in self._to_types]}")
        if scale.dtype not in REAL_TYPES:
            self.fail(f"scale must be FLOAT, HALF or BF16, got {scale.dtype.name}")
        if scale.value is not None and (scale.value.astype("float32") <= 0).any():
            self.fail("scale values must be positive")
        try:
            blocks = scale_blocks(x.shape, scale.shape, self.axis)
        except ValueError as exc:
            self.fail(str(exc))
        if self.block_shape and blocks is not None:
            expected = tuple(d if b == -1 else b for b, d in zip(self.block_shape, x.shape))
            if len(self.block_shape) != x.rank or any(
                    a >= 0 and b >= 0 and a != b for a, b in zip(expected, blocks)):
                self.fail(f"block_shape {tuple(self.block_shape)} does not match the scale "
                          f"of shape {scale.shape} for input of shape {x.shape}")
        zero_point = inputs[2] if len(inputs) > 2 else None
        if zero_point is not None:
            if tuple(zero_point.shape) != tuple(scale.shape):
                self.fail(f"zero point shape {zero_point.shape} differs from scale shape "
                          f"{scale.shape}")
            if zero_point.value is not None and zero_point.value.astype("float32").any():
                self.fail("zero points must be zero (only symmetric quantization exists)")
        return x


class IQuantizeLayer(_QuantizationLayer):
    """Real values (input 0) to INT8, FP8 or INT4 (``to_type``) with ``scale`` (input 1) and
    an optional zero point (input 2, zeros)."""

    type = LayerType.QUANTIZE
    _from_types = REAL_TYPES
    _to_types = QUANTIZED_TYPES

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        x = self.check(inputs)
        return [TensorInfo(x.shape, self.to_type)]


class IDequantizeLayer(_QuantizationLayer):
    """INT8, FP8 or INT4 codes (input 0) to real values of ``to_type`` with ``scale`` (input
    1) and an optional zero point (input 2, zeros)."""

    type = LayerType.DEQUANTIZE
    _from_types = QUANTIZED_TYPES
    _to_types = REAL_TYPES

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        x = self.check(inputs)
        return [TensorInfo(x.shape, self.to_type)]
