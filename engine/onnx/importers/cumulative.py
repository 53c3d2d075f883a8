"""Running reductions: CumSum through the cumulative layer."""

from __future__ import annotations

import numpy as np

import engine as trt
from engine.onnx.context import ImportContext, Node
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
