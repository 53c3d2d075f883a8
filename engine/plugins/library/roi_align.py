"""``ROIAlign_TRT``: region-of-interest align, as ONNX's ``RoiAlign`` (opset 16).

Inputs: ``X`` [N, C, H, W], ``rois`` [R, 4] as [x1, y1, x2, y2] in input coordinates,
``batch_indices`` [R] (INT32). Output [R, C, output_height, output_width]. Fields:
``coordinate_transformation_mode`` (1 half_pixel, 0 output_half_pixel), ``mode`` (1 average,
0 max), ``output_height``, ``output_width``, ``sampling_ratio`` (0: adaptive),
``spatial_scale``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.plugins.dimensions import DimsExprs
from engine.plugins.interfaces import PluginFieldType
from engine.plugins.library.base import (
    LibraryPlugin,
    array_module,
    host_numpy,
    register_library_plugin,
)
from engine.types import DataType


def _axis_samples(start: float, size: float, bins: int, grid: int, limit: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per sample along one axis: low index, high index, low weight, high weight, valid."""
    steps = (np.arange(bins)[:, None] * (size / bins)
             + (np.arange(grid)[None, :] + 0.5) * (size / bins / grid)).reshape(-1)
    pos = start + steps
    valid = (pos >= -1.0) & (pos <= limit)
    pos = np.clip(pos, 0.0, None)
    low = np.floor(pos).astype(np.int64)
    at_edge = low >= limit - 1
    low = np.where(at_edge, limit - 1, low)
    high = np.where(at_edge, limit - 1, low + 1)
    pos = np.where(at_edge, low.astype(pos.dtype), pos)
    frac = pos - low
    return low, high, 1.0 - frac, frac, valid


def roi_align(x: np.ndarray, rois: np.ndarray, batch_indices: np.ndarray, *, mode: int,
              output_height: int, output_width: int, sampling_ratio: int, spatial_scale: float,
              half_pixel: bool) -> np.ndarray:
    """``x`` may be a device array: the sampling grid is made on the host from ``rois`` and
    ``batch_indices`` (host arrays), the gathering and averaging run where ``x`` is."""
    xp = array_module(x)
    _, channels, height, width = x.shape
    out = xp.zeros((len(rois), channels, output_height, output_width), x.dtype)
    offset = 0.5 if half_pixel else 0.0
    for r, roi in enumerate(rois.astype(np.float64)):
        x1, y1, x2, y2 = roi * spatial_scale - offset
        roi_w, roi_h = x2 - x1, y2 - y1
        if not half_pixel:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / output_height)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / output_width)
        grid_h, grid_w = max(grid_h, 1), max(grid_w, 1)
        yl, yh, wyl, wyh, yv = (xp.asarray(a) for a in
                                _axis_samples(y1, roi_h, output_height, grid_h, height))
        xl, xh, wxl, wxh, xv = (xp.asarray(a) for a in
                                _axis_samples(x1, roi_w, output_width, grid_w, width))
        image = x[int(batch_indices[r])].astype(np.float64)
        valid = (yv[:, None] & xv[None, :])
        corners = [image[:, yl][:, :, xl] * (wyl[:, None] * wxl[None, :]),
                   image[:, yl][:, :, xh] * (wyl[:, None] * wxh[None, :]),
                   image[:, yh][:, :, xl] * (wyh[:, None] * wxl[None, :]),
                   image[:, yh][:, :, xh] * (wyh[:, None] * wxh[None, :])]
        shape = (channels, output_height, grid_h, output_width, grid_w)
        if mode == 1:
            values = xp.where(valid, sum(corners), 0.0).reshape(shape)
            out[r] = values.sum(axis=(2, 4)) / (grid_h * grid_w)
        else:
            # ONNX's max mode: the largest weighted corner value over the samples.
            values = xp.where(valid, xp.stack(corners).max(axis=0), 0.0).reshape(shape)
            out[r] = values.max(axis=(2, 4))
    return out


@register_library_plugin
class ROIAlignPlugin(LibraryPlugin):
    NAME = "ROIAlign_TRT"
    # The regions are read on the host (their sample grids are sized by their extents).
    host_synchronizing = True
    FIELDS = {
        "coordinate_transformation_mode": (PluginFieldType.INT32, 1),
        "mode": (PluginFieldType.INT32, 1),
        "output_height": (PluginFieldType.INT32, 1),
        "output_width": (PluginFieldType.INT32, 1),
        "sampling_ratio": (PluginFieldType.INT32, 0),
        "spatial_scale": (PluginFieldType.FLOAT32, 1.0),
    }

    def check(self) -> None:
        if self.mode not in (0, 1) or self.coordinate_transformation_mode not in (0, 1):
            raise ValueError("ROIAlign_TRT: mode and coordinate_transformation_mode must be 0 "
                             "or 1")
        if self.output_height <= 0 or self.output_width <= 0 or self.sampling_ratio < 0:
            raise ValueError("ROIAlign_TRT: output_height and output_width must be > 0 and "
                             "sampling_ratio >= 0")

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        return [DataType(input_types[0])]

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        if len(inputs) != 3 or len(inputs[0]) != 4 or len(inputs[1]) != 2:
            raise ValueError("ROIAlign_TRT takes X [N, C, H, W], rois [R, 4] and "
                             "batch_indices [R]")
        return [DimsExprs([inputs[1][0], inputs[0][1], self.output_height, self.output_width])]

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        outputs[0][...] = roi_align(
            inputs[0], host_numpy(inputs[1]), host_numpy(inputs[2]),
            mode=self.mode, output_height=self.output_height, output_width=self.output_width,
            sampling_ratio=self.sampling_ratio, spatial_scale=self.spatial_scale,
            half_pixel=self.coordinate_transformation_mode == 1)
