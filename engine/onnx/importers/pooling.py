"""Pooling: MaxPool, AveragePool, LpPool, the global pools and LRN."""

from __future__ import annotations

import numpy as np

import engine as trt
from engine.onnx.compose import constant_like, elementwise, rank, reduce, squeeze, unary, unsqueeze
from engine.onnx.context import ImportContext, Node
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer


def _pool(ctx: ImportContext, node: Node, x, kind: str):  # noqa: ANN001, ANN202
    spatial = rank(x) - 2
    one_d = spatial == 1
    kernel = list(node.attr("kernel_shape"))
    strides = list(node.attr("strides", [1] * spatial))
    dilations = list(node.attr("dilations", [1] * spatial))
    if any(d != 1 for d in dilations):
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"dilations {dilations}")
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
    out = layer.get_output(0)
    return squeeze(ctx, out, [rank(out) - 1]) if one_d else out


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
    if node.has_output(1):
        node.fail(ErrorCode.UNSUPPORTED_NODE, "MaxPool's Indices output is not supported")
    if node.attr("storage_order", 0):
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, "storage_order=1")
    return [_pool(ctx, node, node.require(0), "MAX")]


@importer("AveragePool", since=1)
def average_pool(ctx: ImportContext, node: Node):
    return [_pool(ctx, node, node.require(0), "AVERAGE")]


@importer("LpPool", since=1)
def lp_pool(ctx: ImportContext, node: Node):
    # (sum |x|^p)^(1/p) = (avg |x|^p * window)^(1/p), with padding counted as zeros
    x = node.require(0)
    p = float(node.attr("p", 2))
    powered = elementwise(ctx, unary(ctx, x, "ABS"), constant_like(ctx, p, x), "POW")
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
