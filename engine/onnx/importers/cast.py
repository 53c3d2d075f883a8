"""Type conversions: Cast, CastLike and BitCast.

A Cast to a type TensorRT lacks (``tensors.EMULATED_CASTS``: FLOAT8E4M3FNUZ, FLOAT8E5M2,
FLOAT8E5M2FNUZ, FLOAT4E2M1, INT4, INT2, UINT2, UINT4) is emulated by the ``EmulatedCast_TRT``
plugin, with a warning starting "emulated": the values are rounded to the target's
representable set exactly as ONNX's Cast does (``saturate`` included) and carried in FLOAT
or INT8, which hold each of them exactly. A saturating Cast to FLOAT8E4M3FN clamps to its
largest finite value (448) before TensorRT's cast, as ONNX's ``saturate`` asks.

BitCast (same-width reinterpretation) is the ``BitCast_TRT`` plugin; a narrowed input (e.g.
DOUBLE carried in FLOAT) is converted back to its ONNX type first, which is exact only when
the narrowed values hold the original ones.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

import engine as trt
from engine.network.tensor import ITensor
from engine.onnx.compose import cast, library_plugin
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode, ImportFailure
from engine.onnx.registry import importer
from engine.onnx.tensors import (
    EMULATED_CASTS,
    NARROWED,
    TRT_TO_ONNX,
    onnx_type_name,
    trt_dtype,
)
from engine.types import DataType

_FP8_MAX = 448.0


def emulated_cast(ctx: ImportContext, x: ITensor, to: int, saturate: bool) -> ITensor:
    """``x`` cast to ONNX type ``to`` by the ``EmulatedCast_TRT`` plugin (FLOAT or INT8)."""
    ctx.warn(f"emulated: Cast to {onnx_type_name(to)}, which TensorRT does not support, is "
             f"computed by plugin EmulatedCast_TRT: values rounded to {onnx_type_name(to)} "
             f"and carried in a wider type")
    (out,) = library_plugin(ctx, "EmulatedCast_TRT", [x], to=to, saturate=int(saturate))
    ctx.onnx_types[out] = to
    return out


def _saturate_fp8(ctx: ImportContext, x: ITensor) -> ITensor:
    if x.dtype not in (DataType.FLOAT, DataType.HALF, DataType.BF16):
        return x
    net = ctx.network
    limit: np.ndarray = np.full((1,) * len(x.shape), _FP8_MAX, trt.nptype(x.dtype))
    high = net.add_elementwise(x, ctx.constant(limit), trt.ElementWiseOperation.MIN)
    low = net.add_elementwise(output_of(high), ctx.constant(-limit),
                              trt.ElementWiseOperation.MAX)
    return output_of(low)


def _cast_to(ctx: ImportContext, node: Node, x: ITensor, to: int) -> ITensor:
    saturate = bool(node.attr("saturate", 1))
    if ctx.onnx_types.get(x) == to:
        return output_of(ctx.network.add_identity(x))
    if to in EMULATED_CASTS:
        return emulated_cast(ctx, x, to, saturate)
    dtype = trt_dtype(to, "Cast's target 'to'", ctx.warn)
    if to == TensorProto.FLOAT8E4M3FN and saturate:
        x = _saturate_fp8(ctx, x)
    out = cast(ctx, x, dtype)
    return output_of(ctx.network.add_identity(out)) if out is x else out


@importer("Cast", since=1)
def cast_node(ctx: ImportContext, node: Node):
    return [_cast_to(ctx, node, node.require(0), int(node.attr("to")))]


@importer("CastLike", since=15)
def cast_like(ctx: ImportContext, node: Node):
    x, like = node.require(0), node.require(1)
    to = ctx.onnx_types.get(like, TRT_TO_ONNX.get(like.dtype))
    if to is None:
        node.unsupported(f"CastLike to {like.dtype}")
    return [_cast_to(ctx, node, x, to)]


@importer("BitCast", since=26)
def bit_cast(ctx: ImportContext, node: Node):
    from engine.plugins.library.bit_cast import TYPES

    x, to = node.require(0), int(node.attr("to"))
    source = ctx.onnx_types.get(x, TRT_TO_ONNX.get(x.dtype))
    for t in (source, to):
        if t not in TYPES:
            node.unsupported(f"BitCast of {onnx_type_name(t) if t else x.dtype}")
    assert source is not None  # None is not in TYPES
    if np.dtype(TYPES[source][0]).itemsize != np.dtype(TYPES[to][0]).itemsize:
        raise ImportFailure(ErrorCode.INVALID_NODE, f"BitCast from {onnx_type_name(source)} "
                            f"to {onnx_type_name(to)}: the widths differ")
    (out,) = library_plugin(ctx, "BitCast_TRT", [x], from_type=source, to=to)
    if to in NARROWED:
        ctx.warn(f"narrowed: BitCast's result of type {onnx_type_name(to)} is carried as "
                 f"{onnx_type_name(NARROWED[to])}")
        ctx.onnx_types[out] = to
    return [out]
