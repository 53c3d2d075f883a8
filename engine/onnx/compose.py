"""Network building blocks that several importers compose: NumPy-style broadcasting,
casts, reshapes, shape-tensor arithmetic. Each adds layers through TensorRT's API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

import engine as trt
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode, ImportFailure
from engine.types import DataType, nptype

if TYPE_CHECKING:
    from engine.network.tensor import ITensor


def rank(t: ITensor) -> int:
    return len(t.shape)


def normalize_axis(node: Node, axis: int, r: int) -> int:
    """``axis`` in [-r, r) as a non-negative axis; refuses the node otherwise."""
    if not -r <= axis < max(r, 1):
        node.fail(ErrorCode.INVALID_NODE, f"axis {axis} is out of range for rank {r}")
    return axis % r if r else 0


def axes_mask(axes: Sequence[int]) -> int:
    mask = 0
    for a in axes:
        mask |= 1 << int(a)
    return mask


def constant_like(ctx: ImportContext, value: Any, like: ITensor, r: int | None = None
                  ) -> ITensor:
    """A constant of ``like``'s dtype shaped to broadcast against it (all dims 1)."""
    arr: np.ndarray = np.asarray(value, dtype=nptype(like.dtype))
    dims = (1,) * (rank(like) if r is None else r)
    return ctx.constant(arr.reshape(dims) if arr.size == 1 else arr)


def reshape(ctx: ImportContext, x: ITensor, dims: Sequence[int] | ITensor,
            zero_is_placeholder: bool = False) -> ITensor:
    layer = ctx.network.add_shuffle(x)
    if isinstance(dims, trt.ITensor):
        layer.set_input(1, dims)
    else:
        layer.reshape_dims = trt.Dims([int(d) for d in dims])
    layer.zero_is_placeholder = zero_is_placeholder
    return output_of(layer)


def transpose(ctx: ImportContext, x: ITensor, perm: Sequence[int]) -> ITensor:
    layer = ctx.network.add_shuffle(x)
    layer.first_transpose = trt.Permutation(perm)
    return output_of(layer)


def prepend_ones(ctx: ImportContext, x: ITensor, count: int) -> ITensor:
    """``x`` with ``count`` leading dims of 1 (dynamic dims kept)."""
    if count <= 0:
        return x
    value = ctx.value(x)
    if value is not None:
        return ctx.constant(value.reshape((1,) * count + value.shape))
    dims = tuple(x.shape)
    if all(d >= 0 for d in dims):
        return reshape(ctx, x, [1] * count + list(dims))
    return reshape(ctx, x, concat(ctx, [int64_vector(ctx, [1] * count), shape_of(ctx, x)]))


def broadcast(ctx: ImportContext, *tensors: ITensor) -> list[ITensor]:
    """The tensors brought to one rank (leading 1s), as TensorRT's elementwise needs."""
    r = max(rank(t) for t in tensors)
    return [prepend_ones(ctx, t, r - rank(t)) for t in tensors]


# ONNX computes 8-bit integers exactly (wrapping); the engine's INT8 is TensorRT's quantized
# type (rounded, saturated) and it has no UINT8 arithmetic: both are computed in INT32.
SMALL_INTEGERS = frozenset({DataType.INT8, DataType.UINT8})
_BOOLEAN_RESULTS = frozenset({"EQUAL", "GREATER", "LESS", "AND", "OR", "XOR"})


def elementwise(ctx: ImportContext, a: ITensor, b: ITensor, op: str) -> ITensor:
    """``a op b`` with NumPy broadcasting; ``op`` names an ElementWiseOperation member."""
    a, b = broadcast(ctx, a, b)
    if a.dtype in SMALL_INTEGERS and a.dtype == b.dtype:
        result = elementwise(ctx, cast(ctx, a, DataType.INT32), cast(ctx, b, DataType.INT32), op)
        return result if op in _BOOLEAN_RESULTS else cast(ctx, result, a.dtype)
    return output_of(ctx.network.add_elementwise(a, b, trt.ElementWiseOperation.__members__[op]))


def unary(ctx: ImportContext, x: ITensor, op: str) -> ITensor:
    return output_of(ctx.network.add_unary(x, trt.UnaryOperation.__members__[op]))


def activation(ctx: ImportContext, x: ITensor, kind: str, alpha: float | None = None,
               beta: float | None = None) -> ITensor:
    layer = ctx.network.add_activation(x, trt.ActivationType.__members__[kind])
    if alpha is not None:
        layer.alpha = float(alpha)
    if beta is not None:
        layer.beta = float(beta)
    return output_of(layer)


def cast(ctx: ImportContext, x: ITensor, dtype: DataType) -> ITensor:
    if x.dtype == dtype:
        return x
    value = ctx.value(x)
    if value is not None and dtype != DataType.INT4:
        return ctx.constant(value.astype(nptype(dtype)))
    elements = ctx.elements(x)
    if elements is not None and dtype in (DataType.INT32, DataType.INT64):
        return ctx.note_elements(output_of(ctx.network.add_cast(x, dtype)), elements)
    through_float = (DataType.UINT8, DataType.FLOAT, DataType.HALF)
    if DataType.UINT8 in (x.dtype, dtype) and not {x.dtype, dtype} <= set(through_float):
        # TensorRT's UINT8 is for network I/O, cast to or from FLOAT or HALF only (exact).
        return cast(ctx, cast(ctx, x, DataType.FLOAT), dtype)
    return output_of(ctx.network.add_cast(x, dtype))


def shape_of(ctx: ImportContext, x: ITensor) -> ITensor:
    """The shape of ``x`` as a 1-D INT64 tensor (a constant when it is static)."""
    if all(d >= 0 for d in x.shape):
        return ctx.constant(np.array(tuple(x.shape), np.int64))
    return ctx.note_elements(output_of(ctx.network.add_shape(x)),
                             tuple(d if d >= 0 else None for d in x.shape))


def gather(ctx: ImportContext, x: ITensor, indices: ITensor | Sequence[int],
           axis: int = 0) -> ITensor:
    if not isinstance(indices, trt.ITensor):
        value = ctx.value(x)
        if value is not None:
            return ctx.constant(np.take(value, np.asarray(indices, np.int64), axis=axis))
        picked = np.asarray(indices, np.int64)
        indices = ctx.constant(picked)
    return gathered(ctx, x, indices, axis)


def gathered(ctx: ImportContext, x: ITensor, indices: ITensor, axis: int = 0) -> ITensor:
    """A Gather layer's output; elements of a shape vector picked by known indices stay
    known (``ImportContext.elements``): Shape(x)[1] of a static dim is a constant."""
    out = output_of(ctx.network.add_gather(x, indices, axis))
    elements, picked = ctx.elements(x), ctx.value(indices)
    if elements is None or picked is None or rank(x) != 1 or picked.ndim > 1:
        return out
    n = len(elements)
    if not all(-n <= int(i) < n for i in picked.reshape(-1)):
        return out
    return ctx.note_elements(out, tuple(elements[int(i)] for i in picked.reshape(-1)))


def concat(ctx: ImportContext, tensors: Sequence[ITensor], axis: int = 0) -> ITensor:
    values = [ctx.value(t) for t in tensors]
    if all(v is not None for v in values):
        return ctx.constant(np.concatenate(values, axis=axis))  # type: ignore[arg-type]
    if len(tensors) == 1:
        return tensors[0]
    layer = ctx.network.add_concatenation(list(tensors))
    layer.axis = axis
    parts = [ctx.elements(t) for t in tensors]
    if rank(tensors[0]) == 1 and all(p is not None for p in parts):
        return ctx.note_elements(output_of(layer), sum(parts, ()))  # type: ignore[arg-type]
    return output_of(layer)


def dims_of(ctx: ImportContext, x: ITensor, start: int, stop: int | None = None
            ) -> ITensor:
    """Dims ``start:stop`` of ``x``'s shape, as a 1-D INT64 tensor."""
    r = rank(x)
    stop = r if stop is None else stop
    return gather(ctx, shape_of(ctx, x), list(range(start, stop)))


def int64_vector(ctx: ImportContext, values: Sequence[int]) -> ITensor:
    return ctx.constant(np.asarray(values, np.int64).reshape(-1))


def reduce(ctx: ImportContext, x: ITensor, op: str, axes: Sequence[int], keepdims: bool
           ) -> ITensor:
    layer = ctx.network.add_reduce(x, trt.ReduceOperation.__members__[op], axes_mask(axes),
                                   bool(keepdims))
    return output_of(layer)


def flatten_2d(ctx: ImportContext, x: ITensor, axis: int) -> ITensor:
    """``x`` as a matrix: dims before ``axis`` multiplied into rows, the rest into columns."""
    r = rank(x)
    shape = tuple(x.shape)
    if all(d >= 0 for d in shape):
        rows = int(np.prod(shape[:axis], dtype=np.int64))
        return reshape(ctx, x, [rows, -1 if rows else int(np.prod(shape[axis:]))])
    sizes = shape_of(ctx, x)
    head = reduce_prod_1d(ctx, gather(ctx, sizes, list(range(0, axis))) if axis else
                          int64_vector(ctx, [1]))
    tail = reduce_prod_1d(ctx, gather(ctx, sizes, list(range(axis, r))) if axis < r else
                          int64_vector(ctx, [1]))
    return reshape(ctx, x, concat(ctx, [head, tail]))


def reduce_prod_1d(ctx: ImportContext, v: ITensor) -> ITensor:
    """The product of a 1-D INT64 tensor, as a 1-element 1-D tensor."""
    value = ctx.value(v)
    if value is not None:
        return int64_vector(ctx, [int(np.prod(value))])
    return reduce(ctx, v, "PROD", [0], True)


def squeeze(ctx: ImportContext, x: ITensor, axes: Sequence[int]) -> ITensor:
    """``x`` without the (size-1) dims ``axes`` (non-negative)."""
    keep = [i for i in range(rank(x)) if i not in set(axes)]
    shape = tuple(x.shape)
    if all(shape[i] >= 0 for i in keep):
        return reshape(ctx, x, [shape[i] for i in keep])
    return reshape(ctx, x, gather(ctx, shape_of(ctx, x), keep) if keep else
                   ctx.constant(np.zeros((0,), np.int64)))


def unsqueeze(ctx: ImportContext, x: ITensor, axes: Sequence[int]) -> ITensor:
    """``x`` with dims of 1 inserted at ``axes`` (non-negative, in the output's rank)."""
    out_rank = rank(x) + len(axes)
    value = ctx.value(x)
    if value is not None:
        return ctx.constant(np.expand_dims(value, tuple(axes)) if axes else value)
    dims: list[Any] = []
    source = iter(range(rank(x)))
    for i in range(out_rank):
        dims.append(1 if i in set(axes) else ("x", next(source)))
    shape = tuple(x.shape)
    if all(shape[d[1]] >= 0 for d in dims if d != 1):
        return reshape(ctx, x, [1 if d == 1 else shape[d[1]] for d in dims])
    sizes = shape_of(ctx, x)
    parts = [int64_vector(ctx, [1]) if d == 1 else gather(ctx, sizes, [d[1]]) for d in dims]
    return reshape(ctx, x, concat(ctx, parts))


def library_plugin(ctx: ImportContext, name: str, inputs: Sequence[ITensor],
                   **fields: int | float | Sequence[int]) -> list[ITensor]:
    """The outputs of shipped plugin ``name`` (``engine.plugins.library``) on ``inputs``;
    ``fields`` become INT32 or FLOAT32 plugin fields (a sequence of ints, an INT32 array)."""
    creator = trt.get_plugin_registry().get_creator(name, "1", "")
    if creator is None:
        raise ImportFailure(ErrorCode.UNSUPPORTED_NODE, f"plugin '{name}' (version 1) is not "
                            f"registered: it ships with the engine, but was deregistered")
    collection = trt.PluginFieldCollection([
        trt.PluginField(key, np.array([value], np.float32), trt.PluginFieldType.FLOAT32)
        if isinstance(value, float) else
        trt.PluginField(key, np.array(value, np.int32).reshape(-1),
                        trt.PluginFieldType.INT32)
        for key, value in fields.items()])
    plugin = creator.create_plugin(name, collection, trt.TensorRTPhase.BUILD)
    if plugin is None:
        raise ImportFailure(ErrorCode.UNSUPPORTED_NODE, f"plugin '{name}': its creator made "
                            f"no plugin")
    layer = ctx.network.add_plugin_v3(list(inputs), [], plugin)
    return [output_of(layer, i) for i in range(layer.num_outputs)]
