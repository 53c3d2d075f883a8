"""The scale layer (TensorRT's ``IScaleLayer``): ``(x * scale + shift) ^ power`` with
coefficients per tensor, per channel or per element."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo, attribute_enum
from engine.network.layers.spatial_conv import FLOAT_TYPES, weights_array
from engine.types import Weights, as_weights, volume

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


@attribute_enum
class ScaleMode(enum.IntEnum):
    """Which elements share a coefficient."""

    UNIFORM = 0
    CHANNEL = 1
    ELEMENTWISE = 2


class IScaleLayer(ILayer):
    """``(x * scale + shift) ^ power``: ``add_scale`` / ``add_scale_nd``.

    Empty weights take their defaults (shift 0, scale 1, power 1). CHANNEL coefficients are
    indexed by ``channel_axis``, ELEMENTWISE ones by the axes from ``channel_axis`` on.
    """

    type = LayerType.SCALE
    _attributes: ClassVar[tuple[str, ...]] = ("mode", "shift", "scale", "power", "channel_axis")

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 mode: ScaleMode, shift: Any, scale: Any, power: Any, channel_axis: int) -> None:
        super().__init__(network, [input])
        self.mode = ScaleMode(mode)
        self.shift = Weights() if shift is None else as_weights(shift)
        self.scale = Weights() if scale is None else as_weights(scale)
        self.power = Weights() if power is None else as_weights(power)
        self.channel_axis = int(channel_axis)

    def coefficient_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape the coefficients take, broadcast against an input of ``shape``."""
        axis = self.channel_axis
        mode = ScaleMode(self.mode)
        if mode == ScaleMode.UNIFORM:
            return ()
        if mode == ScaleMode.CHANNEL:
            return (shape[axis],) + (1,) * (len(shape) - axis - 1)
        return tuple(shape[axis:])

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        if x.dtype not in FLOAT_TYPES:
            self.fail(f"input type {x.dtype.name} is not supported; expected FLOAT, HALF or BF16")
        if x.rank < 4:
            self.fail(f"input of shape {x.shape} must have at least 4 dimensions")
        if not 0 <= self.channel_axis < x.rank:
            self.fail(f"channel_axis {self.channel_axis} is out of range for input shape "
                      f"{x.shape}")
        if ScaleMode(self.mode) not in ScaleMode:
            self.fail(f"unknown scale mode {self.mode!r}")
        want = self.coefficient_shape(x.shape)
        for name in ("shift", "scale", "power"):
            count = weights_array(getattr(self, name)).size
            if count and all(d >= 0 for d in want) and count != volume(want):
                self.fail(f"{name} holds {count} values; {ScaleMode(self.mode).name} mode "
                          f"expects {volume(want)} for input shape {x.shape}")
        return [TensorInfo(x.shape, x.dtype)]
