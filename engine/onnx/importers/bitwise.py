"""Integer bit operations: BitShift, composed of exact INT64 arithmetic (the network has no
shift layer): ``x << s`` is ``x * 2**s`` and ``x >> s`` is ``floor(x / 2**s)`` (arithmetic for
signed types), the powers gathered from a constant table, the result cast back (wrapping)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from engine.onnx.compose import broadcast, cast, constant_like, elementwise, reduce, unsqueeze
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer
from engine.types import DataType

_WIDTHS = {DataType.INT8: 8, DataType.UINT8: 8, DataType.INT32: 32, DataType.INT64: 64}
# Unsigned ONNX types carried in a wider signed type (the narrowing of engine.onnx.tensors).
_NARROWED_UNSIGNED: dict[int, int] = {TensorProto.UINT16: 16, TensorProto.UINT32: 32}


@importer("BitShift", since=11)
def bit_shift(ctx: ImportContext, node: Node):
    x, s = broadcast(ctx, node.require(0), node.require(1))
    width = _WIDTHS.get(x.dtype)
    if width is None:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DATATYPE, f"BitShift of {x.dtype.name}")
    direction = node.attr("direction")
    if direction not in ("LEFT", "RIGHT"):
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"direction {direction!r}")
    x64, s64 = cast(ctx, x, DataType.INT64), cast(ctx, s, DataType.INT64)
    top = min(width, 62)  # 2**63 does not fit INT64
    powers = ctx.constant(np.array([1 << k for k in range(top + 1)], np.int64))

    def clamp(t, lo: int, hi: int):  # noqa: ANN001, ANN202
        t = elementwise(ctx, t, constant_like(ctx, lo, t), "MAX")
        return elementwise(ctx, t, constant_like(ctx, hi, t), "MIN")

    def where(cond, a, b):  # noqa: ANN001, ANN202
        cond, a, b = broadcast(ctx, cond, a, b)
        return output_of(ctx.network.add_select(cond, a, b))

    negative = elementwise(ctx, s64, constant_like(ctx, 0, s64), "LESS")
    if direction == "RIGHT":
        # A shift by the width or more (or a negative one) leaves the sign: floor(x / 2**W).
        index = where(negative, constant_like(ctx, top, s64), clamp(s64, 0, top))
        power = output_of(ctx.network.add_gather(powers, index, 0))
        result = elementwise(ctx, x64, power, "FLOOR_DIV")
    else:
        too_far = elementwise(ctx, s64, constant_like(ctx, width - 1, s64), "GREATER")
        invalid = elementwise(ctx, negative, too_far, "OR")
        power = output_of(ctx.network.add_gather(powers, clamp(s64, 0, top), 0))
        power = where(invalid, constant_like(ctx, 0, power), power)
        result = elementwise(ctx, x64, power, "PROD")
    return [cast(ctx, result, x.dtype)]


@importer("BitwiseNot", since=18)
def bitwise_not(ctx: ImportContext, node: Node):
    x = node.require(0)
    if x.dtype not in _WIDTHS:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DATATYPE, f"BitwiseNot of {x.dtype.name}")
    x64 = cast(ctx, x, DataType.INT64)
    # two's complement: ~x == -x - 1, wrapped back into the type; an unsigned type carried
    # in a wider signed one (UINT16, UINT32 narrowed) keeps its own width: 2**W - 1 - x
    width = _NARROWED_UNSIGNED.get(ctx.onnx_types.get(x, TensorProto.UNDEFINED))
    top = -1 if width is None else (1 << width) - 1
    result = elementwise(ctx, constant_like(ctx, top, x64), x64, "SUB")
    return [cast(ctx, result, x.dtype)]


def _combined(ctx: ImportContext, a, b, combine: str, width: int):  # noqa: ANN001, ANN202
    """``a combine b`` (AND, OR, XOR) of the low ``width`` bits of INT64 ``a`` and ``b`` (of
    one shape), as an unsigned value in INT64: each operand split into its bits along a new
    last axis by exact INT64 arithmetic, the bits combined, summed back with their powers."""
    r = len(a.shape)
    powers = ctx.constant(np.array([1 << k for k in range(width)], np.int64)
                          .reshape((1,) * r + (width,)))
    modulus = 1 << width

    def bits(t):  # noqa: ANN001, ANN202 - the W bits of t along a new last axis
        m = constant_like(ctx, modulus, t)
        wraps = elementwise(ctx, t, m, "FLOOR_DIV")
        unsigned = elementwise(ctx, t, elementwise(ctx, wraps, m, "PROD"), "SUB")  # mod 2**W
        expanded = unsqueeze(ctx, unsigned, [r])
        shifted = elementwise(ctx, expanded, powers, "FLOOR_DIV")
        two = constant_like(ctx, 2, shifted)
        return elementwise(ctx, shifted, elementwise(
            ctx, elementwise(ctx, shifted, two, "FLOOR_DIV"), two, "PROD"), "SUB")

    x, y = bits(a), bits(b)
    both = elementwise(ctx, x, y, "PROD")
    if combine == "AND":
        out = both
    elif combine == "OR":
        out = elementwise(ctx, elementwise(ctx, x, y, "SUM"), both, "SUB")
    else:
        out = elementwise(ctx, elementwise(ctx, x, y, "SUM"),
                          elementwise(ctx, both, constant_like(ctx, 2, both), "PROD"), "SUB")
    return reduce(ctx, elementwise(ctx, out, powers, "PROD"), "SUM", [r], False)


def _halves(ctx: ImportContext, t):  # noqa: ANN001, ANN202
    """INT64 ``t`` as ``high * 2**32 + low``, ``low`` in [0, 2**32) (exact)."""
    two32 = constant_like(ctx, 1 << 32, t)
    high = elementwise(ctx, t, two32, "FLOOR_DIV")
    return high, elementwise(ctx, t, elementwise(ctx, high, two32, "PROD"), "SUB")


def _bitwise(combine: str):  # noqa: ANN202 - returns an importer
    def run(ctx: ImportContext, node: Node):  # noqa: ANN202
        a, b = broadcast(ctx, node.require(0), node.require(1))
        width = _WIDTHS.get(a.dtype)
        if width is None or a.dtype != b.dtype:
            node.fail(ErrorCode.UNSUPPORTED_NODE_DATATYPE,
                      f"{node.op_type} of {a.dtype.name} and {b.dtype.name} (8-, 32- and 64-bit "
                      f"integers of one type are supported)")
        a64, b64 = cast(ctx, a, DataType.INT64), cast(ctx, b, DataType.INT64)
        if width <= 32:
            return [cast(ctx, _combined(ctx, a64, b64, combine, width), a.dtype)]
        # 64 bits: the 32-bit halves combined apart (2**63 is beyond INT64), the high half's
        # 32-bit result read as signed, then joined again
        (a_high, a_low), (b_high, b_low) = _halves(ctx, a64), _halves(ctx, b64)
        low = _combined(ctx, a_low, b_low, combine, 32)
        high = _combined(ctx, a_high, b_high, combine, 32)
        negative = elementwise(ctx, high, constant_like(ctx, 1 << 31, high), "FLOOR_DIV")
        high = elementwise(ctx, high, elementwise(ctx, negative, constant_like(
            ctx, 1 << 32, negative), "PROD"), "SUB")
        joined = elementwise(ctx, elementwise(ctx, high, constant_like(ctx, 1 << 32, high),
                                              "PROD"), low, "SUM")
        return [joined]
    return run


for _op, _combine in {"BitwiseAnd": "AND", "BitwiseOr": "OR", "BitwiseXor": "XOR"}.items():
    importer(_op, since=18)(_bitwise(_combine))
