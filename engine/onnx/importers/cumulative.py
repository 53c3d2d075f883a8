"""Running reductions: CumSum through the cumulative layer, CumProd composed."""

from __future__ import annotations

import numpy as np

import engine as trt
from engine.onnx.compose import concat, elementwise
from engine.onnx.context import ImportContext, Node
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer


@importer("CumSum", since=11)
def cumsum(ctx: ImportContext, node: Node):
    x = node.require(0)
    value = int(ctx.require_value(node, 1, "axis").reshape(-1)[0])
    axis = ctx.constant(np.array(value % max(len(x.shape), 1), np.int32))
    layer = ctx.network.add_cumulative(x, axis, trt.CumulativeOperation.SUM,
                                       bool(node.attr("exclusive", 0)),
                                       bool(node.attr("reverse", 0)))
    return [layer.get_output(0)]


@importer("CumProd", since=26)
def cumprod(ctx: ImportContext, node: Node):
    """A running product (TensorRT's cumulative layer only sums): one slice per position
    along the axis, multiplied in turn and concatenated; the axis length must be static."""
    x = node.require(0)
    r = len(x.shape)
    axis = int(ctx.require_value(node, 1, "axis").reshape(-1)[0]) % max(r, 1)
    n = x.shape[axis]
    if n < 0 or any(d < 0 for d in x.shape):
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "CumProd needs static dimensions")
    exclusive, reverse = bool(node.attr("exclusive", 0)), bool(node.attr("reverse", 0))
    size = list(x.shape)
    size[axis] = 1

    def part(i: int):  # noqa: ANN202
        start = [0] * r
        start[axis] = i
        return ctx.network.add_slice(x, trt.Dims(start), trt.Dims(size),
                                     trt.Dims([1] * r)).get_output(0)

    order = list(range(n))[::-1] if reverse else list(range(n))
    ones = ctx.constant(np.ones(size, trt.nptype(x.dtype)))
    running, outs = None, []
    for i in order:
        current = part(i)
        if exclusive:
            outs.append(ones if running is None else running)
        running = current if running is None else elementwise(ctx, running, current, "PROD")
        if not exclusive:
            outs.append(running)
    if reverse:
        outs = outs[::-1]
    return [concat(ctx, outs, axis) if outs else x]
