"""Values made from attributes or shapes: Constant, ConstantOfShape, Range, EyeLike."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

import engine as trt
from engine.onnx.compose import cast, constant_like, elementwise, rank, reshape, unary
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer
from engine.onnx.tensors import array_from_tensor, trt_dtype
from engine.types import DataType, nptype

# The types a LINSPACE fill produces.
LINSPACE_TYPES = (DataType.FLOAT, DataType.INT32, DataType.INT64)


@importer("Constant", since=1)
def constant(ctx: ImportContext, node: Node):
    attrs = node.attrs
    if "value" in attrs:
        value = array_from_tensor(attrs["value"], f"Constant '{node.name}'", ctx.warn)
    elif "sparse_value" in attrs:
        sparse: onnx.SparseTensorProto = attrs["sparse_value"]
        values = numpy_helper.to_array(sparse.values)
        indices = numpy_helper.to_array(sparse.indices)
        value = np.zeros(tuple(sparse.dims), values.dtype)
        if indices.ndim == 1:
            value.reshape(-1)[indices] = values
        else:
            value[tuple(indices.T)] = values
    elif "value_float" in attrs:
        value = np.array(attrs["value_float"], np.float32)
    elif "value_floats" in attrs:
        value = np.array(attrs["value_floats"], np.float32)
    elif "value_int" in attrs:
        value = np.array(attrs["value_int"], np.int64)
    elif "value_ints" in attrs:
        value = np.array(attrs["value_ints"], np.int64)
    else:
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR,
                  f"Constant with attributes {sorted(attrs)} (strings are not supported)")
    return [ctx.constant(value)]


@importer("ConstantOfShape", since=9)
def constant_of_shape(ctx: ImportContext, node: Node):
    fill = node.attrs.get("value")
    value = array_from_tensor(fill, "ConstantOfShape's value", ctx.warn) if fill is not None \
        else np.zeros((1,), np.float32)
    scalar = value.reshape(-1)[:1].reshape(())
    known = ctx.value(node.require(0))
    if known is not None:
        dims = [int(d) for d in known.reshape(-1)]
        return [ctx.constant(np.full(dims, scalar, value.dtype))]
    shape = cast(ctx, node.require(0), DataType.INT64)
    out_rank = shape.shape[0] if len(shape.shape) == 1 else -1
    if out_rank < 0:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                  "ConstantOfShape needs the length of its shape input at build time")
    fill_value = ctx.constant(scalar)
    if fill_value.dtype in LINSPACE_TYPES:
        # A ramp that does not climb: alpha = the value, a zero step along every axis.
        ramp = ctx.network.add_fill(trt.Dims([0] * out_rank), trt.FillOperation.LINSPACE,
                                    fill_value.dtype)
        ramp.set_input(0, shape)
        ramp.set_input(1, fill_value)
        ramp.set_input(2, ctx.constant(np.zeros((out_rank,) if out_rank else (),
                                                nptype(fill_value.dtype))))
        return [ramp.get_output(0)]
    # Other types: one element read out_rank times over, by a slice of stride 0.
    one = reshape(ctx, fill_value, [1] * out_rank)
    layer = ctx.network.add_slice(one, trt.Dims([0] * out_rank), trt.Dims([0] * out_rank),
                                  trt.Dims([0] * out_rank))
    layer.set_input(2, shape)
    out = output_of(layer)
    if fill_value in ctx.onnx_types:
        ctx.onnx_types[out] = ctx.onnx_types[fill_value]
    return [out]


@importer("Range", since=11)
def range_node(ctx: ImportContext, node: Node):
    inputs = [node.require(i) for i in range(3)]
    values = [ctx.value(t) for t in inputs]
    dtype = inputs[0].dtype
    if all(v is not None for v in values):
        start, limit, delta = (v.reshape(-1)[0] for v in values)  # type: ignore[union-attr]
        length = max(int(np.ceil((limit - start) / delta)), 0)
        return [ctx.constant((start + np.arange(length) * delta).astype(nptype(dtype)))]
    work = DataType.FLOAT if dtype in (DataType.HALF, DataType.BF16) else dtype
    if work not in LINSPACE_TYPES:
        dynamic = next(i for i, v in enumerate(values) if v is None)
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                  f"Range of {dtype.name} needs its inputs at build time (with run-time inputs "
                  f"FLOAT, HALF, BF16, INT32 and INT64 are supported)",
                  tensor=node.input_names[dynamic])
    start, limit, delta = (cast(ctx, t if rank(t) == 0 else reshape(ctx, t, []), work)
                           for t in inputs)
    # count = max(ceil((limit - start) / delta), 0), as onnx-tensorrt computes it.
    if work == DataType.FLOAT:
        quotient = elementwise(ctx, elementwise(ctx, limit, start, "SUB"), delta, "DIV")
        count = cast(ctx, unary(ctx, quotient, "CEIL"), DataType.INT64)
    else:
        # ceil(a / b) == -floor(-a / b), exact in integers.
        floored = elementwise(ctx, elementwise(ctx, start, limit, "SUB"), delta, "FLOOR_DIV")
        count = cast(ctx, elementwise(ctx, constant_like(ctx, 0, floored), floored, "SUB"),
                     DataType.INT64)
    count = elementwise(ctx, count, ctx.constant(np.array(0, np.int64)), "MAX")
    layer = ctx.network.add_fill(trt.Dims([0]), trt.FillOperation.LINSPACE, work)
    layer.set_input(0, reshape(ctx, count, [1]))
    layer.set_input(1, start)
    layer.set_input(2, delta)
    return [cast(ctx, output_of(layer), dtype)]


@importer("EyeLike", since=9)
def eye_like(ctx: ImportContext, node: Node):
    x = node.require(0)
    rows, cols = tuple(x.shape)
    if rows < 0 or cols < 0:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "EyeLike needs a static shape")
    dtype = trt_dtype(int(node.attr("dtype")), "EyeLike's dtype", ctx.warn) \
        if "dtype" in node.attrs \
        else x.dtype
    eye = np.eye(rows, cols, int(node.attr("k", 0)))
    return [ctx.constant(eye.astype(nptype(dtype)) if dtype != DataType.BOOL else eye > 0)]
