"""``Col2Im_TRT``: ONNX's Col2Im, the inverse of im2col: each column of ``input``
[N, C * prod(block_shape), L] holds one sliding block, and the blocks are summed into an
image [N, C, *image_shape] (overlapping values add up).

Fields (INT32 arrays, one entry per spatial dimension, as ONNX's inputs and attributes):
``image_shape``, ``block_shape``, ``strides``, ``dilations``, and ``pads`` (begins, then ends).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.plugins.dimensions import DimsExprs
from engine.plugins.interfaces import PluginFieldType
from engine.plugins.library.base import LibraryPlugin, register_library_plugin
from engine.types import DataType

_EMPTY = np.zeros(0, np.int32)


def col2im(x: np.ndarray, image_shape: Sequence[int], block_shape: Sequence[int],
           strides: Sequence[int], dilations: Sequence[int], pads: Sequence[int]
           ) -> np.ndarray:
    r = len(image_shape)
    n, columns, length = x.shape
    channels = columns // int(np.prod(block_shape))
    padded = [image_shape[d] + pads[d] + pads[r + d] for d in range(r)]
    counts = [(padded[d] - dilations[d] * (block_shape[d] - 1) - 1) // strides[d] + 1
              for d in range(r)]
    if int(np.prod(counts)) != length:
        raise ValueError(f"Col2Im: {length} columns, but the image holds {counts} blocks")
    blocks = x.reshape(n, channels, *block_shape, length)
    out = np.zeros((n, channels, *padded), x.dtype)
    # Each block's position in the padded image: one row per column, one entry per dim.
    starts = np.stack(np.unravel_index(np.arange(length), counts), axis=-1) * strides
    for offset in itertools.product(*(range(k) for k in block_shape)):
        at = starts + np.asarray(offset) * dilations
        tap: tuple[Any, ...] = (..., *offset, slice(None))  # the offset's value in every block
        np.add.at(out, (slice(None), slice(None), *at.T), blocks[tap])
    crop = tuple(slice(pads[d], pads[d] + image_shape[d]) for d in range(r))
    return out[(slice(None), slice(None), *crop)]


@register_library_plugin
class Col2ImPlugin(LibraryPlugin):
    NAME = "Col2Im_TRT"
    enqueue_takes_host_arrays = True  # computed on the host on either target
    FIELDS = {name: (PluginFieldType.INT32, _EMPTY)
              for name in ("image_shape", "block_shape", "strides", "dilations", "pads")}

    def check(self) -> None:
        r = len(self.image_shape)
        if r == 0 or len(self.block_shape) != r or len(self.strides) != r or \
                len(self.dilations) != r or len(self.pads) != 2 * r:
            raise ValueError("Col2Im_TRT: image_shape, block_shape, strides and dilations need "
                             "one entry per spatial dimension, pads two")

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        return [input_types[0]]

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        if len(inputs) != 1 or len(inputs[0]) != 3:
            raise ValueError("Col2Im_TRT takes one input [N, C * prod(block_shape), L]")
        x = inputs[0]
        return [DimsExprs([x[0], x[1] // int(np.prod(self.block_shape)),
                           *(int(d) for d in self.image_shape)])]

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        outputs[0][...] = col2im(np.asarray(inputs[0]), *(
            [int(v) for v in getattr(self, f)]
            for f in ("image_shape", "block_shape", "strides", "dilations", "pads")))
