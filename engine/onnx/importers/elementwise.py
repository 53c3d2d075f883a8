"""Binary and variadic arithmetic, comparisons and logic: elementwise layers with NumPy
broadcasting."""

from __future__ import annotations

from functools import reduce as _fold

import numpy as np

from engine.onnx.compose import broadcast, cast, constant_like, elementwise, unary
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer
from engine.types import DataType


def _binary(op: str):  # noqa: ANN202 - returns an importer
    def run(ctx: ImportContext, node: Node):  # noqa: ANN202
        a, b = node.require(0), node.require(1)
        if node.opset < 7 and node.attr("broadcast", 0) == 0 and tuple(a.shape) != tuple(b.shape):
            node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, "legacy broadcast is not supported")
        if a.dtype != b.dtype:
            node.fail(ErrorCode.INVALID_NODE, f"input types differ: {a.dtype.name} and "
                                              f"{b.dtype.name}")
        return [elementwise(ctx, a, b, op)]
    return run


for _op, _trt in {"Add": "SUM", "Sub": "SUB", "Mul": "PROD", "Div": "DIV", "Equal": "EQUAL",
                  "Greater": "GREATER", "Less": "LESS", "And": "AND", "Or": "OR",
                  "Xor": "XOR"}.items():
    importer(_op, since=1)(_binary(_trt))


@importer("Pow", since=1)
def pow_(ctx: ImportContext, node: Node):
    base, exponent = node.require(0), node.require(1)
    if not base.dtype.is_float:
        # integer powers through float32 (exact for the results int32 can hold)
        result = elementwise(ctx, cast(ctx, base, DataType.FLOAT),
                             cast(ctx, exponent, DataType.FLOAT), "POW")
        return [cast(ctx, unary(ctx, result, "ROUND"), base.dtype)]
    if exponent.dtype != base.dtype:
        exponent = cast(ctx, exponent, base.dtype)
    return [elementwise(ctx, base, exponent, "POW")]


@importer("GreaterOrEqual", since=12)
def greater_or_equal(ctx: ImportContext, node: Node):
    a, b = node.require(0), node.require(1)
    return [elementwise(ctx, elementwise(ctx, a, b, "GREATER"),
                        elementwise(ctx, a, b, "EQUAL"), "OR")]


@importer("LessOrEqual", since=12)
def less_or_equal(ctx: ImportContext, node: Node):
    a, b = node.require(0), node.require(1)
    return [elementwise(ctx, elementwise(ctx, a, b, "LESS"),
                        elementwise(ctx, a, b, "EQUAL"), "OR")]


def _variadic(op: str):  # noqa: ANN202
    def run(ctx: ImportContext, node: Node):  # noqa: ANN202
        inputs = [t for t in node.inputs if t is not None]
        if not inputs:
            node.fail(ErrorCode.INVALID_NODE, "needs at least one input")
        if len(inputs) == 1:
            return [ctx.network.add_identity(inputs[0]).get_output(0)]
        return [_fold(lambda a, b: elementwise(ctx, a, b, op), inputs)]
    return run


importer("Sum", since=1)(_variadic("SUM"))
importer("Max", since=1)(_variadic("MAX"))
importer("Min", since=1)(_variadic("MIN"))


@importer("Mean", since=1)
def mean(ctx: ImportContext, node: Node):
    inputs = [t for t in node.inputs if t is not None]
    total = _fold(lambda a, b: elementwise(ctx, a, b, "SUM"), inputs)
    return [elementwise(ctx, total, constant_like(ctx, len(inputs), total), "DIV")]


@importer("Mod", since=10)
def mod(ctx: ImportContext, node: Node):
    a, b = broadcast(ctx, node.require(0), node.require(1))
    if node.attr("fmod", 0) == 0:
        # Python's modulo: the result takes the divisor's sign.
        quotient = elementwise(ctx, a, b, "FLOOR_DIV")
    else:
        quotient = _truncated_div(ctx, a, b)
    out = elementwise(ctx, a, elementwise(ctx, quotient, b, "PROD"), "SUB")
    if node.attr("fmod", 0) == 0 and a.dtype.is_float:
        out = _infinite_divisor(ctx, a, b, out)
    return [out]


def _infinite_divisor(ctx: ImportContext, a, b, out):  # noqa: ANN001, ANN202
    """Python's modulo by an infinite divisor (where ``a - floor(a / b) * b`` is NaN): ``a``
    when it is finite with the divisor's sign or zero, else the divisor (NumPy's ``mod``)."""
    net = ctx.network
    inf = constant_like(ctx, np.inf, b)
    b_inf = elementwise(ctx, unary(ctx, b, "ABS"), inf, "EQUAL")
    a_finite = elementwise(ctx, unary(ctx, a, "ABS"), constant_like(ctx, np.inf, a), "LESS")
    signs = elementwise(ctx, unary(ctx, a, "SIGN"), unary(ctx, b, "SIGN"), "PROD")
    agree = unary(ctx, elementwise(ctx, signs, constant_like(ctx, 0.0, signs), "LESS"), "NOT")
    take_a = elementwise(ctx, agree, a_finite, "AND")
    finite_case = output_of(net.add_select(take_a, a, b))
    use = elementwise(ctx, b_inf, a_finite, "AND")
    return net.add_select(use, finite_case, out).get_output(0)


def _truncated_div(ctx: ImportContext, a, b):  # noqa: ANN001, ANN202
    if not a.dtype.is_float:
        return elementwise(ctx, a, b, "DIV")
    q = elementwise(ctx, a, b, "DIV")
    # trunc(q) = sign(q) * floor(|q|)
    return elementwise(ctx, unary(ctx, q, "SIGN"), unary(ctx, unary(ctx, q, "ABS"), "FLOOR"),
                       "PROD")


@importer("Where", since=9)
def where(ctx: ImportContext, node: Node):
    cond, x, y = broadcast(ctx, node.require(0), node.require(1), node.require(2))
    if cond.dtype != DataType.BOOL:
        cond = cast(ctx, cond, DataType.BOOL)
    return [ctx.network.add_select(cond, x, y).get_output(0)]


@importer("PRelu", since=1)
def prelu(ctx: ImportContext, node: Node):
    x, slope = node.require(0), node.require(1)
    x, slope = broadcast(ctx, x, slope)
    return [ctx.network.add_parametric_relu(x, slope).get_output(0)]
