"""Pooling: MaxPool, AveragePool, LpPool, the global pools and LRN."""

from __future__ import annotations

from typing import Literal

import numpy as np

import engine as trt
from engine.onnx.compose import constant_like, elementwise, rank, reduce, squeeze, unary, unsqueeze
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer


def _pool(ctx: ImportContext, node: Node, x, kind: str):  # noqa: ANN001, ANN202
    spatial = rank(x) - 2
    one_d = spatial == 1
    kernel = list(node.attr("kernel_shape"))
    strides = list(node.attr("strides", [1] * spatial))
    dilations = list(node.attr("dilations", [1] * spatial))
    if any(d != 1 for d in dilations):
        return _dilated_pool(ctx, node, x, kind, kernel, strides, dilations)
    pads = list(node.attr("pads", [0] * 2 * spatial))
    auto = node.attr("auto_pad", "NOTSET")
    ceil_mode = bool(node.attr("ceil_mode", 0))
    if one_d:
        x = unsqueeze(ctx, x, [rank(x)])
        kernel, strides = kernel + [1], strides + [1]
        pads = pads[:1] + [0] + pads[1:] + [0]
    n = len(kernel)
    layer = ctx.network.add_pooling_nd(x, trt.PoolingType.__members__[kind], trt.Dims(kernel))
    layer.stride_nd = trt.Dims(strides)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        layer.padding_mode = trt.PaddingMode.__members__[auto]
    elif auto == "VALID":
        pass
    elif auto == "NOTSET":
        post = pads[n:]
        if ceil_mode:
            post = _ceil_padding(node, x, kernel, strides, pads[:n], post)
        layer.pre_padding = trt.Dims(pads[:n])
        layer.post_padding = trt.Dims(post)
    else:
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"auto_pad '{auto}'")
    if kind == "AVERAGE":
        layer.average_count_excludes_padding = not bool(node.attr("count_include_pad", 0))
    out = output_of(layer)
    return squeeze(ctx, out, [rank(out) - 1]) if one_d else out


def _dilated_geometry(node: Node, dims: list[int], kernel: list[int], strides: list[int],
                      dilations: list[int]) -> tuple[list[int], list[int], list[int]]:
    """``(pre, post, out)`` per spatial axis of a dilated window, as ONNX's pooling."""
    spatial = len(dims)
    auto = node.attr("auto_pad", "NOTSET")
    pads = list(node.attr("pads", [0] * 2 * spatial))
    pre, post, outs = [], [], []
    for i, (d, k, s, dl) in enumerate(zip(dims, kernel, strides, dilations)):
        span = (k - 1) * dl + 1
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out = -(-d // s)
            total = max(0, (out - 1) * s + span - d)
            a = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pre.append(a)
            post.append(total - a)
        elif auto == "VALID":
            out = (d - span) // s + 1
            pre.append(0)
            post.append(0)
        elif auto == "NOTSET":
            a, b = pads[i], pads[spatial + i]
            pre.append(a)
            post.append(b)
            if node.attr("ceil_mode", 0):
                out = -(-(d + a + b - span) // s) + 1
                if (out - 1) * s >= d + a:
                    out -= 1
            else:
                out = (d + a + b - span) // s + 1
        else:
            node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"auto_pad '{auto}'")
        if out < 1:
            node.fail(ErrorCode.INVALID_NODE, f"pooling output would be empty along spatial "
                                              f"axis {i}")
        outs.append(out)
    return pre, post, outs


def _dilated_pool(ctx: ImportContext, node: Node, x, kind: str, kernel, strides,  # noqa: ANN001
                  dilations):  # noqa: ANN001, ANN202
    """A dilated window (TensorRT's pooling has none) as one strided slice per window
    offset, reading outside the input as the fill (-inf for MAX, 0 otherwise), folded by MAX
    or SUM; AVERAGE divides by the count of the window's positions inside the input (inside
    the input and its explicit pads with count_include_pad)."""
    dims = list(x.shape)
    if any(d < 0 for d in dims):
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "dilated pooling needs static dims")
    if any(k < 1 for k in kernel):
        node.fail(ErrorCode.INVALID_NODE, f"kernel_shape {list(kernel)} must be positive")
    spatial = len(kernel)
    lead = dims[:-spatial]
    pre, post, outs = _dilated_geometry(node, dims[-spatial:], kernel, strides, dilations)
    fill = ctx.constant(np.array([-np.inf if kind == "MAX" else 0.0], trt.nptype(x.dtype)))
    total = None
    for offset in np.ndindex(*kernel):
        start = [0] * len(lead) + [j * dl - a for j, dl, a in zip(offset, dilations, pre)]
        layer = ctx.network.add_slice(x, trt.Dims(start), trt.Dims(lead + outs),
                                      trt.Dims([1] * len(lead) + list(strides)))
        layer.mode = trt.SampleMode.FILL
        layer.set_input(4, fill)
        part = output_of(layer)
        total = part if total is None else elementwise(ctx, total, part,
                                                       "MAX" if kind == "MAX" else "SUM")
    assert total is not None  # the kernel has at least one offset
    if kind != "AVERAGE":
        return total
    include_pad = bool(node.attr("count_include_pad", 0))
    count = np.zeros(outs)
    for offset in np.ndindex(*kernel):
        inside = np.ones(outs, bool)
        for axis, (j, dl, a, b, s, d) in enumerate(zip(offset, dilations, pre, post, strides,
                                                       dims[-spatial:])):
            pos = np.arange(outs[axis]) * s + j * dl - a
            low, high = (-a, d + b) if include_pad else (0, d)
            shape = [1] * spatial
            shape[axis] = outs[axis]
            inside = inside & ((pos >= low) & (pos < high)).reshape(shape)
        count += inside
    divisor = ctx.constant(np.maximum(count, 1).reshape([1] * len(lead) + outs)
                           .astype(trt.nptype(x.dtype)))
    return elementwise(ctx, total, divisor, "DIV")


def _ceil_padding(node: Node, x, kernel, strides, pre, post):  # noqa: ANN001, ANN202
    """Post-padding that makes floor division give ONNX's ceil_mode output size: rounded up,
    except that a last window starting inside the end padding is dropped."""
    dims = list(x.shape)[2:]
    if any(d < 0 for d in dims):
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "ceil_mode needs static spatial dims")
    extra = []
    for d, k, s, a, b in zip(dims, kernel, strides, pre, post):
        span = d + a + b - k
        out = -(-span // s) + 1
        if (out - 1) * s >= d + a:
            out -= 1
        extra.append(b + max(0, (out - 1) * s + k - (d + a + b)))
    return extra


@importer("MaxPool", since=1)
def max_pool(ctx: ImportContext, node: Node):
    x = node.require(0)
    y = _pool(ctx, node, x, "MAX")
    if not node.has_output(1):
        return [y]
    return [y, _max_indices(ctx, node, x, y)]


def _max_indices(ctx: ImportContext, node: Node, x, y):  # noqa: ANN001, ANN202
    """MaxPool's Indices: per window, the flat index (over the whole input, batch and
    channels included; the spatial part column-major with storage_order 1) of its first
    maximum. The windows' values are gathered from the
    flattened input (padding reads -inf), TopK picks each window's first maximum, and a
    constant table maps it back to its input position."""
    from engine.onnx.compose import cast, reshape

    spatial = rank(x) - 2
    if any(d < 0 for d in x.shape) or any(d != 1 for d in node.attr("dilations", [])):
        node.fail(ErrorCode.UNSUPPORTED_NODE, "MaxPool's Indices output needs a static input "
                                              "shape and no dilation")
    pool = y._producer if spatial != 1 else None
    if pool is None or pool.layer_type != trt.LayerType.POOLING:
        node.fail(ErrorCode.UNSUPPORTED_NODE, "MaxPool's Indices output of a 1-D pooling")
    sizes = tuple(int(d) for d in x.shape[2:])
    geometry = pool.geometry(sizes)  # (pre, post, out) per axis
    kernel, strides = tuple(pool.window_size_nd), tuple(pool.stride_nd)
    outs = [out for _, _, out in geometry]
    grids = np.meshgrid(*[np.arange(o) for o in outs], *[np.arange(k) for k in kernel],
                        indexing="ij")
    position = [grids[i] * strides[i] - geometry[i][0] + grids[spatial + i]
                for i in range(spatial)]
    inside = np.all([(p >= 0) & (p < n) for p, n in zip(position, sizes)], axis=0)
    clipped = [np.clip(p, 0, n - 1) for p, n in zip(position, sizes)]
    volume = int(np.prod(sizes))
    windows_shape = (int(np.prod(outs)), int(np.prod(kernel)))
    table = np.where(inside, np.ravel_multi_index(clipped, sizes), volume) \
        .reshape(windows_shape).astype(np.int64)
    # the index reported: row-major over the spatial axes, or column-major (storage_order 1)
    order: Literal["C", "F"] = "F" if node.attr("storage_order", 0) else "C"
    reported = np.ravel_multi_index(clipped, sizes, order=order).reshape(windows_shape)
    planes = int(x.shape[0]) * int(x.shape[1])
    rows = reshape(ctx, x, [planes, volume])
    lowest = ctx.constant(np.full((planes, 1), -np.inf, trt.nptype(x.dtype)))
    joined = ctx.network.add_concatenation([rows, lowest])
    joined.axis = 1
    gathered = ctx.network.add_gather(output_of(joined), ctx.constant(table.reshape(-1)), 1)
    windows = reshape(ctx, output_of(gathered), [planes] + list(table.shape))
    best = ctx.network.add_topk(windows, trt.TopKOperation.MAX, 1, 1 << 2)
    tiled = ctx.constant(np.broadcast_to(reported, (planes,) + table.shape).astype(np.int64))
    chosen = ctx.network.add_gather_v2(tiled, cast(ctx, output_of(best, 1), trt.DataType.INT64),
                                       trt.GatherMode.ELEMENT)
    chosen.axis = 2
    offsets = ctx.constant((np.arange(planes, dtype=np.int64) * volume).reshape(planes, 1, 1))
    flat = elementwise(ctx, output_of(chosen), offsets, "SUM")
    return reshape(ctx, flat, [int(x.shape[0]), int(x.shape[1])] + outs)


@importer("AveragePool", since=1)
def average_pool(ctx: ImportContext, node: Node):
    return [_pool(ctx, node, node.require(0), "AVERAGE")]


@importer("LpPool", since=1)
def lp_pool(ctx: ImportContext, node: Node):
    # (sum |x|^p)^(1/p) = (avg |x|^p * window)^(1/p), with padding counted as zeros
    x = node.require(0)
    p = float(node.attr("p", 2))
    powered = elementwise(ctx, unary(ctx, x, "ABS"), constant_like(ctx, p, x), "POW")
    if any(d != 1 for d in node.attr("dilations", [])):
        total = _pool(ctx, node, powered, "SUM")
        return [elementwise(ctx, total, constant_like(ctx, 1.0 / p, total), "POW")]
    node.attrs["count_include_pad"] = 1
    avg = _pool(ctx, node, powered, "AVERAGE")
    window = float(np.prod(node.attr("kernel_shape")))
    total = elementwise(ctx, avg, constant_like(ctx, window, avg), "PROD")
    return [elementwise(ctx, total, constant_like(ctx, 1.0 / p, total), "POW")]


def _global(op: str):  # noqa: ANN202
    def run(ctx: ImportContext, node: Node):  # noqa: ANN202
        x = node.require(0)
        return [reduce(ctx, x, op, list(range(2, rank(x))), True)]
    return run


importer("GlobalAveragePool", since=1)(_global("AVG"))
importer("GlobalMaxPool", since=1)(_global("MAX"))


@importer("GlobalLpPool", since=2)
def global_lp_pool(ctx: ImportContext, node: Node):
    x = node.require(0)
    p = float(node.attr("p", 2))
    powered = elementwise(ctx, unary(ctx, x, "ABS"), constant_like(ctx, p, x), "POW")
    total = reduce(ctx, powered, "SUM", list(range(2, rank(x))), True)
    return [elementwise(ctx, total, constant_like(ctx, 1.0 / p, total), "POW")]


@importer("LRN", since=1)
def lrn(ctx: ImportContext, node: Node):
    x = node.require(0)
    layer = ctx.network.add_lrn(x, int(node.attr("size")), float(node.attr("alpha", 1e-4)),
                                float(node.attr("beta", 0.75)), float(node.attr("bias", 1.0)))
    return [layer.get_output(0)]


@importer("MaxUnpool", since=9)
def max_unpool(ctx: ImportContext, node: Node):
    """MaxPool undone: the values scattered to their flat indices (MaxPool's Indices: over the
    whole output, batch and channels included) of a zero tensor of the unpooled shape
    ``(in - 1) * stride - pads + kernel``, placed in the leading corner of a zero tensor of
    ``output_shape`` when that is given (a constant), as onnx's reference does."""
    from engine.onnx.compose import cast, reshape

    x, indices, output_shape = node.require(0), node.require(1), node.input(2)
    spatial = rank(x) - 2
    if any(d < 0 for d in x.shape):
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "MaxUnpool needs a static input shape")
    kernel = list(node.attr("kernel_shape"))
    strides = list(node.attr("strides", [1] * spatial))
    pads = list(node.attr("pads", [0] * 2 * spatial))
    inferred = list(x.shape[:2]) + [
        (x.shape[2 + i] - 1) * strides[i] - pads[i] - pads[spatial + i] + kernel[i]
        for i in range(spatial)]
    zeros = ctx.constant(np.zeros(int(np.prod(inferred)), trt.nptype(x.dtype)))
    flat_indices = reshape(ctx, cast(ctx, indices, trt.DataType.INT64), [-1])
    layer = ctx.network.add_scatter(zeros, flat_indices, reshape(ctx, x, [-1]),
                                    trt.ScatterMode.ELEMENT)
    layer.axis = 0
    y = reshape(ctx, output_of(layer), inferred)
    if output_shape is None:
        return [y]
    value = ctx.value(output_shape)
    if value is None:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                  "MaxUnpool's output_shape must be known at build time")
    shape = [int(d) for d in np.asarray(value).reshape(-1)]
    if len(shape) != len(inferred) or any(s < i for s, i in zip(shape, inferred)):
        node.fail(ErrorCode.INVALID_NODE, f"output_shape {shape} is smaller than the unpooled "
                                          f"shape {inferred}")
    if shape == inferred:
        return [y]
    # the unpooled values in the leading corner of a zero tensor of output_shape
    grown = ctx.network.add_slice(y, trt.Dims([0] * len(shape)), trt.Dims(shape),
                                  trt.Dims([1] * len(shape)))
    grown.mode = trt.SampleMode.FILL
    return [grown.get_output(0)]
