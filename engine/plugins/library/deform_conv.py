"""``DeformConv_TRT``: deformable convolution, as ONNX's ``DeformConv`` (opset 19; DCNv1, and
DCNv2 with a mask), 2-D.

Inputs: ``X`` [N, C, H, W], ``W`` [oC, C / group, kH, kW], ``offset`` [N, offset_group * kH *
kW * 2, oH, oW] (per offset group and kernel tap, the (row, column) shift of the tap's sampling
point), then ``B`` [oC] when ``has_bias``, then ``mask`` [N, offset_group * kH * kW, oH, oW]
(each sample's weight) when ``has_mask``. Output [N, oC, oH, oW]. Fields: ``strides``,
``pads`` (begin and end per axis), ``dilations``, ``group``, ``offset_group``, ``has_bias``,
``has_mask``. A tap samples ``X`` bilinearly at its shifted point (zero outside the image),
the samples form the columns of the convolution's matrix product, as im2col would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.plugins.dimensions import DimsExprs
from engine.plugins.interfaces import PluginFieldType
from engine.plugins.library.base import (
    LibraryPlugin,
    array_module,
    matmul,
    register_library_plugin,
)
from engine.types import DataType


def _bilinear(xp: Any, image: Any, rows: Any, cols: Any) -> Any:
    """``image`` [N, C, H, W] sampled at real points ``rows``, ``cols`` [N, *points]
    (zero outside): [N, C, *points]."""
    n, c, h, w = image.shape
    top, left = xp.floor(rows), xp.floor(cols)
    dy, dx = rows - top, cols - left
    top, left = top.astype(np.int64), left.astype(np.int64)
    flat = image.reshape(n, c, h * w)
    out = xp.zeros((n, c) + rows.shape[1:], np.float32)
    for r, c_, weight in ((top, left, (1 - dy) * (1 - dx)), (top, left + 1, (1 - dy) * dx),
                          (top + 1, left, dy * (1 - dx)), (top + 1, left + 1, dy * dx)):
        inside = (r >= 0) & (r < h) & (c_ >= 0) & (c_ < w)
        index = (xp.clip(r, 0, h - 1) * w + xp.clip(c_, 0, w - 1)).reshape(n, 1, -1)
        values = xp.take_along_axis(flat, xp.broadcast_to(index, (n, c, index.shape[-1])),
                                    axis=2).reshape(out.shape)
        out += values * (weight * inside).astype(np.float32)[:, None]
    return out


def deform_conv(x: Any, weight: Any, offset: Any, bias: Any | None, mask: Any | None, *,
                strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
                group: int, offset_group: int) -> Any:
    xp = array_module(x)
    n, channels, _, _ = x.shape
    maps, _, kh, kw = weight.shape
    oh, ow = offset.shape[2:]
    taps = kh * kw
    x = x.astype(np.float32)
    offset = offset.astype(np.float32).reshape(n, offset_group, taps, 2, oh, ow)
    ki, kj = xp.meshgrid(xp.arange(kh), xp.arange(kw), indexing="ij")
    base_rows = (xp.arange(oh)[None, :, None] * strides[0] - pads[0] +
                 ki.reshape(taps, 1, 1) * dilations[0]).astype(np.float32)  # [taps, oh, 1]
    base_cols = (xp.arange(ow)[None, None, :] * strides[1] - pads[1] +
                 kj.reshape(taps, 1, 1) * dilations[1]).astype(np.float32)  # [taps, 1, ow]
    per_group = channels // offset_group
    columns = []
    for g in range(offset_group):
        rows = base_rows[None] + offset[:, g, :, 0]  # [N, taps, oh, ow]
        cols = base_cols[None] + offset[:, g, :, 1]
        sampled = _bilinear(xp, x[:, g * per_group:(g + 1) * per_group], rows, cols)
        if mask is not None:
            sampled = sampled * mask.astype(np.float32).reshape(
                n, offset_group, taps, oh, ow)[:, g][:, None]
        columns.append(sampled)  # [N, C / offset_group, taps, oh, ow]
    cols = xp.concatenate(columns, axis=1).reshape(n, group, channels // group * taps, oh * ow)
    kernel = weight.astype(np.float32).reshape(group, maps // group, channels // group * taps)
    out = matmul(kernel[None], cols).reshape(n, maps, oh, ow)
    if bias is not None:
        out = out + bias.astype(np.float32).reshape(1, maps, 1, 1)
    return out


@register_library_plugin
class DeformConvPlugin(LibraryPlugin):
    NAME = "DeformConv_TRT"
    FIELDS = {
        "strides": (PluginFieldType.INT32, np.array([1, 1], np.int32)),
        "pads": (PluginFieldType.INT32, np.array([0, 0, 0, 0], np.int32)),
        "dilations": (PluginFieldType.INT32, np.array([1, 1], np.int32)),
        "group": (PluginFieldType.INT32, 1),
        "offset_group": (PluginFieldType.INT32, 1),
        "has_bias": (PluginFieldType.INT32, 0),
        "has_mask": (PluginFieldType.INT32, 0),
    }

    def check(self) -> None:
        if len(self.strides) != 2 or len(self.dilations) != 2 or len(self.pads) != 4 or \
                self.group < 1 or self.offset_group < 1:
            raise ValueError("DeformConv_TRT: 2-D strides and dilations, four pads, positive "
                             "group and offset_group")

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        return [DataType(input_types[0])]

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        want = 3 + int(self.has_bias) + int(self.has_mask)
        if len(inputs) != want or len(inputs[0]) != 4 or len(inputs[1]) != 4:
            raise ValueError(f"DeformConv_TRT takes X, W, offset"
                             f"{', B' if self.has_bias else ''}"
                             f"{', mask' if self.has_mask else ''}: {want} inputs of rank 4")
        x, w = inputs[0], inputs[1]
        # (in + pads - dilated kernel) // stride + 1, with no negative constant (an
        # expression of -1 reads as unknown)
        spatial = [((x[2 + i] + (int(self.pads[i]) + int(self.pads[2 + i])))
                    - ((w[2 + i] - 1) * int(self.dilations[i]) + 1)) // int(self.strides[i]) + 1
                   for i in range(2)]
        return [DimsExprs([x[0], w[0], *spatial])]

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        x, weight, offset, *rest = inputs
        bias = rest.pop(0) if self.has_bias else None
        mask = rest.pop(0) if self.has_mask else None
        out = deform_conv(x, weight, offset, bias, mask,
                          strides=[int(s) for s in self.strides],
                          pads=[int(p) for p in self.pads],
                          dilations=[int(d) for d in self.dilations],
                          group=int(self.group), offset_group=int(self.offset_group))
        outputs[0][...] = out.astype(outputs[0].dtype)
