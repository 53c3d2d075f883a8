"""Shape manipulation: Shape, Size, Reshape, Flatten, (Un)Squeeze, Transpose, Concat, Split,
Slice, Expand, Tile, Pad, DepthToSpace, SpaceToDepth — shuffle, slice, concatenation and
shape layers, with shape-tensor arithmetic where dims are dynamic."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import engine as trt
from engine.onnx.compose import (
    cast,
    concat,
    elementwise,
    flatten_2d,
    gather,
    int64_vector,
    normalize_axis,
    prepend_ones,
    rank,
    reduce,
    reshape,
    shape_of,
    squeeze,
    transpose,
    unsqueeze,
)
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer
from engine.types import DataType, nptype

if TYPE_CHECKING:
    from engine.network.tensor import ITensor


def _static(node: Node, x, what: str) -> tuple[int, ...]:  # noqa: ANN001
    shape = tuple(x.shape)
    if any(d < 0 for d in shape):
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                  f"{what} needs the input's shape at build time; it is {shape}")
    return shape


@importer("Shape", since=1)
def shape(ctx: ImportContext, node: Node):
    x = node.require(0)
    r = rank(x)
    start, end = node.attr("start", 0), node.attr("end", r)
    start, end = (max(0, min(r, s + r if s < 0 else s)) for s in (start, end))
    full = shape_of(ctx, x)
    if (start, end) == (0, r):
        return [full if ctx.value(full) is None else ctx.constant(ctx.value(full))]
    return [gather(ctx, full, list(range(start, max(start, end))))]


@importer("Size", since=1)
def size(ctx: ImportContext, node: Node):
    x = node.require(0)
    dims = tuple(x.shape)
    if all(d >= 0 for d in dims):
        return [ctx.constant(np.array(int(np.prod(dims, dtype=np.int64)), np.int64))]
    return [reduce(ctx, shape_of(ctx, x), "PROD", [0], False)]


@importer("Reshape", since=5)
def reshape_node(ctx: ImportContext, node: Node):
    x, dims = node.require(0), node.require(1)
    allow_zero = bool(node.attr("allowzero", 0))
    value = ctx.value(dims)
    if value is not None:
        target = [int(d) for d in value.reshape(-1)]
        if allow_zero:
            return [reshape(ctx, x, target)]
        source = tuple(x.shape)
        resolved = [source[i] if d == 0 and i < len(source) and source[i] >= 0 else d
                    for i, d in enumerate(target)]
        return [reshape(ctx, x, resolved, zero_is_placeholder=0 in resolved)]
    return [reshape(ctx, x, cast(ctx, dims, DataType.INT64), zero_is_placeholder=not allow_zero)]


@importer("Reshape", since=1)
def reshape_attribute(ctx: ImportContext, node: Node):
    return [reshape(ctx, node.require(0), node.attr("shape", []), zero_is_placeholder=True)]


@importer("Flatten", since=1)
def flatten(ctx: ImportContext, node: Node):
    x = node.require(0)
    r = rank(x)
    axis = node.attr("axis", 1)
    if not -r <= axis <= r:
        node.fail(ErrorCode.INVALID_NODE, f"axis {axis} out of range for rank {r}")
    return [flatten_2d(ctx, x, axis + r if axis < 0 else axis)]


def _axes_of(ctx: ImportContext, node: Node, since: int) -> list[int] | None:
    if node.opset >= since:
        if node.input(1) is None:
            return None
        return [int(a) for a in ctx.require_value(node, 1, "axes").reshape(-1)]
    axes = node.attr("axes")
    return None if axes is None else list(axes)


@importer("Squeeze", since=1)
def squeeze_node(ctx: ImportContext, node: Node):
    x = node.require(0)
    r = rank(x)
    axes = _axes_of(ctx, node, 13)
    if axes is None:
        dims = tuple(x.shape)
        if any(d < 0 for d in dims):
            node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                      "Squeeze without axes needs every dim known at build time")
        axes = [i for i, d in enumerate(dims) if d == 1]
    axes = sorted({normalize_axis(node, a, r) for a in axes})
    for a in axes:
        if x.shape[a] > 1:
            node.fail(ErrorCode.INVALID_NODE, f"cannot squeeze axis {a} of size {x.shape[a]}")
    return [_same_elements(ctx, x, squeeze(ctx, x, axes))]


@importer("Unsqueeze", since=1)
def unsqueeze_node(ctx: ImportContext, node: Node):
    x = node.require(0)
    axes = _axes_of(ctx, node, 13) or []
    out_rank = rank(x) + len(axes)
    normalized = sorted({normalize_axis(node, a, out_rank) for a in axes})
    if len(normalized) != len(axes):
        node.fail(ErrorCode.INVALID_NODE, f"repeated axes {axes}")
    return [_same_elements(ctx, x, unsqueeze(ctx, x, normalized))]


def _same_elements(ctx: ImportContext, x, out):  # noqa: ANN001, ANN202
    """``out`` (``x`` reshaped) with what is known of ``x``'s elements, for shape vectors."""
    elements = ctx.elements(x)
    if elements is None or rank(out) > 1 or ctx.value(out) is not None:
        return out
    return ctx.note_elements(out, elements)


@importer("Transpose", since=1)
def transpose_node(ctx: ImportContext, node: Node):
    x = node.require(0)
    perm = node.attr("perm") or list(reversed(range(rank(x))))
    if sorted(perm) != list(range(rank(x))):
        node.fail(ErrorCode.INVALID_NODE, f"perm {perm} is not a permutation of the "
                                          f"{rank(x)} axes")
    return [transpose(ctx, x, perm)]


@importer("Concat", since=1)
def concat_node(ctx: ImportContext, node: Node):
    inputs = [t for t in node.inputs if t is not None]
    r = rank(inputs[0])
    axis = normalize_axis(node, node.attr("axis", 1 if node.opset < 4 else 0), r)
    if len(inputs) == 1:
        return [ctx.network.add_identity(inputs[0]).get_output(0)]
    return [concat(ctx, inputs, axis)]


def slice_static(ctx: ImportContext, x, start, size, stride):  # noqa: ANN001, ANN201
    return ctx.network.add_slice(x, trt.Dims(start), trt.Dims(size), trt.Dims(stride)) \
        .get_output(0)


def slice_axis(ctx: ImportContext, node: Node, x, axis: int, start: int, length: int):  # noqa: ANN001, ANN201
    """``x[..., start:start+length, ...]`` along ``axis``; other dims may be dynamic."""
    r = rank(x)
    starts = [0] * r
    starts[axis] = start
    dims = list(x.shape)
    dims[axis] = length
    if all(d >= 0 for d in dims):
        return slice_static(ctx, x, starts, dims, [1] * r)
    layer = ctx.network.add_slice(x, trt.Dims(starts), trt.Dims([0] * r), trt.Dims([1] * r))
    sizes = shape_of(ctx, x)
    parts = [int64_vector(ctx, [length]) if i == axis else gather(ctx, sizes, [i])
             for i in range(r)]
    layer.set_input(2, concat(ctx, parts))
    return layer.get_output(0)


@importer("Split", since=1)
def split(ctx: ImportContext, node: Node):
    x = node.require(0)
    r = rank(x)
    axis = normalize_axis(node, node.attr("axis", 0), r)
    total = x.shape[axis]
    if node.opset >= 13 and node.input(1) is not None:
        sizes = [int(s) for s in ctx.require_value(node, 1, "split").reshape(-1)]
    elif node.opset < 13 and node.attr("split"):
        sizes = list(node.attr("split"))
    elif node.opset < 13 and node.input(1) is not None:
        sizes = [int(s) for s in ctx.require_value(node, 1, "split").reshape(-1)]
    else:
        if total < 0:
            node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                      f"an even Split needs the size of axis {axis} at build time")
        count = node.attr("num_outputs", node.num_outputs)
        chunk = -(-total // count)
        sizes = [min(chunk, total - i * chunk) for i in range(count)]
    if total >= 0 and sum(sizes) != total:
        node.fail(ErrorCode.INVALID_NODE, f"split sizes {sizes} do not add up to {total}")
    outputs, offset = [], 0
    for s in sizes:
        outputs.append(slice_axis(ctx, node, x, axis, offset, s))
        offset += s
    return outputs


def _slice_params(ctx: ImportContext, node: Node):  # noqa: ANN202
    """starts, ends (lists of ints, or run-time tensors), axes and steps (lists of ints)."""
    if node.opset < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        axes, steps = node.attr("axes") or list(range(len(starts))), [1] * len(starts)
        return list(starts), list(ends), list(axes), steps
    bounds = []
    for index in (1, 2):
        value = ctx.value(node.require(index))
        bounds.append(node.require(index) if value is None else
                      [int(v) for v in value.reshape(-1)])
    count = len(bounds[0]) if isinstance(bounds[0], list) else node.require(1).shape[0]
    if count < 0 and node.input(3) is None:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "Slice needs the length of starts")
    axes = [int(v) for v in ctx.require_value(node, 3, "axes").reshape(-1)] \
        if node.input(3) is not None else list(range(count))
    steps = [int(v) for v in ctx.require_value(node, 4, "steps").reshape(-1)] \
        if node.input(4) is not None else [1] * len(axes)
    return bounds[0], bounds[1], axes, steps


@importer("Slice", since=1)
def slice_node(ctx: ImportContext, node: Node):
    x = node.require(0)
    r = rank(x)
    starts, ends, axes, steps = _slice_params(ctx, node)
    axes = [normalize_axis(node, a, r) for a in axes]
    if len(set(axes)) != len(axes):
        node.fail(ErrorCode.INVALID_NODE, f"repeated axes {axes}")
    if 0 in steps:
        node.fail(ErrorCode.INVALID_NODE, "slice step 0")
    dims = list(x.shape)
    if not isinstance(starts, list) or not isinstance(ends, list) or \
            any(dims[a] < 0 for a in axes):
        return [_slice_at_run_time(ctx, x, starts, ends, axes, steps)]
    start, size, stride = [0] * r, list(dims), [1] * r
    for s, e, a, st in zip(starts, ends, axes, steps):
        begin, stop, step = slice(s, e, st).indices(dims[a])
        count = max(0, -(-(stop - begin) // step))
        start[a], size[a], stride[a] = (begin if count else 0), count, step
    if any(d < 0 for d in size):
        layer = ctx.network.add_slice(x, trt.Dims(start), trt.Dims([0] * r), trt.Dims(stride))
        sizes = shape_of(ctx, x)
        parts = [int64_vector(ctx, [size[i]]) if size[i] >= 0 else gather(ctx, sizes, [i])
                 for i in range(r)]
        layer.set_input(2, concat(ctx, parts))
        return [layer.get_output(0)]
    return [slice_static(ctx, x, start, size, stride)]


def _vector(ctx: ImportContext, values) -> ITensor:  # noqa: ANN001
    """``values`` (ints, or a tensor) as a 1-D INT64 tensor."""
    if isinstance(values, list):
        return int64_vector(ctx, values)
    return cast(ctx, values if rank(values) == 1 else reshape(ctx, values, [-1]), DataType.INT64)


def _slice_at_run_time(ctx: ImportContext, x, starts, ends, axes, steps):  # noqa: ANN001, ANN202
    """ONNX Slice with run-time starts, ends or dims, clamped as ``slice.indices`` does, with
    shape-tensor arithmetic over the sliced axes (steps and axes are known)."""
    dims = gather(ctx, shape_of(ctx, x), axes)
    # Per axis the lowest and highest valid index: [0, d] stepping forward, [-1, d-1] back.
    low = int64_vector(ctx, [0 if st > 0 else -1 for st in steps])
    high = elementwise(ctx, dims, low, "SUM")

    def clamped(bound):  # noqa: ANN001, ANN202
        bound = elementwise(ctx, _vector(ctx, bound), dims, "MIN")  # ends may be INT64_MAX
        below = elementwise(ctx, bound, int64_vector(ctx, [0] * len(axes)), "LESS")
        bound = ctx.network.add_select(below, elementwise(ctx, bound, dims, "SUM"), bound) \
            .get_output(0)
        return elementwise(ctx, elementwise(ctx, bound, high, "MIN"), low, "MAX")

    begin, stop = clamped(starts), clamped(ends)
    stride = int64_vector(ctx, steps)
    # count = max(ceil((stop - begin) / step), 0) = max(-floor((begin - stop) / step), 0)
    floored = elementwise(ctx, elementwise(ctx, begin, stop, "SUB"), stride, "FLOOR_DIV")
    zeros = int64_vector(ctx, [0] * len(axes))
    count = elementwise(ctx, elementwise(ctx, zeros, floored, "SUB"), zeros, "MAX")
    layer = ctx.network.add_slice(x, trt.Dims([0] * len(axes)), trt.Dims([0] * len(axes)),
                                  trt.Dims(steps))
    layer.axes = trt.Dims(axes)
    layer.set_input(1, begin)
    layer.set_input(2, count)
    return layer.get_output(0)


def broadcast_to(ctx: ImportContext, x, out_shape):  # noqa: ANN001, ANN201
    """``x`` broadcast to the static ``out_shape`` (elementwise with a zero constant)."""
    x = prepend_ones(ctx, x, len(out_shape) - rank(x))
    if tuple(x.shape) == tuple(out_shape):
        return ctx.network.add_identity(x).get_output(0)
    zeros = ctx.constant(np.zeros(out_shape, nptype(x.dtype)))
    return elementwise(ctx, x, zeros, "OR" if x.dtype == DataType.BOOL else "SUM")


@importer("Expand", since=8)
def expand(ctx: ImportContext, node: Node):
    x, target = node.require(0), node.require(1)
    value = ctx.value(target)
    dims = tuple(x.shape)
    if value is not None and all(d >= 0 for d in dims):
        requested = tuple(int(v) for v in value.reshape(-1))
        try:
            out_shape = np.broadcast_shapes(dims, requested)
        except ValueError as exc:
            node.fail(ErrorCode.INVALID_NODE, f"cannot expand {dims} to {requested}: {exc}")
        return [broadcast_to(ctx, x, out_shape)]
    length = 1 if rank(target) == 0 else target.shape[0]
    if length < 0:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                  "Expand needs the length of its shape input at build time")
    out_rank = max(rank(x), length)
    x = prepend_ones(ctx, x, out_rank - rank(x))
    wanted = _vector(ctx, value.reshape(-1).tolist() if value is not None else target)
    if length < out_rank:
        wanted = concat(ctx, [int64_vector(ctx, [1] * (out_rank - length)), wanted])
    # A slice of stride 0 along the dims of 1 that grow, as onnx-tensorrt expands.
    sizes = shape_of(ctx, x)
    ones = int64_vector(ctx, [1] * out_rank)
    grows = elementwise(ctx, sizes, ones, "EQUAL")
    out_sizes = output_of(ctx.network.add_select(grows, wanted, sizes))
    strides = output_of(ctx.network.add_select(grows, int64_vector(ctx, [0] * out_rank), ones))
    layer = ctx.network.add_slice(x, trt.Dims([0] * out_rank), trt.Dims([0] * out_rank),
                                  trt.Dims([1] * out_rank))
    layer.set_input(2, out_sizes)
    layer.set_input(3, strides)
    return [layer.get_output(0)]


@importer("Tile", since=6)
def tile(ctx: ImportContext, node: Node):
    x = node.require(0)
    value = ctx.value(node.require(1))
    dims = tuple(x.shape)
    if value is not None and len(value.reshape(-1)) != len(dims):
        node.fail(ErrorCode.INVALID_NODE, f"{value.size} repeats for rank {len(dims)}")
    if value is None or any(d < 0 for d in dims):
        # The input read round and round: a WRAP slice of the repeated size.
        r = len(dims)
        repeat_vector = _vector(ctx, value.reshape(-1).tolist() if value is not None else
                                node.require(1))
        layer = ctx.network.add_slice(x, trt.Dims([0] * r), trt.Dims([0] * r),
                                      trt.Dims([1] * r))
        layer.mode = trt.SampleMode.WRAP
        layer.set_input(2, elementwise(ctx, shape_of(ctx, x), repeat_vector, "PROD"))
        return [layer.get_output(0)]
    repeats = [int(v) for v in value.reshape(-1)]
    interleaved = [v for d in dims for v in (1, d)]
    wide = reshape(ctx, x, interleaved)
    target = [v for rep, d in zip(repeats, dims) for v in (rep, d)]
    tiled = broadcast_to(ctx, wide, target)
    return [reshape(ctx, tiled, [rep * d for rep, d in zip(repeats, dims)])]


_PAD_MODES = {"constant": "FILL", "reflect": "REFLECT", "edge": "CLAMP", "wrap": "WRAP"}


@importer("Pad", since=1)
def pad(ctx: ImportContext, node: Node):
    x = node.require(0)
    r = rank(x)
    mode = node.attr("mode", "constant")
    if mode not in _PAD_MODES:
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"mode '{mode}'")
    pads: list[int] | ITensor
    if node.opset < 11:
        pads = list(node.attr("pads" if node.opset >= 2 else "paddings", []))
        value = ctx.constant(np.array(node.attr("value", 0.0), nptype(x.dtype)))
    else:
        known = ctx.value(node.require(1))
        pads = node.require(1) if known is None else [int(v) for v in known.reshape(-1)]
        given = node.input(2)
        value = cast(ctx, given, x.dtype) if given is not None else \
            ctx.constant(np.array(0, nptype(x.dtype)))
    axes = list(range(r))
    if node.opset >= 18 and node.input(3) is not None:
        axes = [normalize_axis(node, int(a), r)
                for a in ctx.require_value(node, 3, "axes").reshape(-1)]
    count = len(pads) if isinstance(pads, list) else \
        (pads.shape[0] if rank(pads) == 1 else -1)
    if count != 2 * len(axes):
        node.fail(ErrorCode.INVALID_NODE, f"{count} pads for {len(axes)} axes")
    dims = tuple(x.shape)
    if isinstance(pads, list) and all(d >= 0 for d in dims):
        before, after = [0] * r, [0] * r
        for i, a in enumerate(axes):
            before[a], after[a] = pads[i], pads[i + len(axes)]
        size = [d + b + a for d, b, a in zip(dims, before, after)]
        layer = ctx.network.add_slice(x, trt.Dims([-b for b in before]), trt.Dims(size),
                                      trt.Dims([1] * r))
    else:
        # Over the padded axes: start = -before, size = dim + before + after.
        k = len(axes)
        pad_vector = _vector(ctx, pads)
        low = gather(ctx, pad_vector, list(range(k)))
        high = gather(ctx, pad_vector, list(range(k, 2 * k)))
        padded = elementwise(ctx, gather(ctx, shape_of(ctx, x), axes),
                             elementwise(ctx, low, high, "SUM"), "SUM")
        layer = ctx.network.add_slice(x, trt.Dims([0] * k), trt.Dims([0] * k),
                                      trt.Dims([1] * k))
        layer.axes = trt.Dims(axes)
        layer.set_input(1, elementwise(ctx, int64_vector(ctx, [0] * k), low, "SUB"))
        layer.set_input(2, padded)
    layer.mode = trt.SampleMode.__members__[_PAD_MODES[mode]]
    if mode == "constant":
        if rank(value) != 0:
            value = reshape(ctx, value, [])
        layer.set_input(4, value)
    return [layer.get_output(0)]


@importer("DepthToSpace", since=1)
def depth_to_space(ctx: ImportContext, node: Node):
    x = node.require(0)
    n, c, h, w = _static(node, x, "DepthToSpace")
    b = int(node.attr("blocksize"))
    if node.attr("mode", "DCR") == "DCR":
        t = reshape(ctx, x, [n, b, b, c // (b * b), h, w])
        t = transpose(ctx, t, [0, 3, 4, 1, 5, 2])
    else:
        t = reshape(ctx, x, [n, c // (b * b), b, b, h, w])
        t = transpose(ctx, t, [0, 1, 4, 2, 5, 3])
    return [reshape(ctx, t, [n, c // (b * b), h * b, w * b])]


@importer("SpaceToDepth", since=1)
def space_to_depth(ctx: ImportContext, node: Node):
    x = node.require(0)
    n, c, h, w = _static(node, x, "SpaceToDepth")
    b = int(node.attr("blocksize"))
    t = reshape(ctx, x, [n, c, h // b, b, w // b, b])
    if node.attr("mode", "DCR") == "DCR":  # output channel (row offset, column offset, c)
        t = transpose(ctx, t, [0, 3, 5, 1, 2, 4])
    else:  # CRD: output channel (c, row offset, column offset), DepthToSpace CRD's inverse
        t = transpose(ctx, t, [0, 1, 3, 5, 2, 4])
    return [reshape(ctx, t, [n, c * b * b, h // b, w // b])]
