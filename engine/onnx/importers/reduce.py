"""Reductions, arg-extrema and softmax: reduce, topk and softmax layers."""

from __future__ import annotations

import numpy as np

import engine as trt
from engine.onnx.compose import (
    cast,
    constant_like,
    elementwise,
    flatten_2d,
    normalize_axis,
    rank,
    reduce,
    reshape,
    shape_of,
    squeeze,
    unary,
)
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer
from engine.types import DataType

# The opset from which each reduction takes its axes as an input instead of an attribute.
_AXES_INPUT_SINCE = {"ReduceSum": 13}


def _axes(ctx: ImportContext, node: Node, x) -> list[int] | None:  # noqa: ANN001
    """The reduced axes; None means "no reduction" (noop_with_empty_axes with no axes)."""
    since = _AXES_INPUT_SINCE.get(node.op_type, 18)
    if node.opset >= since and node.input(1) is not None:
        axes = [int(a) for a in ctx.require_value(node, 1, "axes").reshape(-1)]
    elif node.opset < since:
        axes = node.attr("axes")
    else:
        axes = None
    r = rank(x)
    if not axes:
        if node.opset >= since and node.attr("noop_with_empty_axes", 0):
            return None
        return list(range(r))
    return sorted({normalize_axis(node, a, r) for a in axes})


def _reduction(build):  # noqa: ANN001, ANN202
    def run(ctx: ImportContext, node: Node):  # noqa: ANN202
        x = node.require(0)
        axes = _axes(ctx, node, x)
        keepdims = bool(node.attr("keepdims", 1))
        if axes is None:
            return [build(ctx, x, None, keepdims)]
        if rank(x) == 0:
            return [build(ctx, x, None, keepdims)]
        return [build(ctx, x, axes, keepdims)]
    return run


def _plain(op: str):  # noqa: ANN202
    def build(ctx: ImportContext, x, axes, keepdims):  # noqa: ANN001, ANN202
        if axes is None:
            return ctx.network.add_identity(x).get_output(0)
        if x.dtype in (DataType.BOOL, DataType.UINT8, DataType.INT8) and op in ("MAX", "MIN"):
            # exact in INT32 (the reduce layer has no BOOL or UINT8; its INT8 is quantized)
            wide = reduce(ctx, cast(ctx, x, DataType.INT32), op, axes, keepdims)
            if x.dtype == DataType.BOOL:
                # an empty MAX is INT32's minimum, which is False as a BOOL
                return elementwise(ctx, wide, constant_like(ctx, 0, wide), "GREATER")
            return cast(ctx, wide, x.dtype)
        return reduce(ctx, x, op, axes, keepdims)
    return build


def _sum_of(ctx: ImportContext, x, axes, keepdims):  # noqa: ANN001, ANN202
    return x if axes is None else reduce(ctx, x, "SUM", axes, keepdims)


def _l1(ctx: ImportContext, x, axes, keepdims):  # noqa: ANN001, ANN202
    return _sum_of(ctx, unary(ctx, x, "ABS") if x.dtype.is_float else
                   elementwise(ctx, x, unary(ctx, x, "SIGN"), "PROD"), axes, keepdims)


def _sum_square(ctx: ImportContext, x, axes, keepdims):  # noqa: ANN001, ANN202
    return _sum_of(ctx, elementwise(ctx, x, x, "PROD"), axes, keepdims)


def _l2(ctx: ImportContext, x, axes, keepdims):  # noqa: ANN001, ANN202
    total = _sum_square(ctx, x, axes, keepdims)
    if x.dtype.is_float:
        return unary(ctx, total, "SQRT")
    as_float = cast(ctx, total, DataType.FLOAT)
    return cast(ctx, unary(ctx, unary(ctx, unary(ctx, as_float, "SQRT"), "ROUND"), "ABS"),
                x.dtype)


def _log_sum(ctx: ImportContext, x, axes, keepdims):  # noqa: ANN001, ANN202
    return unary(ctx, _sum_of(ctx, x, axes, keepdims), "LOG")


def _log_sum_exp(ctx: ImportContext, x, axes, keepdims):  # noqa: ANN001, ANN202
    if axes is None:
        return unary(ctx, unary(ctx, x, "EXP"), "LOG")
    top = reduce(ctx, x, "MAX", axes, True)
    # Inputs of -inf would give nan through x - max; leave max where it is not finite.
    finite = unary(ctx, unary(ctx, top, "ISINF"), "NOT")
    safe_top = output_of(ctx.network.add_select(finite, top, constant_like(ctx, 0, top)))
    shifted = unary(ctx, elementwise(ctx, x, safe_top, "SUB"), "EXP")
    out = elementwise(ctx, unary(ctx, reduce(ctx, shifted, "SUM", axes, True), "LOG"),
                      safe_top, "SUM")
    if not keepdims:
        out = reduce(ctx, out, "SUM", axes, False)
    return out


for _op, _build in {"ReduceSum": _plain("SUM"), "ReduceMean": _plain("AVG"),
                    "ReduceMax": _plain("MAX"), "ReduceMin": _plain("MIN"),
                    "ReduceProd": _plain("PROD"), "ReduceL1": _l1, "ReduceL2": _l2,
                    "ReduceLogSum": _log_sum, "ReduceLogSumExp": _log_sum_exp,
                    "ReduceSumSquare": _sum_square}.items():
    importer(_op, since=1)(_reduction(_build))


def _arg(op: str):  # noqa: ANN202
    def run(ctx: ImportContext, node: Node):  # noqa: ANN202
        x = node.require(0)
        r = rank(x)
        axis = normalize_axis(node, node.attr("axis", 0), r)
        keepdims = bool(node.attr("keepdims", 1))
        last = bool(node.attr("select_last_index", 0))
        source = x
        n = x.shape[axis]
        if last:
            if n < 0:
                node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                          "select_last_index needs a static size along the axis")
            start = [0] * r
            start[axis] = n - 1
            stride = [1] * r
            stride[axis] = -1
            source = output_of(ctx.network.add_slice(x, trt.Dims(start), trt.Dims(tuple(x.shape)),
                                                     trt.Dims(stride)))
        layer = ctx.network.add_topk(source, trt.TopKOperation.__members__[op], 1, 1 << axis)
        index = cast(ctx, output_of(layer, 1), DataType.INT64)
        if last:
            index = elementwise(ctx, constant_like(ctx, n - 1, index), index, "SUB")
        if not keepdims:
            index = squeeze(ctx, index, [axis])
        return [index]
    return run


importer("ArgMax", since=1)(_arg("MAX"))
importer("ArgMin", since=1)(_arg("MIN"))


def _softmax_core(ctx: ImportContext, x, axis: int, kind: str):  # noqa: ANN001, ANN202
    if kind == "softmax":
        layer = ctx.network.add_softmax(x)
        layer.axes = 1 << axis
        return layer.get_output(0)
    if kind == "log":
        top = reduce(ctx, x, "MAX", [axis], True)
        shifted = elementwise(ctx, x, top, "SUB")
        total = reduce(ctx, unary(ctx, shifted, "EXP"), "SUM", [axis], True)
        return elementwise(ctx, shifted, unary(ctx, total, "LOG"), "SUB")
    # hardmax: one at the first maximum along the axis
    index = output_of(ctx.network.add_topk(x, trt.TopKOperation.MAX, 1, 1 << axis), 1)
    n = x.shape[axis]
    if n < 0:
        raise ValueError("Hardmax needs a static size along the axis")
    iota_shape = [1] * rank(x)
    iota_shape[axis] = n
    iota = ctx.constant(np.arange(n, dtype=np.int32).reshape(iota_shape))
    hit = elementwise(ctx, iota, cast(ctx, index, DataType.INT32), "EQUAL")
    return cast(ctx, hit, x.dtype)


def _softmax(kind: str, coerce_2d: bool):  # noqa: ANN202
    def run(ctx: ImportContext, node: Node):  # noqa: ANN202
        x = node.require(0)
        r = rank(x)
        if coerce_2d:
            axis = normalize_axis(node, node.attr("axis", 1), r)
            flat = flatten_2d(ctx, x, axis)
            out = _softmax_core(ctx, flat, 1, kind)
            return [reshape(ctx, out, shape_of(ctx, x))]
        if r == 0:
            return [_softmax_core(ctx, reshape(ctx, x, [1]), 0, kind)]
        axis = normalize_axis(node, node.attr("axis", -1), r)
        return [_softmax_core(ctx, x, axis, kind)]
    return run


for _op, _kind in {"Softmax": "softmax", "LogSoftmax": "log", "Hardmax": "hard"}.items():
    importer(_op, since=1)(_softmax(_kind, True))
    importer(_op, since=13)(_softmax(_kind, False))

