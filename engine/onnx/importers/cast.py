"""Type conversions: Cast and CastLike."""

from __future__ import annotations

from engine.onnx.compose import cast
from engine.onnx.context import ImportContext, Node
from engine.onnx.registry import importer
from engine.onnx.tensors import trt_dtype


@importer("Cast", since=1)
def cast_node(ctx: ImportContext, node: Node):
    x = node.require(0)
    to = trt_dtype(int(node.attr("to")), "Cast's target 'to'", ctx.warn)
    out = cast(ctx, x, to)
    return [ctx.network.add_identity(out).get_output(0) if out is x else out]


@importer("CastLike", since=15)
def cast_like(ctx: ImportContext, node: Node):
    x, like = node.require(0), node.require(1)
    out = cast(ctx, x, like.dtype)
    return [ctx.network.add_identity(out).get_output(0) if out is x else out]
