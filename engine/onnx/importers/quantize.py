"""Quantization: QuantizeLinear and DequantizeLinear (symmetric, as TensorRT supports)."""

from __future__ import annotations

import numpy as np

from engine.onnx.compose import normalize_axis, rank
from engine.onnx.context import ImportContext, Node
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer
from engine.onnx.tensors import trt_dtype
from engine.types import DataType


def _check_zero_point(ctx: ImportContext, node: Node) -> DataType | None:
    zp = node.input(2)
    if zp is None:
        return None
    value = ctx.value(zp)
    if value is None or np.any(np.asarray(value, np.float64) != 0):
        node.fail(ErrorCode.UNSUPPORTED_NODE_INPUT,
                  "only zero zero-points are supported (TensorRT quantizes symmetrically)")
    return zp.dtype


def _axis(node: Node, x, scale) -> int | None:  # noqa: ANN001
    if rank(scale) == 0 or (rank(scale) == 1 and scale.shape[0] == 1):
        return None
    return normalize_axis(node, node.attr("axis", 1), rank(x))


@importer("QuantizeLinear", since=10)
def quantize(ctx: ImportContext, node: Node):
    x, scale = node.require(0), node.require(1)
    zp_type = _check_zero_point(ctx, node)
    out_type = zp_type or DataType.UINT8
    if "output_dtype" in node.attrs and node.attr("output_dtype"):
        out_type = trt_dtype(int(node.attr("output_dtype")), "output_dtype")
    if node.attr("block_size", 0):
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, "block quantization")
    layer = ctx.network.add_quantize(x, scale, out_type)
    axis = _axis(node, x, scale)
    if axis is not None:
        layer.axis = axis
    return [layer.get_output(0)]


@importer("DequantizeLinear", since=10)
def dequantize(ctx: ImportContext, node: Node):
    x, scale = node.require(0), node.require(1)
    _check_zero_point(ctx, node)
    if node.attr("block_size", 0):
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, "block quantization")
    out_type = scale.dtype
    if node.attr("output_dtype", 0):
        out_type = trt_dtype(int(node.attr("output_dtype")), "output_dtype")
    layer = ctx.network.add_dequantize(x, scale, out_type)
    axis = _axis(node, x, scale)
    if axis is not None:
        layer.axis = axis
    return [layer.get_output(0)]
