"""The reverse sequence layer (TensorRT's ``IReverseSequenceLayer``): per batch entry, the first
``sequence_lens[b]`` steps of a sequence reversed, the rest kept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.math_types import require_dtype
from engine.network.layers.shape_gather import INDEX_TYPES
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


class IReverseSequenceLayer(ILayer):
    """Reverses sequences of different lengths: ``add_reverse_sequence(input,
    sequence_lens)``. ``input`` has rank 2 or more; along ``batch_axis`` (default 1) entry
    ``b`` has its first ``sequence_lens[b]`` elements along ``sequence_axis`` (default 0)
    reversed. ``sequence_lens`` is a 1-D INT32 or INT64 tensor with one length per batch
    entry; lengths are clamped to [0, sequence length]. The output has the input's shape and
    type.

    >>> import engine as trt
    >>> network = trt.Builder(trt.Logger()).create_network(0)
    >>> x = network.add_input("x", trt.float32, (2, 5, 3))  # [batch, time, features]
    >>> lens = network.add_input("lens", trt.int32, (2,))
    >>> layer = network.add_reverse_sequence(x, lens)
    >>> layer.batch_axis, layer.sequence_axis = 0, 1
    >>> tuple(layer.get_output(0).shape)
    (2, 5, 3)
    """

    type = LayerType.REVERSE_SEQUENCE
    _attributes: ClassVar[tuple[str, ...]] = ("batch_axis", "sequence_axis")
    _max_inputs = 2

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 sequence_lens: ITensor) -> None:
        super().__init__(network, [input, sequence_lens])
        self.batch_axis = 1
        self.sequence_axis = 0

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, int(value) if key in self._attributes else value)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        x, lens = self.require_inputs(inputs, 2)
        if x.rank < 2:
            self.fail(f"input must have rank 2 or more, got shape {x.shape}")
        if x.dtype == DataType.INT4:
            self.fail("INT4 input is not supported")
        for name in self._attributes:
            axis = getattr(self, name)
            if not 0 <= axis < x.rank:
                self.fail(f"{name} {axis} is out of range [0, {x.rank - 1}]", settable=True)
        if self.batch_axis == self.sequence_axis:
            self.fail(f"batch_axis and sequence_axis are both {self.batch_axis}; they must "
                      f"differ", settable=True)
        require_dtype(self, "sequence_lens (input 1)", lens.dtype, INDEX_TYPES)
        batch = x.shape[self.batch_axis]
        if lens.rank != 1:
            self.fail(f"sequence_lens must be 1-D, got shape {lens.shape}")
        if min(batch, lens.shape[0]) >= 0 and lens.shape[0] != batch:
            # settable: batch_axis may not be set yet
            self.fail(f"sequence_lens has {lens.shape[0]} lengths but the input has {batch} "
                      f"batch entries (axis {self.batch_axis} of {x.shape})", settable=True)
        return [TensorInfo(x.shape, x.dtype)]
