"""GPU kernels of the math family: elementwise, select, activation, unary, parametric ReLU,
cast, matrix multiply (cuBLAS called directly so it can be captured), reduce and softmax.

As on the CPU, HALF and TensorRT's quantized INT8 are computed in float32 and rounded back;
INT32, INT64 and BOOL exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import cupy
import numpy as np

from engine.kernels.gpu import bf16
from engine.kernels.gpu.capabilities import (
    DEVICE_TYPES,
    both,
    contiguous,
    device_types_only,
    memory_order,
)
from engine.kernels.gpu.gemm import batched_matmul
from engine.kernels.gpu.rows import HALF_PRELUDE
from engine.kernels.gpu.storage import to_storage
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.math_contraction import IMatrixMultiplyLayer, MatrixOperation
from engine.network.layers.math_elementwise import (
    COMPARISON_OPERATIONS,
    LOGICAL_OPERATIONS,
    ElementWiseOperation,
    IElementWiseLayer,
)
from engine.network.layers.math_pointwise import (
    ActivationType,
    IActivationLayer,
    ICastLayer,
    IUnaryLayer,
    UnaryOperation,
)
from engine.network.layers.math_reduction import IReduceLayer, ISoftMaxLayer, ReduceOperation
from engine.network.shapes import axes_from_mask
from engine.types import DataType, nptype

_WIDENED = ("float16", "int8")


def widen(x: cupy.ndarray) -> cupy.ndarray:
    return x.astype(cupy.float32) if x.dtype.name in _WIDENED else x


def narrow(values: cupy.ndarray, dtype: cupy.dtype) -> cupy.ndarray:
    if dtype == cupy.int8 and values.dtype.kind == "f":
        return cupy.clip(cupy.rint(cupy.nan_to_num(values)), -128, 127).astype(cupy.int8)
    return values.astype(dtype, copy=False)


# -- elementwise --------------------------------------------------------------------------------
_divide_toward_zero = cupy.ElementwiseKernel(
    "T a, T b", "T q",
    "q = (b == 0) ? (T)0 : a / b;",  # C division truncates toward zero
    "engine_divide_toward_zero")

Binary = Callable[[cupy.ndarray, cupy.ndarray], cupy.ndarray]
_COMMON: dict[ElementWiseOperation, Binary] = {
    ElementWiseOperation.SUM: cupy.add,
    ElementWiseOperation.PROD: cupy.multiply,
    ElementWiseOperation.MAX: cupy.maximum,
    ElementWiseOperation.MIN: cupy.minimum,
    ElementWiseOperation.SUB: cupy.subtract,
    ElementWiseOperation.POW: cupy.power,
    ElementWiseOperation.AND: cupy.logical_and,
    ElementWiseOperation.OR: cupy.logical_or,
    ElementWiseOperation.XOR: cupy.logical_xor,
    ElementWiseOperation.EQUAL: cupy.equal,
    ElementWiseOperation.GREATER: cupy.greater,
    ElementWiseOperation.LESS: cupy.less,
}
_ON_FLOATS = {**_COMMON, ElementWiseOperation.DIV: cupy.divide,
              ElementWiseOperation.FLOOR_DIV: lambda a, b: cupy.floor(cupy.divide(a, b))}
_ON_INTEGERS = {**_COMMON, ElementWiseOperation.DIV: _divide_toward_zero,
                ElementWiseOperation.FLOOR_DIV: cupy.floor_divide}


@kernel(LayerType.ELEMENTWISE, backend="gpu", name="gpu.elementwise",
        supports=device_types_only)
def elementwise(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IElementWiseLayer)
    op = ElementWiseOperation(layer.op)
    in_type = inputs[0].dtype
    a, b = inputs
    # One rounding of a half result equals computing it in float32 and rounding back, except
    # where a second operation follows (FLOOR_DIV); quantized INT8 always computes in float.
    if in_type == cupy.int8 or op == ElementWiseOperation.FLOOR_DIV:
        a, b = widen(a), widen(b)
    table = _ON_INTEGERS if a.dtype.kind in "iub" else _ON_FLOATS
    result = table[op](a, b)
    boolean = op in LOGICAL_OPERATIONS or op in COMPARISON_OPERATIONS
    return [narrow(result, cupy.dtype(cupy.bool_) if boolean else in_type)]


@kernel(LayerType.SELECT, backend="gpu", name="gpu.select", supports=device_types_only)
def select(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    condition, then_values, else_values = inputs
    return [cupy.where(condition, then_values, else_values)]


# -- activation: one fused kernel for every type ---------------------------------------------
_activation = cupy.ElementwiseKernel(
    "T x, int32 kind, float32 alpha, float32 beta", "T y",
    """
    const float v = (float)x;
    float r;
    switch (kind) {
      case 0: r = v > 0.f ? v : 0.f; break;                                   // RELU
      case 1: r = 1.f / (1.f + expf(-v)); break;                              // SIGMOID
      case 2: r = tanhf(v); break;                                            // TANH
      case 3: r = v >= 0.f ? v : alpha * v; break;                            // LEAKY_RELU
      case 4: r = v >= 0.f ? v : alpha * (expf(v) - 1.f); break;              // ELU
      case 5: r = v > 0.f ? beta * v : beta * (alpha * expf(v) - alpha); break;  // SELU
      case 6: r = v / (1.f + fabsf(v)); break;                                // SOFTSIGN
      case 7: r = alpha * log1pf(expf(beta * v)); break;                      // SOFTPLUS
      case 8: r = fmaxf(alpha, fminf(beta, v)); break;                        // CLIP
      case 9: r = fmaxf(0.f, fminf(1.f, alpha * v + beta)); break;            // HARD_SIGMOID
      case 10: r = alpha * tanhf(beta * v); break;                            // SCALED_TANH
      case 11: r = v > alpha ? v : 0.f; break;                                // THRESHOLDED_RELU
      case 12: r = 0.5f * v * (1.f + erff(v * 0.70710678118654752f)); break;  // GELU_ERF
      default: r = 0.5f * v * (1.f + tanhf(0.79788456080286536f *
                                           (0.044715f * v * v * v + v)));     // GELU_TANH
    }
    y = (T)r;
    """,
    "engine_activation")


def _float_input(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return inputs[0] is not None and inputs[0].dtype.is_float


@kernel(LayerType.ACTIVATION, backend="gpu", name="gpu.activation_fused",
        supports=both(device_types_only, _float_input))
def activation(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IActivationLayer)
    kind = int(ActivationType(layer.type))
    return [_activation(inputs[0], kind, float(layer.alpha), float(layer.beta))]


# -- unary --------------------------------------------------------------------------------------
def _erf(x: cupy.ndarray) -> cupy.ndarray:
    from cupyx.scipy.special import erf

    return erf(x)


_UNARY: dict[UnaryOperation, Callable[[cupy.ndarray], cupy.ndarray]] = {
    UnaryOperation.EXP: cupy.exp, UnaryOperation.LOG: cupy.log, UnaryOperation.SQRT: cupy.sqrt,
    UnaryOperation.RECIP: cupy.reciprocal, UnaryOperation.ABS: cupy.abs,
    UnaryOperation.NEG: cupy.negative, UnaryOperation.SIN: cupy.sin, UnaryOperation.COS: cupy.cos,
    UnaryOperation.TAN: cupy.tan, UnaryOperation.SINH: cupy.sinh,
    UnaryOperation.COSH: cupy.cosh, UnaryOperation.ASIN: cupy.arcsin,
    UnaryOperation.ACOS: cupy.arccos, UnaryOperation.ATAN: cupy.arctan,
    UnaryOperation.ASINH: cupy.arcsinh, UnaryOperation.ACOSH: cupy.arccosh,
    UnaryOperation.ATANH: cupy.arctanh, UnaryOperation.CEIL: cupy.ceil,
    UnaryOperation.FLOOR: cupy.floor, UnaryOperation.ERF: _erf,
    UnaryOperation.NOT: cupy.logical_not, UnaryOperation.SIGN: cupy.sign,
    UnaryOperation.ROUND: cupy.rint, UnaryOperation.ISINF: cupy.isinf,
    UnaryOperation.ISNAN: cupy.isnan,
}


@kernel(LayerType.UNARY, backend="gpu", name="gpu.unary", supports=device_types_only)
def unary(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IUnaryLayer)
    op = UnaryOperation(layer.op)
    x = inputs[0]
    result = _UNARY[op](widen(x))
    boolean = op in (UnaryOperation.ISINF, UnaryOperation.ISNAN)
    return [narrow(result, cupy.dtype(cupy.bool_) if boolean else x.dtype)]


@kernel(LayerType.PARAMETRIC_RELU, backend="gpu", name="gpu.parametric_relu",
        supports=device_types_only)
def parametric_relu(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    x, slope = inputs
    wide = widen(x)
    return [narrow(cupy.where(wide >= 0, wide, wide * widen(slope)), x.dtype)]


def _casts_to_device_type(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, ICastLayer)
    return DataType(layer.to_type) in DEVICE_TYPES  # BF16 and FP8 have their own tactics


@kernel(LayerType.CAST, backend="gpu", name="gpu.cast",
        supports=both(device_types_only, _casts_to_device_type))
def cast(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, ICastLayer)
    target = cupy.dtype(nptype(layer.to_type))
    x = inputs[0]
    if target == cupy.bool_:
        return [x != 0]
    return [x.astype(target)]


def _casts_bf16(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, ICastLayer)
    x = inputs[0]
    if x is None or DataType.BF16 not in (x.dtype, DataType(layer.to_type)):
        return False
    others = [t for t in (x.dtype, DataType(layer.to_type)) if t != DataType.BF16]
    return all(t in DEVICE_TYPES and t != DataType.BOOL for t in others)


@kernel(LayerType.CAST, backend="gpu", name="gpu.cast_bf16", supports=_casts_bf16)
def cast_bf16(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    """Casts to and from BF16 (held as its 16-bit patterns, see ``bf16``): from BF16 widened
    exactly then cast, to BF16 rounded to nearest even (integers through FLOAT first)."""
    assert isinstance(layer, ICastLayer)
    x = inputs[0]
    if x.dtype == bf16.STORAGE:  # from BF16
        target = DataType(layer.to_type)
        return [x if target == DataType.BF16 else to_storage(bf16.widen(x), target)]
    if x.dtype not in (cupy.float32, cupy.float16):
        x = x.astype(cupy.float32)
    return [bf16.narrow(x)]


# -- matrix multiply ------------------------------------------------------------------------------
def _cublas_types(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    """FLOAT or HALF operands, or both BF16 (BF16 tensor cores, FP32 accumulation)."""
    if all(i is not None and i.dtype == DataType.BF16 for i in inputs):
        return all(t == DataType.BF16 for t in layer._output_types.values())
    return all(i is not None and i.dtype.name in ("FLOAT", "HALF") for i in inputs)


@kernel(LayerType.MATRIX_MULTIPLY, backend="gpu", name="gpu.matmul_cublas",
        supports=_cublas_types, source="CUBLAS")
def matrix_multiply(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IMatrixMultiplyLayer)
    a, b = inputs
    op0, op1 = MatrixOperation(layer.op0), MatrixOperation(layer.op1)
    if op0 == MatrixOperation.VECTOR:
        a = a[..., None, :]
    if op1 == MatrixOperation.VECTOR:
        b = b[..., :, None]
    result = batched_matmul(a, b, transpose_a=op0 == MatrixOperation.TRANSPOSE,
                            transpose_b=op1 == MatrixOperation.TRANSPOSE)
    if op1 == MatrixOperation.VECTOR:
        result = result[..., 0]
    if op0 == MatrixOperation.VECTOR:
        result = result[..., 0, :] if op1 != MatrixOperation.VECTOR else result[..., 0]
    return [contiguous(result)]


# -- reduce and softmax -------------------------------------------------------------------------
# A reduction whose axes are consecutive in memory, with at least _MIDDLE_MIN_INNER elements
# behind them (the spatial mean of a channels-last tensor: [N, H*W, C] -> [N, C]), as one
# kernel: a thread per kept element walks the reduced ones with stride ``inner``, so a warp
# reads consecutive memory; sums in float32. CuPy's reduction of that transposed view, after a
# float32 copy, was ~15x slower on ResNet-50's global average pool.
_REDUCE_MIDDLE = r"""
extern "C" __global__ void engine_reduce_middle(const T* x, T* y, long long outer,
                                                long long middle, long long inner) {
    const long long total = outer * inner;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long o = i / inner, c = i - o * inner;
        const T* p = x + o * middle * inner + c;
        float acc = OP == 2 ? NEG_INF : (OP == 3 ? -NEG_INF : 0.f);
        for (long long m = 0; m < middle; ++m) {
            float v = ld(p[m * inner]);
            if (OP == 2) acc = (v > acc || v != v) ? v : acc;
            else if (OP == 3) acc = (v < acc || v != v) ? v : acc;
            else acc += v;
        }
        st(y + i, OP == 1 ? acc / (float)middle : acc);
    }
}
"""
_MIDDLE_OPS = {ReduceOperation.SUM: 0, ReduceOperation.AVG: 1, ReduceOperation.MAX: 2,
               ReduceOperation.MIN: 3}
_MIDDLE_MIN_INNER = 16
_MIDDLE_KERNELS: dict[tuple[str, int], cupy.RawKernel] = {}


def _reduce_middle(x: cupy.ndarray, axes: tuple[int, ...], op: ReduceOperation, keep: bool
                   ) -> cupy.ndarray | None:
    """The reduction with _REDUCE_MIDDLE, or None where it does not apply."""
    if op not in _MIDDLE_OPS or x.dtype not in (cupy.float16, cupy.float32) or not axes or \
            x.size == 0:
        return None
    order = memory_order(x) or tuple(range(x.ndim))
    dense = x.transpose(order)
    where = sorted(order.index(a) for a in axes)
    if not dense.flags.c_contiguous or where != list(range(where[0], where[-1] + 1)):
        return None
    outer = int(np.prod(dense.shape[:where[0]], dtype=np.int64))
    middle = int(np.prod(dense.shape[where[0]:where[-1] + 1], dtype=np.int64))
    inner = int(np.prod(dense.shape[where[-1] + 1:], dtype=np.int64))
    if inner < _MIDDLE_MIN_INNER or middle == 0:
        return None
    key = (x.dtype.name, _MIDDLE_OPS[op])
    compiled = _MIDDLE_KERNELS.get(key)
    if compiled is None:
        ctype = "float" if x.dtype == cupy.float32 else "unsigned short"
        compiled = _MIDDLE_KERNELS[key] = cupy.RawKernel(
            f"#define T {ctype}\n#define OP {_MIDDLE_OPS[op]}\n" + HALF_PRELUDE + _REDUCE_MIDDLE,
            "engine_reduce_middle")
    out = cupy.empty(outer * inner, x.dtype)
    blocks = int(min(-(-(outer * inner) // 256), 132 * 32))
    compiled((blocks,), (256,), (x if x.dtype == cupy.float32 else x.view(cupy.uint16),
                                 out if x.dtype == cupy.float32 else out.view(cupy.uint16),
                                 np.int64(outer), np.int64(middle), np.int64(inner)))
    kept = [a for a in order if a not in axes]  # the kept axes, in memory order
    result = out.reshape([x.shape[a] for a in kept]).transpose(tuple(np.argsort(kept)))
    if keep:
        result = result.reshape([1 if a in axes else d for a, d in enumerate(x.shape)])
    return result


@kernel(LayerType.REDUCE, backend="gpu", name="gpu.reduce", supports=device_types_only)
def reduce(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IReduceLayer)
    x = inputs[0]
    axes = tuple(axes_from_mask(int(layer.axes), x.ndim))
    op = ReduceOperation(layer.op)
    keep = bool(layer.keep_dims)
    fast = _reduce_middle(x, axes, op, keep)
    if fast is not None:
        return [fast]
    wide = widen(x)
    if op == ReduceOperation.SUM:
        result = wide.sum(axis=axes, keepdims=keep)
    elif op == ReduceOperation.PROD:
        result = wide.prod(axis=axes, keepdims=keep)
    elif op == ReduceOperation.MAX:
        result = wide.max(axis=axes, keepdims=keep)
    elif op == ReduceOperation.MIN:
        result = wide.min(axis=axes, keepdims=keep)
    else:
        result = wide.mean(axis=axes, keepdims=keep)
    return [narrow(result, x.dtype)]


@kernel(LayerType.SOFTMAX, backend="gpu", name="gpu.softmax", supports=device_types_only)
def softmax(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, ISoftMaxLayer)
    x = inputs[0]
    (axis,) = axes_from_mask(int(layer.axes), x.ndim)
    wide = widen(x)
    shifted = cupy.exp(wide - wide.max(axis=axis, keepdims=True))
    return [narrow(shifted / shifted.sum(axis=axis, keepdims=True), x.dtype)]
