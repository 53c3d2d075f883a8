"""Integer and quantized products: MatMulInteger, QLinearMatMul. Computed in float32 from the
dequantized (zero-point subtracted) integers, which is exact while the sums stay below 2**24,
then requantized (round half to even, saturate) as QuantizeLinear does."""

from __future__ import annotations

import onnx

from engine.onnx.compose import cast, constant_like, elementwise, rank, reshape, unary
from engine.onnx.context import ImportContext, Node
from engine.onnx.errors import ErrorCode
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
    a_q, a_scale, a_zp, b_q, b_scale, b_zp, y_scale, y_zp = (node.input(i) for i in range(8))
    # A UINT8 zero point arrives carried in INT32 (TensorRT's UINT8 is for I/O only).
    y_type = DataType.UINT8 if y_zp is not None and \
        ctx.onnx_types.get(y_zp) == onnx.TensorProto.UINT8 else None
    y_type = y_type or (y_zp.dtype if y_zp is not None else None)
    if y_type not in _RANGES:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DATATYPE, "QLinearMatMul needs an INT8 or UINT8 "
                                                       "output zero point")
    a = elementwise(ctx, _centered(ctx, a_q, a_zp, True),
                    _scale(ctx, a_scale, True), "PROD")
    b = elementwise(ctx, _centered(ctx, b_q, b_zp, False),
                    _scale(ctx, b_scale, False), "PROD")
    y = elementwise(ctx, matmul(ctx, a, b), cast(ctx, y_scale, DataType.FLOAT), "DIV")
    y = elementwise(ctx, unary(ctx, y, "ROUND"), cast(ctx, y_zp, DataType.FLOAT), "SUM")
    lo, hi = _RANGES[y_type]
    y = elementwise(ctx, y, constant_like(ctx, lo, y), "MAX")
    y = elementwise(ctx, y, constant_like(ctx, hi, y), "MIN")
    return [cast(ctx, y, y_type)]


def _scale(ctx: ImportContext, scale, row_axis: bool):  # noqa: ANN001, ANN202
    s = cast(ctx, scale, DataType.FLOAT)
    if rank(s) == 1 and s.shape[0] != 1 and row_axis:
        s = reshape(ctx, s, [-1, 1])
    return s
