"""Activations: activation layers, with compositions where TensorRT has no direct type."""

from __future__ import annotations

import numpy as np

from engine.onnx.compose import activation, broadcast, cast, constant_like, elementwise
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.registry import importer


def _simple(kind: str, alpha: str | None = None, alpha_default: float = 0.0,
            beta: str | None = None, beta_default: float = 0.0):  # noqa: ANN202
    def run(ctx: ImportContext, node: Node):  # noqa: ANN202
        a = node.attr(alpha, alpha_default) if alpha else None
        b = node.attr(beta, beta_default) if beta else None
        return [activation(ctx, node.require(0), kind, a, b)]
    return run


importer("Relu", since=1)(_simple("RELU"))
importer("Sigmoid", since=1)(_simple("SIGMOID"))
importer("Tanh", since=1)(_simple("TANH"))
importer("LeakyRelu", since=1)(_simple("LEAKY_RELU", "alpha", 0.01))
importer("Elu", since=1)(_simple("ELU", "alpha", 1.0))
importer("Softsign", since=1)(_simple("SOFTSIGN"))
importer("ThresholdedRelu", since=10)(_simple("THRESHOLDED_RELU", "alpha", 1.0))
importer("HardSigmoid", since=1)(_simple("HARD_SIGMOID", "alpha", 0.2, "beta", 0.5))


@importer("Selu", since=1)
def selu(ctx: ImportContext, node: Node):
    return [activation(ctx, node.require(0), "SELU", node.attr("alpha", 1.67326319217681884765625),
                       node.attr("gamma", 1.05070102214813232421875))]


@importer("Softplus", since=1)
def softplus(ctx: ImportContext, node: Node):
    return [activation(ctx, node.require(0), "SOFTPLUS", 1.0, 1.0)]


@importer("Gelu", since=20)
def gelu(ctx: ImportContext, node: Node):
    kind = "GELU_TANH" if node.attr("approximate", "none") == "tanh" else "GELU_ERF"
    return [activation(ctx, node.require(0), kind)]


@importer("Clip", since=1)
def clip_attributes(ctx: ImportContext, node: Node):
    x = node.require(0)
    lo = node.attr("min", float(np.finfo(np.float32).min))
    hi = node.attr("max", float(np.finfo(np.float32).max))
    return [activation(ctx, x, "CLIP", lo, hi)]


@importer("Clip", since=11)
def clip(ctx: ImportContext, node: Node):
    x = node.require(0)
    lo_t, hi_t = node.input(1), node.input(2)
    lo, hi = ctx.value(lo_t), ctx.value(hi_t)
    if x.dtype.is_float and (lo_t is None or lo is not None) and (hi_t is None or hi is not None):
        big = float(np.finfo(np.float32).max)
        return [activation(ctx, x, "CLIP", -big if lo is None else float(lo),
                           big if hi is None else float(hi))]
    out = x
    if lo_t is not None:
        out = elementwise(ctx, out, cast(ctx, lo_t, x.dtype), "MAX")
    if hi_t is not None:
        out = elementwise(ctx, out, cast(ctx, hi_t, x.dtype), "MIN")
    if out is x:
        out = output_of(ctx.network.add_identity(x))
    return [out]


@importer("HardSwish", since=14)
def hard_swish(ctx: ImportContext, node: Node):
    x = node.require(0)
    gate = activation(ctx, x, "HARD_SIGMOID", 1.0 / 6.0, 0.5)
    return [elementwise(ctx, x, gate, "PROD")]


@importer("Celu", since=12)
def celu(ctx: ImportContext, node: Node):
    # celu(x) = max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
    x = node.require(0)
    alpha = float(node.attr("alpha", 1.0))
    scaled = elementwise(ctx, x, constant_like(ctx, alpha, x), "DIV")
    elu = activation(ctx, scaled, "ELU", 1.0)
    return [elementwise(ctx, elu, constant_like(ctx, alpha, x), "PROD")]


@importer("Mish", since=18)
def mish(ctx: ImportContext, node: Node):
    x = node.require(0)
    soft = activation(ctx, x, "SOFTPLUS", 1.0, 1.0)
    return [elementwise(ctx, x, activation(ctx, soft, "TANH"), "PROD")]


@importer("Swish", since=24)
def swish(ctx: ImportContext, node: Node):
    x = node.require(0)
    alpha = float(node.attr("alpha", 1.0))
    scaled = elementwise(ctx, x, constant_like(ctx, alpha, x), "PROD")
    return [elementwise(ctx, x, activation(ctx, scaled, "SIGMOID"), "PROD")]


@importer("Shrink", since=9)
def shrink(ctx: ImportContext, node: Node):
    # x < -lambd: x + bias; x > lambd: x - bias; else 0
    x = node.require(0)
    lambd, bias = float(node.attr("lambd", 0.5)), float(node.attr("bias", 0.0))
    zero = constant_like(ctx, 0, x)
    low = elementwise(ctx, x, constant_like(ctx, -lambd, x), "LESS")
    high = elementwise(ctx, x, constant_like(ctx, lambd, x), "GREATER")
    plus = elementwise(ctx, x, constant_like(ctx, bias, x), "SUM")
    minus = elementwise(ctx, x, constant_like(ctx, bias, x), "SUB")
    inner = _select(ctx, high, minus, zero)
    return [_select(ctx, low, plus, inner)]


def _select(ctx: ImportContext, cond, a, b):  # noqa: ANN001, ANN202
    cond, a, b = broadcast(ctx, cond, a, b)
    return ctx.network.add_select(cond, a, b).get_output(0)


