"""The pooling layer (TensorRT's ``IPoolingLayer``): max, average and their blend over 2D or
3D windows."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from engine.network.layer import LayerType, TensorInfo, attribute_enum
from engine.network.layers.spatial_conv import FLOAT_TYPES, _WindowedLayer
from engine.network.layers.spatial_window import PaddingMode, conv_window
from engine.types import DataType, Dims

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


@attribute_enum
class PoolingType(enum.IntEnum):
    """What a pooling window computes."""

    MAX = 0
    AVERAGE = 1
    MAX_AVERAGE_BLEND = 2


class IPoolingLayer(_WindowedLayer):
    """Pooling over the innermost 2 or 3 dimensions: ``add_pooling_nd``.

    ``type`` is the ``PoolingType`` (TensorRT's name; the ``LayerType`` is ``layer_type``).
    MAX_AVERAGE_BLEND computes ``(1 - blend_factor) * max + blend_factor * average``.
    """

    type = LayerType.POOLING
    _validated_on_add = False  # padding is set after add_pooling_nd
    _attributes: ClassVar[tuple[str, ...]] = (
        "type", "window_size_nd", "stride_nd", "pre_padding", "post_padding", "padding_mode",
        "blend_factor", "average_count_excludes_padding",
    )

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 type: PoolingType, window_size: Sequence[int]) -> None:  # noqa: A002
        super().__init__(network, [input])
        self.type = PoolingType(type)  # type: ignore[misc,assignment]
        self.window_size_nd = Dims(window_size)
        self._init_window(len(self.window_size_nd))
        self.blend_factor = 0.0
        self.average_count_excludes_padding = True

    def geometry(self, spatial_in: Sequence[int]) -> list[tuple[int, int, int]]:
        """``(pre, post, out)`` per spatial axis for an input of spatial size ``spatial_in``."""
        return [conv_window(PaddingMode(self.padding_mode), size, k, s, b, a)
                for size, k, s, b, a in zip(spatial_in, self.window_size_nd, self.stride_nd,
                                            self.pre_padding, self.post_padding)]

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        window = tuple(self.window_size_nd)
        spatial = len(window)
        self._check_window(spatial, window, "window_size_nd")
        if self.type not in list(PoolingType):
            self.fail(f"unknown pooling type {self.type!r}")
        if x.dtype in (DataType.INT8, DataType.INT32) and \
                PoolingType(self.type) != PoolingType.MAX:
            self.fail(f"{x.dtype.name} input is supported by MAX pooling only (for INT8 codes, "
                      f"the maximum of codes is the code of the maximum), not "
                      f"{PoolingType(self.type).name}")
        if x.dtype not in FLOAT_TYPES and x.dtype not in (DataType.INT8, DataType.INT32):
            self.fail(f"input type {x.dtype.name} is not supported; expected FLOAT, HALF, BF16 "
                      f"or INT8 / INT32 (MAX)")
        if x.rank < spatial + 1:
            self.fail(f"input of shape {x.shape} needs at least {spatial + 1} dimensions for a "
                      f"{spatial}D window")
        if not 0.0 <= float(self.blend_factor) <= 1.0:
            self.fail(f"blend_factor {self.blend_factor} must lie in [0, 1]")
        explicit = PaddingMode(self.padding_mode) in (PaddingMode.EXPLICIT_ROUND_DOWN,
                                                      PaddingMode.EXPLICIT_ROUND_UP)
        for name in ("pre_padding", "post_padding") if explicit else ():
            pad = tuple(getattr(self, name))
            if any(p < 0 or p >= k for p, k in zip(pad, window)):
                self.fail(f"{name} {pad} must be non-negative and smaller than the window "
                          f"{window}")
        windows = self.geometry(x.shape[-spatial:])
        outs = tuple(out for _, _, out in windows)
        if any(0 <= out < 1 for out in outs):
            self.fail(f"output would be empty: input spatial shape {x.shape[-spatial:]}, window "
                      f"{window}, output spatial shape {outs}")
        return [TensorInfo(x.shape[:-spatial] + outs, x.dtype)]
