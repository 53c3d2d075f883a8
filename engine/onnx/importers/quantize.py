"""Quantization: QuantizeLinear and DequantizeLinear.

Symmetric INT8/FP8 quantization maps onto TensorRT's quantize and dequantize layers, per
tensor, per channel (``axis``) or per block (``block_size``, opset 21: the layers' block
scales where the blocks are whole; otherwise the scale is spread over the input). With a
non-zero zero point or a UINT8 type (which TensorRT's Q/DQ layers do not take) the arithmetic
is spelled out with elementwise, unary and cast layers instead. Quantizing to a type TensorRT
lacks (INT4, UINT4, INT2, UINT2, FLOAT8E5M2, ...) ends in the emulated cast of
``importers.cast``.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from engine.onnx.compose import (
    cast,
    constant_like,
    elementwise,
    normalize_axis,
    rank,
    reshape,
    unary,
)
from engine.onnx.context import ImportContext, Node
from engine.onnx.errors import ErrorCode
from engine.onnx.importers.cast import emulated_cast
from engine.onnx.registry import importer
from engine.onnx.tensors import EMULATED_CASTS, TRT_TO_ONNX, trt_dtype
from engine.types import DataType

_LAYER_TYPES = (DataType.INT8, DataType.FP8)
# Ranges of the integer types TensorRT lacks (quantized to emulated or narrowed types).
_INT_RANGES: dict[int, tuple[int, int]] = {TensorProto.INT4: (-8, 7), TensorProto.UINT4: (0, 15),
               TensorProto.INT2: (-2, 1), TensorProto.UINT2: (0, 3),
               TensorProto.INT16: (-32768, 32767), TensorProto.UINT16: (0, 65535)}
_RANGES = {DataType.INT8: (-128, 127), DataType.UINT8: (0, 255), DataType.INT32: None,
           DataType.FP8: (-448.0, 448.0)}


def _axis(node: Node, x, scale) -> int | None:  # noqa: ANN001
    if rank(scale) == 0 or (rank(scale) == 1 and scale.shape[0] == 1):
        return None
    return normalize_axis(node, node.attr("axis", 1), rank(x))


def _zero_point_is_zero(ctx: ImportContext, node: Node) -> bool:
    zp = node.input(2)
    if zp is None:
        return True
    value = ctx.value(zp)
    return value is not None and not np.any(np.asarray(value, np.float64) != 0)


def _along(ctx: ImportContext, t, axis: int | None, r: int):  # noqa: ANN001, ANN202
    """A per-axis vector shaped to broadcast along ``axis`` of a rank-``r`` tensor."""
    if axis is None or rank(t) != 1:
        return t
    dims = [1] * r
    dims[axis] = -1
    return reshape(ctx, t, dims)


def _block(ctx: ImportContext, node: Node, x, scale, axis: int | None) -> int:  # noqa: ANN001
    """The ``block_size`` of block quantization (opset 21), checked against the shapes: the
    scale has the input's rank and shape but along ``axis``, where it has
    ``ceil(dim / block_size)`` entries; 0 without blocks."""
    block = int(node.attr("block_size", 0) or 0)
    if not block:
        return 0
    if block < 0 or axis is None or rank(scale) != rank(x):
        node.fail(ErrorCode.INVALID_NODE, f"block_size {block} needs a positive size and a "
                                          f"scale of the input's rank along an axis")
    if any(d < 0 for d in tuple(x.shape) + tuple(scale.shape)):
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "block quantization needs static shapes")
    want = tuple(-(-d // block) if i == axis else d for i, d in enumerate(x.shape))
    if tuple(scale.shape) != want:
        node.fail(ErrorCode.INVALID_NODE, f"block_size {block} along axis {axis}: the scale "
                                          f"has shape {tuple(scale.shape)}, expected {want}")
    return block


def _spread(ctx: ImportContext, t, x, axis: int | None, block: int):  # noqa: ANN001, ANN202
    """A scale or zero point (FLOAT) laid over ``x``: per axis broadcast along ``axis``, or per
    block each entry repeated ``block`` times along ``axis`` (the last block cut to fit)."""
    if not block:
        return _along(ctx, t, axis, rank(x))
    assert axis is not None
    shape = [int(d) for d in t.shape]
    wide = reshape(ctx, t, shape[:axis + 1] + [1] + shape[axis + 1:])
    copies = np.zeros([1] * (axis + 1) + [block] + [1] * (len(shape) - axis - 1), np.float32)
    wide = elementwise(ctx, wide, ctx.constant(copies), "SUM")  # + 0: broadcast, exact
    full = reshape(ctx, wide, shape[:axis] + [shape[axis] * block] + shape[axis + 1:])
    if shape[axis] * block == x.shape[axis]:
        return full
    extent = [int(d) for d in x.shape]
    return ctx.network.add_slice(full, [0] * len(extent), extent, [1] * len(extent)) \
        .get_output(0)


def _block_shape(x, axis: int, block: int) -> list[int] | None:  # noqa: ANN001
    """The layers' ``block_shape`` for whole blocks; None where the last block is cut."""
    if x.shape[axis] % block:
        return None
    return [block if i == axis else 1 for i in range(rank(x))]


def _target(ctx: ImportContext, node: Node) -> int:
    """The ONNX type QuantizeLinear quantizes to."""
    if node.attr("output_dtype", 0):
        return int(node.attr("output_dtype"))
    zp = node.input(2)
    if zp is None:
        return TensorProto.UINT8
    return ctx.onnx_types.get(zp, TRT_TO_ONNX.get(zp.dtype, TensorProto.UNDEFINED))


def _quantize_emulated(ctx: ImportContext, node: Node, to: int):  # noqa: ANN202
    """QuantizeLinear to a type TensorRT lacks: the arithmetic in FLOAT, then the emulated
    cast (exact: integer targets get integers already in range)."""
    x, scale, zp = node.require(0), node.require(1), node.input(2)
    axis = _axis(node, x, scale)
    block = _block(ctx, node, x, scale, axis)
    s = _spread(ctx, cast(ctx, scale, DataType.FLOAT), x, axis, block)
    q = elementwise(ctx, cast(ctx, x, DataType.FLOAT), s, "DIV")
    bounds = _INT_RANGES.get(to)
    if bounds is not None:
        q = unary(ctx, q, "ROUND")
    if zp is not None:
        q = elementwise(ctx, q, _spread(ctx, cast(ctx, zp, DataType.FLOAT), x, axis, block),
                        "SUM")
    if bounds is not None:
        q = elementwise(ctx, q, constant_like(ctx, bounds[0], q), "MAX")
        q = elementwise(ctx, q, constant_like(ctx, bounds[1], q), "MIN")
    return [emulated_cast(ctx, q, to, bool(node.attr("saturate", 1)))]


@importer("QuantizeLinear", since=10)
def quantize(ctx: ImportContext, node: Node):
    x, scale, zp = node.require(0), node.require(1), node.input(2)
    to = _target(ctx, node)
    if to in EMULATED_CASTS:
        return _quantize_emulated(ctx, node, to)
    out_type = trt_dtype(to, "QuantizeLinear's output type", ctx.warn)
    bounds = _INT_RANGES.get(to, _RANGES.get(out_type))
    if out_type not in _RANGES:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DATATYPE, f"quantizing to {out_type.name}")
    axis = _axis(node, x, scale)
    block = _block(ctx, node, x, scale, axis)
    whole = None if not block else _block_shape(x, axis, block)  # type: ignore[arg-type]
    if out_type in _LAYER_TYPES and _zero_point_is_zero(ctx, node) and \
            scale.dtype == x.dtype and (not block or whole is not None):
        layer = ctx.network.add_quantize(x, scale, out_type)
        if axis is not None:
            layer.axis = axis
        if whole is not None:
            layer.set_block_shape(whole)
        return [layer.get_output(0)]
    xf = cast(ctx, x, DataType.FLOAT)
    s = _spread(ctx, cast(ctx, scale, DataType.FLOAT), x, axis, block)
    q = elementwise(ctx, xf, s, "DIV")
    if out_type != DataType.FP8:
        q = unary(ctx, q, "ROUND")
    if zp is not None:
        q = elementwise(ctx, q, _spread(ctx, cast(ctx, zp, DataType.FLOAT), x, axis, block),
                        "SUM")
    if bounds is not None:
        q = elementwise(ctx, q, constant_like(ctx, bounds[0], q), "MAX")
        q = elementwise(ctx, q, constant_like(ctx, bounds[1], q), "MIN")
    return [cast(ctx, q, out_type)]


@importer("DequantizeLinear", since=10)
def dequantize(ctx: ImportContext, node: Node):
    x, scale, zp = node.require(0), node.require(1), node.input(2)
    out_type = scale.dtype
    if node.attr("output_dtype", 0):
        out_type = trt_dtype(int(node.attr("output_dtype")), "output_dtype")
    axis = _axis(node, x, scale)
    block = _block(ctx, node, x, scale, axis)
    whole = None if not block else _block_shape(x, axis, block)  # type: ignore[arg-type]
    if x.dtype in _LAYER_TYPES and _zero_point_is_zero(ctx, node) and \
            (not block or whole is not None):
        layer = ctx.network.add_dequantize(x, scale, out_type)
        if axis is not None:
            layer.axis = axis
        if whole is not None:
            layer.set_block_shape(whole)
        return [layer.get_output(0)]
    xf = cast(ctx, x, DataType.FLOAT)
    if zp is not None:
        xf = elementwise(ctx, xf, _spread(ctx, cast(ctx, zp, DataType.FLOAT), x, axis, block),
                         "SUB")
    s = _spread(ctx, cast(ctx, scale, DataType.FLOAT), x, axis, block)
    return [cast(ctx, elementwise(ctx, xf, s, "PROD"), out_type)]
