"""The padding layer (TensorRT's ``IPaddingLayer``): zeros before and after the innermost
dimensions; negative amounts crop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.types import DataType, Dims

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


class IPaddingLayer(ILayer):
    """Zero padding of the last ``len(pre_padding_nd)`` dimensions: ``add_padding_nd``."""

    type = LayerType.PADDING
    _attributes: ClassVar[tuple[str, ...]] = ("pre_padding_nd", "post_padding_nd")

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 pre_padding: Sequence[int], post_padding: Sequence[int]) -> None:
        super().__init__(network, [input])
        self.pre_padding_nd = Dims(pre_padding)
        self.post_padding_nd = Dims(post_padding)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        pre, post = tuple(self.pre_padding_nd), tuple(self.post_padding_nd)
        if len(pre) != len(post):
            self.fail(f"pre_padding_nd {pre} and post_padding_nd {post} must have the same "
                      f"number of dimensions")
        if not 1 <= len(pre) <= x.rank:
            self.fail(f"padding of {len(pre)} dimensions does not fit an input of shape "
                      f"{x.shape}")
        if x.dtype == DataType.INT4:
            self.fail("INT4 input is not supported")
        lead = x.shape[:x.rank - len(pre)]
        padded = []
        for size, b, a in zip(x.shape[x.rank - len(pre):], pre, post):
            out = -1 if size < 0 else size + b + a
            if 0 <= out < 1 and size > 0:
                self.fail(f"padding {pre} / {post} crops away all of input shape {x.shape}")
            padded.append(out)
        return [TensorInfo(lead + tuple(padded), x.dtype)]
