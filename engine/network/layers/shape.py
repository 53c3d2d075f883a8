"""The shape family: layers that move data or compute shapes, and their ``add_*`` methods.

The layer classes live in sibling modules, one concept each: ``shape_of`` (Shape,
Concatenation), ``shape_reshape`` (Shuffle, Squeeze, Unsqueeze), ``shape_slice``,
``shape_gather`` (Gather, Scatter), ``shape_indices`` (OneHot, NonZero), ``shape_fill``,
``shape_assertion``, ``shape_quantize`` and ``shape_reverse_sequence``; ``shape_values``
turns shape-tensor inputs into dims for any family.

>>> import engine as trt, numpy as np
>>> network = trt.Builder(trt.Logger()).create_network(0)
>>> x = network.add_input("x", trt.float32, (2, 3, 4))
>>> shape = network.add_shape(x).get_output(0)
>>> last = network.add_slice(shape, (2,), (1,), (1,)).get_output(0)
>>> minus_one = network.add_constant((1,), np.array([-1], np.int64)).get_output(0)
>>> dims = network.add_concatenation([minus_one, last]).get_output(0)
>>> reshape = network.add_shuffle(x)
>>> reshape.set_input(1, dims)
>>> tuple(reshape.get_output(0).shape)
(6, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.network.layers.family import LayerFamily
from engine.network.layers.shape_assertion import IAssertionLayer
from engine.network.layers.shape_fill import FillOperation, IFillLayer
from engine.network.layers.shape_gather import (
    GatherMode,
    IGatherLayer,
    IScatterLayer,
    ScatterMode,
    ScatterReduction,
)
from engine.network.layers.shape_indices import INonZeroLayer, IOneHotLayer
from engine.network.layers.shape_of import IConcatenationLayer, IShapeLayer
from engine.network.layers.shape_quantize import IDequantizeLayer, IQuantizeLayer
from engine.network.layers.shape_reshape import (
    IShuffleLayer,
    ISqueezeLayer,
    IUnsqueezeLayer,
    Permutation,
)
from engine.network.layers.shape_reverse_sequence import IReverseSequenceLayer
from engine.network.layers.shape_slice import ISliceLayer, SampleMode
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.tensor import ITensor

__all__ = [
    "FillOperation", "GatherMode", "IAssertionLayer", "IConcatenationLayer", "IDequantizeLayer",
    "IFillLayer", "IGatherLayer", "INonZeroLayer", "IOneHotLayer", "IQuantizeLayer",
    "IReverseSequenceLayer", "IScatterLayer", "IShapeLayer", "IShuffleLayer", "ISliceLayer",
    "ISqueezeLayer", "IUnsqueezeLayer", "Permutation", "SampleMode", "ScatterMode",
    "ScatterReduction",
]


class ShapeLayers(LayerFamily):
    """The ``add_*`` methods of the shape family (mixed into ``INetworkDefinition``)."""

    def add_shuffle(self, input: ITensor) -> IShuffleLayer:  # noqa: A002
        """Transpose, reshape, transpose; by default an identity until attributes are set."""
        return self._add(IShuffleLayer, input)

    def add_concatenation(self, inputs: Sequence[ITensor]
                          ) -> IConcatenationLayer:
        """Join ``inputs`` along ``axis`` (default: rank - 3, at least 0)."""
        if not inputs:
            from engine.errors import NetworkError

            raise NetworkError("add_concatenation: needs at least one input tensor")
        return self._add(IConcatenationLayer, list(inputs))

    def add_slice(self, input: ITensor,  # noqa: A002
                  start: Sequence[int], shape: Sequence[int], stride: Sequence[int]
                  ) -> ISliceLayer:
        """Slice ``input``: output ``shape`` read from ``start`` in steps of ``stride``."""
        return self._add(ISliceLayer, input, start, shape, stride)

    def add_gather(self, input: ITensor,  # noqa: A002
                   indices: ITensor, axis: int) -> IGatherLayer:
        """Gather slices of ``input`` along ``axis`` (``GatherMode.DEFAULT``)."""
        return self._add(IGatherLayer, input, indices, axis, GatherMode.DEFAULT)

    def add_gather_v2(self, input: ITensor,  # noqa: A002
                      indices: ITensor, mode: GatherMode) -> IGatherLayer:
        """Gather in ``mode`` (DEFAULT, ELEMENT or ND), along axis 0 until ``axis`` is set."""
        return self._add(IGatherLayer, input, indices, 0, GatherMode(mode))

    def add_scatter(self, data: ITensor, indices: ITensor,
                    updates: ITensor, mode: ScatterMode) -> IScatterLayer:
        """A copy of ``data`` with ``updates`` written at ``indices`` (ELEMENT or ND)."""
        return self._add(IScatterLayer, data, indices, updates, ScatterMode(mode))

    def add_shape(self, input: ITensor) -> IShapeLayer:  # noqa: A002
        """The shape of ``input`` as a 1-D INT64 tensor."""
        return self._add(IShapeLayer, [input])

    def add_fill(self, shape: Sequence[int], op: FillOperation,
                 output_dtype: DataType = DataType.FLOAT) -> IFillLayer:
        """A tensor of ``shape`` made by ``op`` (see ``FillOperation``)."""
        return self._add(IFillLayer, shape, FillOperation(op), DataType(output_dtype))

    def add_one_hot(self, indices: ITensor, values: ITensor,
                    depth: ITensor, axis: int) -> IOneHotLayer:
        """One-hot encode ``indices`` with [off, on] ``values`` and ``depth`` at ``axis``."""
        return self._add(IOneHotLayer, indices, values, depth, axis)

    def add_non_zero(self, input: ITensor) -> INonZeroLayer:  # noqa: A002
        """The coordinates of the non-zero elements of ``input``, [rank, count]."""
        return self._add(INonZeroLayer, [input])

    def add_reverse_sequence(self, input: ITensor,  # noqa: A002
                             sequence_lens: ITensor) -> IReverseSequenceLayer:
        """Reverse the first ``sequence_lens[b]`` steps along ``sequence_axis`` (default 0) of
        each entry ``b`` along ``batch_axis`` (default 1)."""
        return self._add(IReverseSequenceLayer, input, sequence_lens)

    def add_squeeze(self, input: ITensor,  # noqa: A002
                    axes: ITensor) -> ISqueezeLayer:
        """Remove the size-1 axes listed by the constant tensor ``axes``."""
        return self._add(ISqueezeLayer, [input, axes])

    def add_unsqueeze(self, input: ITensor,  # noqa: A002
                      axes: ITensor) -> IUnsqueezeLayer:
        """Insert size-1 axes at the output positions listed by the constant tensor ``axes``."""
        return self._add(IUnsqueezeLayer, [input, axes])

    def add_assertion(self, condition: ITensor, message: str
                      ) -> IAssertionLayer:
        """Fail the build or the run with ``message`` when ``condition`` holds a false."""
        return self._add(IAssertionLayer, condition, message)

    def add_quantize(self, input: ITensor,  # noqa: A002
                     scale: ITensor, output_type: DataType = DataType.INT8) -> IQuantizeLayer:
        """Quantize ``input`` with ``scale`` to ``output_type`` (INT8, FP8 or INT4)."""
        return self._add(IQuantizeLayer, input, scale, DataType(output_type))

    def add_dequantize(self, input: ITensor,  # noqa: A002
                       scale: ITensor, output_type: DataType = DataType.FLOAT
                       ) -> IDequantizeLayer:
        """Dequantize ``input`` with ``scale`` to ``output_type`` (FLOAT, HALF or BF16)."""
        return self._add(IDequantizeLayer, input, scale, DataType(output_type))
