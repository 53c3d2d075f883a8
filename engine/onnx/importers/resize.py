"""Resizing: Resize and Upsample through the resize layer.

``tf_crop_and_resize`` and ``antialias`` map to the layer's extensions
(``ResizeCoordinateTransformation.TF_CROP_AND_RESIZE`` with ``roi`` and
``extrapolation_value``; ``antialias``); the roi must be known at build time."""

from __future__ import annotations

import numpy as np

import engine as trt
from engine.onnx.compose import cast, rank
from engine.onnx.context import ImportContext, Node
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer
from engine.types import DataType

_MODES = {"nearest": "NEAREST", "linear": "LINEAR", "bilinear": "LINEAR", "cubic": "CUBIC"}
_TRANSFORMS = {"half_pixel": "HALF_PIXEL", "asymmetric": "ASYMMETRIC",
               "align_corners": "ALIGN_CORNERS", "pytorch_half_pixel": "HALF_PIXEL",
               "tf_crop_and_resize": "TF_CROP_AND_RESIZE"}
_ROUNDING = {"round_prefer_floor": "HALF_DOWN", "round_prefer_ceil": "HALF_UP",
             "floor": "FLOOR", "ceil": "CEIL"}


def _configure(node: Node, layer, x, mode: str, transform: str) -> None:  # noqa: ANN001
    if mode not in _MODES:
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"mode '{mode}'")
    layer.resize_mode = trt.InterpolationMode.__members__[_MODES[mode]]
    if transform not in _TRANSFORMS:
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"coordinate_transformation_mode "
                                                   f"'{transform}'")
    layer.coordinate_transformation = \
        trt.ResizeCoordinateTransformation.__members__[_TRANSFORMS[transform]]
    if transform == "pytorch_half_pixel":
        # pytorch_half_pixel maps a length-1 output to coordinate 0, as UPPER selects
        layer.selector_for_single_pixel = trt.ResizeSelector.UPPER
    else:
        layer.selector_for_single_pixel = trt.ResizeSelector.FORMULA
    rounding = node.attr("nearest_mode", "round_prefer_floor")
    if rounding not in _ROUNDING:
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"nearest_mode '{rounding}'")
    layer.nearest_rounding = trt.ResizeRoundMode.__members__[_ROUNDING[rounding]]
    layer.cubic_coeff = float(node.attr("cubic_coeff_a", -0.75))
    layer.exclude_outside = bool(node.attr("exclude_outside", 0))
    layer.antialias = bool(node.attr("antialias", 0))


def _crop_region(ctx: ImportContext, node: Node, r: int, axes: list[int]) -> list[float]:
    """tf_crop_and_resize's roi input as starts then ends over all ``r`` dimensions (those
    outside ``axes`` span [0, 1])."""
    if node.input(1) is None:
        node.fail(ErrorCode.INVALID_NODE, "tf_crop_and_resize needs the roi input")
    roi = ctx.require_value(node, 1, "roi of tf_crop_and_resize").astype(np.float64)
    roi = roi.reshape(-1)
    if roi.size != 2 * len(axes):
        node.fail(ErrorCode.INVALID_NODE, f"roi has {roi.size} values; tf_crop_and_resize "
                                          f"needs a start and an end for each of "
                                          f"{len(axes)} axes")
    full = [0.0] * r + [1.0] * r
    for i, a in enumerate(axes):
        full[a], full[r + a] = float(roi[i]), float(roi[len(axes) + i])
    return full


@importer("Resize", since=10)
def resize(ctx: ImportContext, node: Node):
    x = node.require(0)
    r = rank(x)
    if node.opset < 11:
        scales_t, sizes_t = node.input(1), None
        transform = "asymmetric"
    else:
        scales_t, sizes_t = node.input(2), node.input(3)
        transform = node.attr("coordinate_transformation_mode", "half_pixel")
    axes = node.attr("axes")
    axes = list(range(r)) if axes is None else [a % r for a in axes]
    policy = node.attr("keep_aspect_ratio_policy", "stretch")
    roi = _crop_region(ctx, node, r, axes) if transform == "tf_crop_and_resize" else None
    layer = ctx.network.add_resize(x)
    _configure(node, layer, x, node.attr("mode", "nearest"), transform)
    if roi is not None:
        layer.roi = roi
        layer.extrapolation_value = float(node.attr("extrapolation_value", 0.0))
    scales = ctx.value(scales_t) if scales_t is not None else None
    if scales is not None and scales.size == 0:
        scales = None
        scales_t = None
    sizes = ctx.value(sizes_t) if sizes_t is not None else None
    if sizes_t is not None and sizes is not None and sizes.size == 0:
        sizes_t = None
    if sizes_t is not None:
        if sizes is None:
            if axes != list(range(r)) or policy != "stretch":
                node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "sizes must be constant here",
                          tensor=node.input_names[3])
            layer.set_input(1, cast(ctx, sizes_t, DataType.INT64))
            return [layer.get_output(0)]
        dims = list(x.shape)
        if any(dims[a] < 0 for a in axes):
            node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "resizing dynamic dims to sizes")
        wanted = [int(s) for s in sizes.reshape(-1)]
        if policy != "stretch":
            ratios = [w / dims[a] for w, a in zip(wanted, axes)]
            ratio = min(ratios) if policy == "not_larger" else max(ratios)
            wanted = [int(np.floor(dims[a] * ratio + 0.5)) for a in axes]
        out = list(dims)
        for a, w in zip(axes, wanted):
            out[a] = w
        if any(d < 0 for d in out):
            node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "dynamic dims outside axes")
        layer.shape = trt.Dims(out)
        return [layer.get_output(0)]
    if scales_t is None:
        node.fail(ErrorCode.INVALID_NODE, "Resize needs scales or sizes")
    if scales is None:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "scales must be known at build time",
                  tensor=node.input_names[2 if node.opset >= 11 else 1])
    full = [1.0] * r
    for a, s in zip(axes, scales.reshape(-1)):
        full[a] = float(s)
    layer.scales = [float(s) for s in full]
    return [layer.get_output(0)]


@importer("Upsample", since=7)
def upsample(ctx: ImportContext, node: Node):
    x = node.require(0)
    layer = ctx.network.add_resize(x)
    _configure(node, layer, x, node.attr("mode", "nearest"), "asymmetric")
    layer.nearest_rounding = trt.ResizeRoundMode.FLOOR
    if node.opset < 9:
        scales = node.attr("scales")
    else:
        scales = ctx.require_value(node, 1, "scales").reshape(-1)
    layer.scales = [float(s) for s in scales]
    return [layer.get_output(0)]
