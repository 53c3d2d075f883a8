"""Normalizations: BatchNormalization, InstanceNormalization, LayerNormalization,
GroupNormalization, LpNormalization."""

from __future__ import annotations

import numpy as np

from engine.onnx.compose import (
    cast,
    concat,
    constant_like,
    elementwise,
    gather,
    int64_vector,
    normalize_axis,
    prepend_ones,
    rank,
    reduce,
    reshape,
    shape_of,
    unary,
)
from engine.onnx.context import ImportContext, Node
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer
from engine.types import nptype


def _per_channel(ctx: ImportContext, t, r: int):  # noqa: ANN001, ANN202
    """A per-channel vector (C,) shaped (1, C, 1, ...) for a rank-``r`` NC... tensor."""
    value = ctx.value(t)
    dims = [1, -1] + [1] * (r - 2)
    if value is not None:
        return ctx.constant(value.reshape([1, value.size] + [1] * (r - 2)))
    return reshape(ctx, t, dims)


@importer("BatchNormalization", since=1)
def batch_norm(ctx: ImportContext, node: Node):
    if node.attr("training_mode", 0) and node.opset >= 14:
        return _batch_norm_training(ctx, node)
    if node.attr("training_mode", 0) or (node.opset < 14 and node.num_outputs > 1
                                         and node.opset >= 9 and any(
                                             node.has_output(i) for i in range(1, 5))):
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, "training mode is not supported")
    x = node.require(0)
    r = rank(x)
    eps = float(node.attr("epsilon", 1e-5))
    params = [node.require(i) for i in range(1, 5)]
    values = [ctx.value(p) for p in params]
    if all(v is not None for v in values):
        scale, bias, mean, var = (np.asarray(v, np.float64) for v in values)
        factor = scale / np.sqrt(var + eps)
        shift = bias - mean * factor
        dtype = nptype(x.dtype)
        shape = [1, factor.size] + [1] * (r - 2)
        factor_t = ctx.constant(factor.astype(dtype).reshape(shape))
        shift_t = ctx.constant(shift.astype(dtype).reshape(shape))
        return [elementwise(ctx, elementwise(ctx, x, factor_t, "PROD"), shift_t, "SUM")]
    scale, bias, mean, var = (_per_channel(ctx, cast(ctx, p, x.dtype), r) for p in params)
    std = unary(ctx, elementwise(ctx, var, constant_like(ctx, eps, var), "SUM"), "SQRT")
    normed = elementwise(ctx, elementwise(ctx, x, mean, "SUB"), std, "DIV")
    return [elementwise(ctx, elementwise(ctx, normed, scale, "PROD"), bias, "SUM")]


def _batch_norm_training(ctx: ImportContext, node: Node) -> list:
    """Opset 14's training mode, which is deterministic: ``x`` normalized by its own
    per-channel mean and (population) variance; the running statistics come out updated as
    ``running * momentum + batch * (1 - momentum)``."""
    x = node.require(0)
    r = rank(x)
    eps, momentum = float(node.attr("epsilon", 1e-5)), float(node.attr("momentum", 0.9))
    scale, bias, mean, var = (_per_channel(ctx, cast(ctx, node.require(i), x.dtype), r)
                              for i in range(1, 5))
    axes = [0, *range(2, r)]
    batch_mean = reduce(ctx, x, "AVG", axes, True)
    centered = elementwise(ctx, x, batch_mean, "SUB")
    batch_var = reduce(ctx, elementwise(ctx, centered, centered, "PROD"), "AVG", axes, True)
    std = unary(ctx, elementwise(ctx, batch_var, constant_like(ctx, eps, batch_var), "SUM"),
                "SQRT")
    y = elementwise(ctx, elementwise(ctx, elementwise(ctx, centered, std, "DIV"), scale,
                                     "PROD"), bias, "SUM")

    def running(old, batch):  # noqa: ANN001, ANN202
        kept = elementwise(ctx, old, constant_like(ctx, momentum, old), "PROD")
        new = elementwise(ctx, batch, constant_like(ctx, 1.0 - momentum, batch), "PROD")
        return reshape(ctx, elementwise(ctx, kept, new, "SUM"), [-1])

    return [y, running(mean, batch_mean), running(var, batch_var)]


@importer("InstanceNormalization", since=1)
def instance_norm(ctx: ImportContext, node: Node):
    x, scale, bias = node.require(0), node.require(1), node.require(2)
    r = rank(x)
    layer = ctx.network.add_normalization(x, _per_channel(ctx, scale, r),
                                          _per_channel(ctx, bias, r),
                                          _mask(range(2, r)))
    layer.epsilon = float(node.attr("epsilon", 1e-5))
    return [layer.get_output(0)]


def _mask(axes) -> int:  # noqa: ANN001
    mask = 0
    for a in axes:
        mask |= 1 << a
    return mask


@importer("LayerNormalization", since=17)
def layer_norm(ctx: ImportContext, node: Node):
    x, scale, bias = node.require(0), node.require(1), node.input(2)
    r = rank(x)
    axis = normalize_axis(node, node.attr("axis", -1), r)
    eps = float(node.attr("epsilon", 1e-5))
    axes = list(range(axis, r))
    scale = prepend_ones(ctx, cast(ctx, scale, x.dtype), r - rank(scale))
    if bias is None:
        bias = elementwise(ctx, scale, scale, "SUB")
    bias = prepend_ones(ctx, cast(ctx, bias, x.dtype), r - rank(bias))
    layer = ctx.network.add_normalization(x, scale, bias, _mask(axes))
    layer.epsilon = eps
    outputs = [layer.get_output(0)]
    if node.has_output(1) or node.has_output(2):
        mean = reduce(ctx, x, "AVG", axes, True)
        centered = elementwise(ctx, x, mean, "SUB")
        var = reduce(ctx, elementwise(ctx, centered, centered, "PROD"), "AVG", axes, True)
        inv_std = unary(ctx, unary(ctx, elementwise(ctx, var, constant_like(ctx, eps, var),
                                                    "SUM"), "SQRT"), "RECIP")
        outputs += [mean, inv_std]
    return outputs


@importer("GroupNormalization", since=18)
def group_norm(ctx: ImportContext, node: Node):
    x, scale, bias = node.require(0), node.require(1), node.require(2)
    r = rank(x)
    groups = int(node.attr("num_groups"))
    eps = float(node.attr("epsilon", 1e-5))
    channels = x.shape[1]
    if channels < 0:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "GroupNormalization needs static channels")
    sizes = shape_of(ctx, x)
    grouped = reshape(ctx, x, concat(ctx, [gather(ctx, sizes, [0]),
                                           int64_vector(ctx, [groups, -1])]))
    mean = reduce(ctx, grouped, "AVG", [2], True)
    centered = elementwise(ctx, grouped, mean, "SUB")
    var = reduce(ctx, elementwise(ctx, centered, centered, "PROD"), "AVG", [2], True)
    std = unary(ctx, elementwise(ctx, var, constant_like(ctx, eps, var), "SUM"), "SQRT")
    normed = reshape(ctx, elementwise(ctx, centered, std, "DIV"), sizes)
    scale, bias = cast(ctx, scale, x.dtype), cast(ctx, bias, x.dtype)
    if node.opset < 21:
        # opset 18: scale and bias per group
        repeat = channels // groups
        scale = _repeat_groups(ctx, scale, groups, repeat)
        bias = _repeat_groups(ctx, bias, groups, repeat)
    scale, bias = _per_channel(ctx, scale, r), _per_channel(ctx, bias, r)
    return [elementwise(ctx, elementwise(ctx, normed, scale, "PROD"), bias, "SUM")]


def _repeat_groups(ctx: ImportContext, t, groups: int, repeat: int):  # noqa: ANN001, ANN202
    column = reshape(ctx, t, [groups, 1])
    zeros = ctx.constant(np.zeros((groups, repeat), nptype(t.dtype)))
    return reshape(ctx, elementwise(ctx, column, zeros, "SUM"), [groups * repeat])


@importer("LpNormalization", since=1)
def lp_norm(ctx: ImportContext, node: Node):
    x = node.require(0)
    axis = normalize_axis(node, node.attr("axis", -1), rank(x))
    p = int(node.attr("p", 2))
    if p == 1:
        norm = reduce(ctx, unary(ctx, x, "ABS"), "SUM", [axis], True)
    elif p == 2:
        norm = unary(ctx, reduce(ctx, elementwise(ctx, x, x, "PROD"), "SUM", [axis], True),
                     "SQRT")
    else:
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"p={p} (only 1 and 2)")
    return [elementwise(ctx, x, norm, "DIV")]
