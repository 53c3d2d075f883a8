"""Integer and quantized products (ONNX's QOperator format, as onnxruntime's quantization
tools write it): MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv. Computed in float32
from the dequantized (zero-point subtracted) integers, which is exact while the sums stay below
2**24, then requantized (round half to even, saturate) as QuantizeLinear does."""

from __future__ import annotations

import onnx

from engine.onnx.compose import cast, constant_like, elementwise, rank, reshape, unary
from engine.onnx.context import ImportContext, Node
from engine.onnx.errors import ErrorCode
from engine.onnx.importers.conv import convolution
from engine.onnx.importers.matmul import matmul
from engine.onnx.registry import importer
from engine.types import DataType

_RANGES = {DataType.INT8: (-128, 127), DataType.UINT8: (0, 255)}


def _centered(ctx: ImportContext, x, zero_point, row_axis: bool):  # noqa: ANN001, ANN202
    """``x - zero_point`` in float32; a per-row (A) or per-column (B) zero point of a matrix
    broadcasts along that axis."""
    xf = cast(ctx, x, DataType.FLOAT)
    if zero_point is None:
        return xf
    zp = cast(ctx, zero_point, DataType.FLOAT)
    if rank(zp) == 1 and zp.shape[0] != 1 and row_axis:
        zp = reshape(ctx, zp, [-1, 1])
    return elementwise(ctx, xf, zp, "SUB")


@importer("MatMulInteger", since=10)
def matmul_integer(ctx: ImportContext, node: Node):
    a = _centered(ctx, node.require(0), node.input(2), True)
    b = _centered(ctx, node.require(1), node.input(3), False)
    return [cast(ctx, matmul(ctx, a, b), DataType.INT32)]


@importer("QLinearMatMul", since=10)
def qlinear_matmul(ctx: ImportContext, node: Node):
    a_q, a_scale, b_q, b_scale, y_scale = (node.require(i) for i in (0, 1, 3, 4, 6))
    a_zp, b_zp, y_zp = (node.input(i) for i in (2, 5, 7))
    a = elementwise(ctx, _centered(ctx, a_q, a_zp, True),
                    _scale(ctx, a_scale, True), "PROD")
    b = elementwise(ctx, _centered(ctx, b_q, b_zp, False),
                    _scale(ctx, b_scale, False), "PROD")
    return [_requantized(ctx, node, matmul(ctx, a, b), y_scale, y_zp)]


def _requantized(ctx: ImportContext, node: Node, y, y_scale, y_zp):  # noqa: ANN001, ANN202
    """Real ``y`` quantized with ``y_scale`` and ``y_zp`` (INT8, or UINT8 carried in INT32
    as TensorRT's UINT8 is for I/O only) as QuantizeLinear does."""
    y_type = DataType.UINT8 if y_zp is not None and \
        ctx.onnx_types.get(y_zp) == onnx.TensorProto.UINT8 else None
    y_type = y_type or (y_zp.dtype if y_zp is not None else None)
    if y_type not in _RANGES:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DATATYPE, f"{node.op_type} needs an INT8 or UINT8 "
                                                       f"output zero point")
    y = elementwise(ctx, y, cast(ctx, y_scale, DataType.FLOAT), "DIV")
    y = elementwise(ctx, unary(ctx, y, "ROUND"), cast(ctx, y_zp, DataType.FLOAT), "SUM")
    lo, hi = _RANGES[y_type]
    y = elementwise(ctx, y, constant_like(ctx, lo, y), "MAX")
    y = elementwise(ctx, y, constant_like(ctx, hi, y), "MIN")
    return cast(ctx, y, y_type)


def _per_map(ctx: ImportContext, t, r: int):  # noqa: ANN001, ANN202
    """A per-output-map vector (FLOAT) shaped to broadcast over rank-``r`` weights
    ``[M, C, *kernel]``; a scalar as it is."""
    t = cast(ctx, t, DataType.FLOAT)
    if rank(t) == 1 and t.shape[0] != 1:
        return reshape(ctx, t, [-1] + [1] * (r - 1))
    return t


def _centered_weights(ctx: ImportContext, w, zero_point):  # noqa: ANN001, ANN202
    wf = cast(ctx, w, DataType.FLOAT)
    if zero_point is None:
        return wf
    return elementwise(ctx, wf, _per_map(ctx, zero_point, rank(w)), "SUB")


@importer("ConvInteger", since=10)
def conv_integer(ctx: ImportContext, node: Node):
    x, w, x_zp, w_zp = node.require(0), node.require(1), node.input(2), node.input(3)
    y = convolution(ctx, node, _centered(ctx, x, x_zp, False), _centered_weights(ctx, w, w_zp),
                    None)
    return [cast(ctx, y, DataType.INT32)]


@importer("QLinearConv", since=10)
def qlinear_conv(ctx: ImportContext, node: Node):
    x_q, x_scale, w_q, w_scale, y_scale = (node.require(i) for i in (0, 1, 3, 4, 6))
    x_zp, w_zp, y_zp, bias = (node.input(i) for i in (2, 5, 7, 8))
    x = elementwise(ctx, _centered(ctx, x_q, x_zp, False), cast(ctx, x_scale, DataType.FLOAT),
                    "PROD")
    w = elementwise(ctx, _centered_weights(ctx, w_q, w_zp), _per_map(ctx, w_scale, rank(w_q)),
                    "PROD")
    b = None
    if bias is not None:  # INT32 in units of x_scale * w_scale[m]
        b = elementwise(ctx, elementwise(ctx, cast(ctx, bias, DataType.FLOAT),
                                         cast(ctx, x_scale, DataType.FLOAT), "PROD"),
                        cast(ctx, w_scale, DataType.FLOAT), "PROD")
    return [_requantized(ctx, node, convolution(ctx, node, x, w, b), y_scale, y_zp)]


def _scale(ctx: ImportContext, scale, row_axis: bool):  # noqa: ANN001, ANN202
    s = cast(ctx, scale, DataType.FLOAT)
    if rank(s) == 1 and s.shape[0] != 1 and row_axis:
        s = reshape(ctx, s, [-1, 1])
    return s
