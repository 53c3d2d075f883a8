"""Sampling and detection ops through shipped plugins: GridSample (``GridSample_TRT``),
DeformConv (``DeformConv_TRT``), Det (``Determinant_TRT``),
RoiAlign (``ROIAlign_TRT``) and NonMaxSuppression (``NonMaxSuppression_TRT``)."""

from __future__ import annotations

from engine.onnx.compose import cast, gather, library_plugin, rank, reshape
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer
from engine.types import DataType

_GRID_MODES = {"nearest": 0, "linear": 1, "bilinear": 1, "cubic": 2, "bicubic": 2}
_GRID_PADDING = {"zeros": 0, "border": 1, "reflection": 2}


@importer("GridSample", since=16)
def grid_sample(ctx: ImportContext, node: Node):
    x, grid = node.require(0), node.require(1)
    mode = node.attr("mode", "linear" if node.opset >= 20 else "bilinear")
    padding = node.attr("padding_mode", "zeros")
    if mode not in _GRID_MODES or padding not in _GRID_PADDING:
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"mode '{mode}', padding_mode '{padding}'")
    return library_plugin(ctx, "GridSample_TRT", [x, grid], mode=_GRID_MODES[mode],
                          padding_mode=_GRID_PADDING[padding],
                          align_corners=int(node.attr("align_corners", 0)))


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


@importer("NonMaxSuppression", since=10)
def non_max_suppression(ctx: ImportContext, node: Node):
    boxes, scores = node.require(0), node.require(1)
    max_boxes = _scalar(ctx, node, 2, "max_output_boxes_per_class")
    iou = _scalar(ctx, node, 3, "iou_threshold")
    score = _scalar(ctx, node, 4, "score_threshold")
    selected, valid = library_plugin(
        ctx, "NonMaxSuppression_TRT", [boxes, scores],
        max_output_boxes_per_class=max(int(max_boxes or 0), 0),
        iou_threshold=float(iou or 0.0), score_threshold=float(score or 0.0),
        has_score_threshold=int(score is not None),
        center_point_box=int(node.attr("center_point_box", 0)))
    rows = output_of(ctx.network.add_non_zero(valid))  # [1, M]
    rows = reshape(ctx, rows, [-1])
    return [gather(ctx, selected, rows, 0)]
