"""Indexing: Gather*, Scatter*, OneHot, NonZero, TopK, Trilu, ReverseSequence, TensorScatter."""

from __future__ import annotations

import numpy as np

import engine as trt
from engine.onnx.compose import (
    broadcast,
    cast,
    constant_like,
    elementwise,
    gather,
    gathered,
    normalize_axis,
    rank,
    reshape,
    shape_of,
)
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer
from engine.types import DataType, nptype


def _wrap_negative(ctx: ImportContext, indices, x, axis: int):  # noqa: ANN001, ANN202
    """Indices with negative entries counted from the end of ``x``'s ``axis``."""
    value = ctx.value(indices)
    n = x.shape[axis]
    if value is not None and n >= 0:
        return ctx.constant(np.where(value < 0, value + n, value).astype(value.dtype))
    if n >= 0:
        size = constant_like(ctx, n, indices)
    else:
        size = cast(ctx, gather(ctx, shape_of(ctx, x), [axis]), indices.dtype)
        size = reshape(ctx, size, [1] * rank(indices)) if rank(indices) else reshape(ctx, size, [])
    negative = elementwise(ctx, indices, constant_like(ctx, 0, indices), "LESS")
    shifted = elementwise(ctx, indices, size, "SUM")
    negative, shifted, indices = broadcast(ctx, negative, shifted, indices)
    return ctx.network.add_select(negative, shifted, indices).get_output(0)


@importer("Gather", since=1)
def gather_node(ctx: ImportContext, node: Node):
    x, indices = node.require(0), node.require(1)
    axis = normalize_axis(node, node.attr("axis", 0), rank(x))
    indices = _wrap_negative(ctx, indices, x, axis)
    return [gathered(ctx, x, indices, axis)]


@importer("GatherElements", since=11)
def gather_elements(ctx: ImportContext, node: Node):
    x, indices = node.require(0), node.require(1)
    axis = normalize_axis(node, node.attr("axis", 0), rank(x))
    indices = _wrap_negative(ctx, indices, x, axis)
    layer = ctx.network.add_gather_v2(x, indices, trt.GatherMode.ELEMENT)
    layer.axis = axis
    return [layer.get_output(0)]


@importer("GatherND", since=11)
def gather_nd(ctx: ImportContext, node: Node):
    x, indices = node.require(0), node.require(1)
    layer = ctx.network.add_gather_v2(x, indices, trt.GatherMode.ND)
    layer.num_elementwise_dims = int(node.attr("batch_dims", 0))
    return [layer.get_output(0)]


_REDUCTIONS = {"none": trt.ScatterReduction.NONE, "add": trt.ScatterReduction.SUM,
               "mul": trt.ScatterReduction.PROD, "max": trt.ScatterReduction.MAX,
               "min": trt.ScatterReduction.MIN}


def _scatter(mode: str):  # noqa: ANN202
    def run(ctx: ImportContext, node: Node):  # noqa: ANN202
        data, indices, updates = node.require(0), node.require(1), node.require(2)
        reduction = _REDUCTIONS.get(node.attr("reduction", "none"))
        if reduction is None:
            node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR,
                      f"reduction='{node.attr('reduction')}' (one of {sorted(_REDUCTIONS)})")
        layer = ctx.network.add_scatter(data, indices, updates, trt.ScatterMode.__members__[mode])
        layer.reduction = reduction
        if mode == "ELEMENT":
            axis = normalize_axis(node, node.attr("axis", 0), rank(data))
            layer.axis = axis
        return [layer.get_output(0)]
    return run


importer("Scatter", since=9)(_scatter("ELEMENT"))
importer("ScatterElements", since=11)(_scatter("ELEMENT"))
importer("ScatterND", since=11)(_scatter("ND"))


@importer("OneHot", since=9)
def one_hot(ctx: ImportContext, node: Node):
    indices, depth, values = node.require(0), node.require(1), node.require(2)
    axis = node.attr("axis", -1)
    out_rank = rank(indices) + 1
    axis = normalize_axis(node, axis, out_rank)
    depth_value = ctx.value(depth)
    if depth_value is not None:
        d = int(np.asarray(depth_value).reshape(-1)[0])
        depth = ctx.constant(np.array(d, np.int32))
        wrapped = indices
        if indices.dtype.is_float:
            wrapped = cast(ctx, indices, DataType.INT64)
        negative = elementwise(ctx, wrapped, constant_like(ctx, 0, wrapped), "LESS")
        shifted = elementwise(ctx, wrapped, constant_like(ctx, d, wrapped), "SUM")
        negative, shifted, wrapped = broadcast(ctx, negative, shifted, wrapped)
        indices = output_of(ctx.network.add_select(negative, shifted, wrapped))
    else:
        depth = reshape(ctx, cast(ctx, depth, DataType.INT32), [])
        if indices.dtype.is_float:
            indices = cast(ctx, indices, DataType.INT64)
    layer = ctx.network.add_one_hot(indices, values, depth, axis)
    return [layer.get_output(0)]


@importer("NonZero", since=9)
def non_zero(ctx: ImportContext, node: Node):
    out = output_of(ctx.network.add_non_zero(node.require(0)))
    return [cast(ctx, out, DataType.INT64)]


@importer("TopK", since=1)
def top_k(ctx: ImportContext, node: Node):
    x = node.require(0)
    axis = normalize_axis(node, node.attr("axis", -1), rank(x))
    largest = bool(node.attr("largest", 1))
    if node.opset < 10:
        k = int(node.attr("k"))
    else:
        k = int(np.asarray(ctx.require_value(node, 1, "k")).reshape(-1)[0])
    op = trt.TopKOperation.MAX if largest else trt.TopKOperation.MIN
    layer = ctx.network.add_topk(x, op, k, 1 << axis)
    return [layer.get_output(0), cast(ctx, output_of(layer, 1), DataType.INT64)]


@importer("Trilu", since=14)
def trilu(ctx: ImportContext, node: Node):
    x = node.require(0)
    k = 0 if node.input(1) is None else int(ctx.require_value(node, 1, "k").reshape(-1)[0])
    rows, cols = tuple(x.shape)[-2:]
    if rows < 0 or cols < 0:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "Trilu needs static matrix dims")
    ones = np.ones((rows, cols), np.bool_)
    mask = np.triu(ones, k) if node.attr("upper", 1) else np.tril(ones, k)
    mask_t = ctx.constant(mask.reshape((1,) * (rank(x) - 2) + mask.shape))
    zeros = ctx.constant(np.zeros((1,) * rank(x), nptype(x.dtype)))
    cond, a, b = broadcast(ctx, mask_t, x, zeros)
    return [ctx.network.add_select(cond, a, b).get_output(0)]


@importer("Compress", since=9)
def compress(ctx: ImportContext, node: Node):
    """Compress with a condition known at build time: a gather of the selected indices."""
    x = node.require(0)
    condition = np.asarray(ctx.require_value(node, 1, "condition")).reshape(-1).astype(bool)
    axis = node.attr("axis")
    if axis is None:
        x = reshape(ctx, x, [-1])
        axis = 0
    axis = normalize_axis(node, int(axis), rank(x))
    length = int(x.shape[axis])
    picked = np.nonzero(condition[:length] if length >= 0 else condition)[0].astype(np.int64)
    return [ctx.network.add_gather(x, ctx.constant(picked), axis).get_output(0)]


@importer("ReverseSequence", since=10)
def reverse_sequence(ctx: ImportContext, node: Node):
    """An ``IReverseSequenceLayer`` (the lengths may be computed at run time)."""
    x, lens = node.require(0), node.require(1)
    if rank(x) < 2:
        node.fail(ErrorCode.INVALID_NODE, f"ReverseSequence of a rank-{rank(x)} input (rank 2 "
                                          f"or more)")
    if rank(lens) != 1:
        node.fail(ErrorCode.INVALID_NODE, f"sequence_lens of rank {rank(lens)} (1-D)")
    layer = ctx.network.add_reverse_sequence(x, lens)
    layer.batch_axis = normalize_axis(node, int(node.attr("batch_axis", 1)), rank(x))
    layer.sequence_axis = normalize_axis(node, int(node.attr("time_axis", 0)), rank(x))
    return [output_of(layer)]


@importer("TensorScatter", since=24)
def tensor_scatter(ctx: ImportContext, node: Node):
    """A key/value cache update: ``update``'s positions along ``axis`` written into
    ``past_cache`` from each batch row's ``write_indices`` on (wrapping around the cache with
    mode "circular"), as a ScatterElements of computed indices."""
    from engine.onnx.compose import cast, constant_like, elementwise, reshape

    cache, update, write = node.require(0), node.require(1), node.input(2)
    mode = node.attr("mode", "linear")
    if mode not in ("linear", "circular"):
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"mode '{mode}' (linear or circular)")
    r = rank(cache)
    axis = normalize_axis(node, node.attr("axis", -2), r)
    if axis == 0:
        node.fail(ErrorCode.INVALID_NODE, "TensorScatter's axis cannot be the batch axis")
    length = int(update.shape[axis])
    if length < 0 or int(cache.shape[axis]) < 0:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "TensorScatter needs static sequence "
                                                      "lengths (update and cache along axis)")
    steps = ctx.constant(np.arange(length, dtype=np.int64).reshape(
        [1] * axis + [length] + [1] * (r - axis - 1)))
    if write is None:
        index = steps
    else:
        starts = reshape(ctx, cast(ctx, write, trt.DataType.INT64), [-1] + [1] * (r - 1))
        index = elementwise(ctx, starts, steps, "SUM")
    if mode == "circular":
        size = constant_like(ctx, int(cache.shape[axis]), index)
        index = elementwise(ctx, index, elementwise(
            ctx, elementwise(ctx, index, size, "FLOOR_DIV"), size, "PROD"), "SUB")
    # zeros of the update's shape (through BOOL: no float value, NaN included, reaches an
    # integer cast), so the indices take that shape, as ScatterElements needs
    flags = cast(ctx, cast(ctx, update, trt.DataType.BOOL), trt.DataType.INT64)
    zeros = elementwise(ctx, flags, constant_like(ctx, 0, flags), "PROD")
    index = elementwise(ctx, zeros, index, "SUM")
    layer = ctx.network.add_scatter(cache, index, update, trt.ScatterMode.ELEMENT)
    layer.axis = axis
    return [layer.get_output(0)]
