"""Values made from attributes or shapes: Constant, ConstantOfShape, Range, EyeLike."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from engine.onnx.context import ImportContext, Node
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer
from engine.onnx.tensors import array_from_tensor, trt_dtype
from engine.types import DataType, nptype


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
    shape = [int(d) for d in ctx.require_value(node, 0, "shape").reshape(-1)]
    fill = node.attrs.get("value")
    value = array_from_tensor(fill, "ConstantOfShape's value", ctx.warn) if fill is not None \
        else np.zeros((1,), np.float32)
    return [ctx.constant(np.full(shape, value.reshape(-1)[0], value.dtype))]


@importer("Range", since=11)
def range_node(ctx: ImportContext, node: Node):
    start, limit, delta = (ctx.require_value(node, i, name).reshape(-1)[0]
                           for i, name in enumerate(("start", "limit", "delta")))
    dtype = node.require(0).dtype
    count = max(int(np.ceil((limit - start) / delta)), 0)
    values = (start + np.arange(count) * delta).astype(nptype(dtype))
    return [ctx.constant(values)]


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
