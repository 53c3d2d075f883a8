"""Sampling and detection ops: GridSample and NonMaxSuppression as TensorRT's layers where they
cover the node (``GridSample_TRT`` and ``NonMaxSuppression_TRT`` where they do not), and through
shipped plugins DeformConv (``DeformConv_TRT``), Det (``Determinant_TRT``) and RoiAlign
(``ROIAlign_TRT``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import engine as trt
from engine.network.layers.math_types import FLOATS
from engine.network.layers.spatial_nms import MAX_TOPK_BOX_LIMIT
from engine.onnx.compose import (
    cast,
    constant_like,
    elementwise,
    gather,
    library_plugin,
    rank,
    reduce,
    reshape,
    transpose,
)
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.tensor import ITensor

_GRID_MODES = {"nearest": 0, "linear": 1, "bilinear": 1, "cubic": 2, "bicubic": 2}
_GRID_PADDING = {"zeros": 0, "border": 1, "reflection": 2}
_GRID_SAMPLE_MODES = {"zeros": trt.SampleMode.FILL, "border": trt.SampleMode.CLAMP,
                      "reflection": trt.SampleMode.REFLECT}


@importer("GridSample", since=16)
def grid_sample(ctx: ImportContext, node: Node):
    """An ``IGridSampleLayer`` for 2-D images of a float type with a grid of that type;
    ``GridSample_TRT`` for the rest (volumetric inputs, integer images, mixed types)."""
    x, grid = node.require(0), node.require(1)
    mode = node.attr("mode", "linear" if node.opset >= 20 else "bilinear")
    padding = node.attr("padding_mode", "zeros")
    if mode not in _GRID_MODES or padding not in _GRID_PADDING:
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"mode '{mode}', padding_mode '{padding}'")
    align_corners = int(node.attr("align_corners", 0))
    if rank(x) == 4 and x.dtype in FLOATS and grid.dtype == x.dtype:
        layer = ctx.network.add_grid_sample(x, grid)
        layer.interpolation_mode = trt.InterpolationMode(_GRID_MODES[mode])
        layer.sample_mode = _GRID_SAMPLE_MODES[padding]
        layer.align_corners = bool(align_corners)
        return [output_of(layer)]
    return library_plugin(ctx, "GridSample_TRT", [x, grid], mode=_GRID_MODES[mode],
                          padding_mode=_GRID_PADDING[padding], align_corners=align_corners)


@importer("DeformConv", since=19)
def deform_conv(ctx: ImportContext, node: Node):
    x, w, offset, bias, mask = (node.input(i) for i in range(5))
    if x is None or w is None or offset is None:
        node.fail(ErrorCode.INVALID_NODE, "DeformConv needs X, W and offset")
    if rank(x) != 4:
        node.fail(ErrorCode.UNSUPPORTED_NODE, f"DeformConv of rank {rank(x)} (2-D only)")
    inputs = [x, w, offset] + [t for t in (bias, mask) if t is not None]
    return library_plugin(
        ctx, "DeformConv_TRT", inputs, strides=list(node.attr("strides", [1, 1])),
        pads=list(node.attr("pads", [0, 0, 0, 0])),
        dilations=list(node.attr("dilations", [1, 1])), group=int(node.attr("group", 1)),
        offset_group=int(node.attr("offset_group", 1)), has_bias=int(bias is not None),
        has_mask=int(mask is not None))


@importer("Det", since=11)
def det(ctx: ImportContext, node: Node):
    x = node.require(0)
    if rank(x) < 2:
        node.fail(ErrorCode.INVALID_NODE, f"Det of a rank-{rank(x)} tensor (square matrices "
                                          f"in the last two axes)")
    return library_plugin(ctx, "Determinant_TRT", [x])


@importer("RoiAlign", since=10)
def roi_align(ctx: ImportContext, node: Node):
    x, rois, indices = node.require(0), node.require(1), node.require(2)
    mode = node.attr("mode", "avg")
    half_pixel = node.attr("coordinate_transformation_mode",
                           "half_pixel" if node.opset >= 16 else "output_half_pixel")
    if mode not in ("avg", "max") or half_pixel not in ("half_pixel", "output_half_pixel"):
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR,
                  f"mode '{mode}', coordinate_transformation_mode '{half_pixel}'")
    return library_plugin(
        ctx, "ROIAlign_TRT", [x, rois, cast(ctx, indices, DataType.INT32)],
        coordinate_transformation_mode=int(half_pixel == "half_pixel"),
        mode=int(mode == "avg"), output_height=int(node.attr("output_height", 1)),
        output_width=int(node.attr("output_width", 1)),
        sampling_ratio=int(node.attr("sampling_ratio", 0)),
        spatial_scale=float(node.attr("spatial_scale", 1.0)))


def _scalar(ctx: ImportContext, node: Node, index: int, what: str) -> float | None:
    if node.input(index) is None:
        return None
    value = ctx.require_value(node, index, what).reshape(-1)
    return None if value.size == 0 else float(value[0])


def _scalar_tensor(ctx: ImportContext, node: Node, index: int, dtype: DataType
                   ) -> ITensor | None:
    """Optional input ``index`` (one value, or none: absent) as a 0-D tensor of ``dtype``."""
    tensor = node.input(index)
    if tensor is None or 0 in tuple(tensor.shape):
        return None
    if rank(tensor) > 1 or (rank(tensor) == 1 and tensor.shape[0] not in (1, -1)):
        node.fail(ErrorCode.INVALID_NODE, f"input {index} must hold one value, got shape "
                                          f"{tuple(tensor.shape)}")
    if dtype == DataType.INT32 and tensor.dtype == DataType.INT64:
        # as TensorRT's parser: an INT64 maximum (no limit) becomes INT32's
        limit = constant_like(ctx, np.iinfo(np.int32).max, tensor)
        tensor = elementwise(ctx, tensor, limit, "MIN")
    return reshape(ctx, cast(ctx, tensor, dtype), [])


def _in_onnx_order(ctx: ImportContext, rows: ITensor, classes: int, bound: int) -> ITensor:
    """``INMSLayer``'s rows [M, 3] (by batch, then score) reordered as ONNX lists them: by
    batch, then class, each class in selection order. Row i goes to the number of rows whose
    key (batch * classes + class, then i) is smaller; ``bound`` exceeds any row count. The
    comparison is [M, M]: M is at most batch * 5000 (the layer's candidate limit)."""
    rows = cast(ctx, rows, DataType.INT64)
    group = elementwise(ctx, elementwise(ctx, gather(ctx, rows, [0], 1),
                                         constant_like(ctx, classes, rows), "PROD"),
                        gather(ctx, rows, [1], 1), "SUM")  # [M, 1]
    ones = elementwise(ctx, elementwise(ctx, group, constant_like(ctx, 0, group), "PROD"),
                       constant_like(ctx, 1, group), "SUM")
    axis = ctx.constant(np.array(0, np.int64))
    position = output_of(ctx.network.add_cumulative(ones, axis, trt.CumulativeOperation.SUM,
                                                    True, False))
    key = elementwise(ctx, elementwise(ctx, group, constant_like(ctx, bound, group), "PROD"),
                      position, "SUM")
    smaller = elementwise(ctx, transpose(ctx, key, (1, 0)), key, "LESS")  # [i, j]: key j < key i
    rank_of = reduce(ctx, cast(ctx, smaller, DataType.INT32), "SUM", [1], keepdims=True)
    zeros = elementwise(ctx, rows, constant_like(ctx, 0, rows), "PROD")
    return output_of(ctx.network.add_scatter(zeros, rank_of, rows, trt.ScatterMode.ND))


@importer("NonMaxSuppression", since=10)
def non_max_suppression(ctx: ImportContext, node: Node):
    """An ``INMSLayer`` (its rows regrouped by class, as ONNX orders them) where the scores'
    dimensions are static and every (box, class) pair of a batch item fits its candidate limit;
    ``NonMaxSuppression_TRT`` otherwise (its limit and thresholds then known at build time)."""
    boxes, scores = node.require(0), node.require(1)
    center_point_box = int(node.attr("center_point_box", 0))
    if center_point_box not in (0, 1):
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"center_point_box {center_point_box}")
    if rank(boxes) != 3 or rank(scores) != 3:
        node.fail(ErrorCode.INVALID_NODE, f"boxes {tuple(boxes.shape)} and scores "
                                          f"{tuple(scores.shape)} must be 3-D")
    batches, classes, count = tuple(scores.shape)
    if min(batches, classes, count) >= 0 and classes * count <= MAX_TOPK_BOX_LIMIT and \
            boxes.dtype == scores.dtype and boxes.dtype in FLOATS:
        limit = _scalar_tensor(ctx, node, 2, DataType.INT32)
        layer = ctx.network.add_nms(boxes, transpose(ctx, scores, (0, 2, 1)),
                                    limit if limit is not None else
                                    ctx.constant(np.array(0, np.int32)))
        iou_tensor = _scalar_tensor(ctx, node, 3, DataType.FLOAT)
        if iou_tensor is not None:
            layer.set_input(3, iou_tensor)
        score_tensor = _scalar_tensor(ctx, node, 4, DataType.FLOAT)
        # no score threshold in ONNX: every score counts (the layer's default is 0)
        layer.set_input(4, score_tensor if score_tensor is not None else
                        ctx.constant(np.array(-np.inf, np.float32)))
        layer.bounding_box_format = trt.BoundingBoxFormat(center_point_box)
        rows = output_of(layer)
        if classes > 1:
            rows = _in_onnx_order(ctx, rows, classes, batches * classes * count + 1)
        return [cast(ctx, rows, DataType.INT64)]
    max_boxes = _scalar(ctx, node, 2, "max_output_boxes_per_class")
    iou = _scalar(ctx, node, 3, "iou_threshold")
    score = _scalar(ctx, node, 4, "score_threshold")
    selected, valid = library_plugin(
        ctx, "NonMaxSuppression_TRT", [boxes, scores],
        max_output_boxes_per_class=max(int(max_boxes or 0), 0),
        iou_threshold=float(iou or 0.0), score_threshold=float(score or 0.0),
        has_score_threshold=int(score is not None), center_point_box=center_point_box)
    rows = output_of(ctx.network.add_non_zero(valid))  # [1, M]
    rows = reshape(ctx, rows, [-1])
    return [gather(ctx, selected, rows, 0)]
