"""Elementwise functions of one input: unary layers, and ops that copy their input."""

from __future__ import annotations

import numpy as np

from engine.onnx.compose import cast, constant_like, elementwise, unary
from engine.onnx.context import ImportContext, Node
from engine.onnx.registry import importer
from engine.types import DataType


def _unary(op: str):  # noqa: ANN202
    def run(ctx: ImportContext, node: Node):  # noqa: ANN202
        return [unary(ctx, node.require(0), op)]
    return run


for _onnx, _trt in {"Abs": "ABS", "Neg": "NEG", "Exp": "EXP", "Log": "LOG", "Sqrt": "SQRT",
                    "Reciprocal": "RECIP", "Sin": "SIN", "Cos": "COS", "Tan": "TAN",
                    "Asin": "ASIN", "Acos": "ACOS", "Atan": "ATAN", "Sinh": "SINH",
                    "Cosh": "COSH", "Asinh": "ASINH", "Acosh": "ACOSH", "Atanh": "ATANH",
                    "Ceil": "CEIL", "Floor": "FLOOR", "Erf": "ERF", "Not": "NOT",
                    "Sign": "SIGN", "Round": "ROUND", "IsNaN": "ISNAN"}.items():
    importer(_onnx, since=1)(_unary(_trt))


@importer("IsInf", since=10)
def is_inf(ctx: ImportContext, node: Node):
    x = node.require(0)
    positive, negative = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
    if positive and negative:
        return [unary(ctx, x, "ISINF")]
    if not positive and not negative:
        return [ctx.constant(np.zeros(tuple(x.shape), np.bool_))] if all(
            d >= 0 for d in x.shape) else [elementwise(ctx, x, x, "LESS")]
    inf = constant_like(ctx, np.inf if positive else -np.inf, x)
    return [elementwise(ctx, x, inf, "EQUAL")]


@importer("Identity", since=1)
def identity(ctx: ImportContext, node: Node):
    return [ctx.network.add_identity(node.require(0)).get_output(0)]


@importer("Dropout", since=1)
def dropout(ctx: ImportContext, node: Node):
    """Inference: the input unchanged, and a mask of ones. In training mode (a constant true
    training_mode) only a build-time ratio of 0 is deterministic, and the same; a random
    dropout is refused."""
    x = node.require(0)
    training = None
    if node.opset >= 12 and node.input(2) is not None:
        training = ctx.require_value(node, 2, "training_mode")
    elif node.opset < 7 and node.attr("is_test", 0) == 0:
        training = np.array(True)
    if training is not None and bool(np.asarray(training).reshape(-1)[0]):
        ratio = (ctx.require_value(node, 1, "ratio") if node.opset >= 12
                 and node.input(1) is not None else node.attr("ratio", 0.5))
        if float(np.asarray(ratio).reshape(-1)[0]) != 0.0:
            node.unsupported("training_mode=True: random dropout is not supported")
    out = ctx.network.add_identity(x).get_output(0)
    if node.has_output(1):
        ones = elementwise(ctx, x, x, "EQUAL") if x.dtype.is_float is False else \
            cast(ctx, elementwise(ctx, x, x, "SUB"), DataType.BOOL)
        mask = unary(ctx, ones, "NOT") if x.dtype.is_float else ones
        return [out, mask]
    return [out]
