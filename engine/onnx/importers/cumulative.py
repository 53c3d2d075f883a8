"""Running reductions: CumSum through the cumulative layer."""

from __future__ import annotations

import engine as trt
from engine.onnx.compose import cast, reshape
from engine.onnx.context import ImportContext, Node
from engine.onnx.registry import importer
from engine.types import DataType


@importer("CumSum", since=11)
def cumsum(ctx: ImportContext, node: Node):
    x, axis = node.require(0), node.require(1)
    axis = reshape(ctx, cast(ctx, axis, DataType.INT32), [])
    layer = ctx.network.add_cumulative(x, axis, trt.CumulativeOperation.SUM,
                                       bool(node.attr("exclusive", 0)),
                                       bool(node.attr("reverse", 0)))
    return [layer.get_output(0)]
