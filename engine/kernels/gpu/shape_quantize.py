"""GPU kernels of ``IQuantizeLayer`` and ``IDequantizeLayer`` to and from INT8 (per tensor,
per channel or per block scales, as the CPU kernels); FP8's are in ``fp8.py`` (CuPy has no
FP8 arrays: the device holds its patterns), INT4 codes exist only as constant weights."""

from __future__ import annotations

from typing import Any

import cupy
import numpy as np

from engine.kernels.gpu.capabilities import device_types_only, memory_order
from engine.kernels.gpu.rows import HALF_PRELUDE
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.shape_quantize import IDequantizeLayer, IQuantizeLayer, scale_blocks
from engine.types import nptype

_quantize = cupy.ElementwiseKernel(
    "T x, float32 s, float32 z", "int8 q",
    "q = (signed char)fminf(127.f, fmaxf(-128.f, "
    "fminf(127.f, fmaxf(-128.f, rintf((float)x / s))) + z));", "engine_quantize_int8")
_dequantize = cupy.ElementwiseKernel(
    "Q q, float32 s, float32 z", "T x", "x = (T)(((float)q - z) * s);", "engine_dequantize")


# Per-tensor quantization of a dense tensor (the activations between quantized convolutions)
# walks memory in 16-byte vectors: 8 halves or 4 floats in, 8 or 4 codes out per step, with
# the ElementwiseKernel's arithmetic (so the codes are equal). CuPy's generic kernel indexes
# every element of a 4-D view and runs at a fraction of the memory bandwidth.
_VECTOR_SOURCE = HALF_PRELUDE + r"""
__device__ __forceinline__ signed char engine_code(float x, float s, float z) {
    return (signed char)fminf(127.f, fmaxf(-128.f, fminf(127.f, fmaxf(-128.f, rintf(x / s)))
                                                    + z));
}

#define ENGINE_QUANTIZE(NAME, T, LANES, OUT, TO_FLOAT)                                      \
extern "C" __global__ void NAME(const T* __restrict__ x, const float* __restrict__ scale,   \
                                const float* __restrict__ zero, signed char* __restrict__ q, \
                                long long n) {                                              \
    const float s = scale[0];                                                               \
    const float z = zero == nullptr ? 0.f : zero[0];                                        \
    const long long vectors = n / LANES;                                                    \
    const long long stride = (long long)gridDim.x * blockDim.x;                             \
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;               \
    for (long long v = first; v < vectors; v += stride) {                                   \
        uint4 raw = reinterpret_cast<const uint4*>(x)[v];                                   \
        const T* lane = reinterpret_cast<const T*>(&raw);                                   \
        union { OUT packed; signed char codes[LANES]; } out;                                \
        _Pragma("unroll")                                                                   \
        for (int k = 0; k < LANES; ++k) out.codes[k] = engine_code(TO_FLOAT(lane[k]), s, z);\
        reinterpret_cast<OUT*>(q)[v] = out.packed;                                          \
    }                                                                                       \
    for (long long i = vectors * LANES + first; i < n; i += stride)                         \
        q[i] = engine_code(TO_FLOAT(x[i]), s, z);                                           \
}

ENGINE_QUANTIZE(engine_quantize_half_vectors, unsigned short, 8, uint2, h2f)
ENGINE_QUANTIZE(engine_quantize_float_vectors, float, 4, unsigned int, (float))
"""
_VECTOR_KERNELS: dict[str, cupy.RawKernel] = {}
_VECTOR_NAMES = {np.dtype(np.float16): "engine_quantize_half_vectors",
                 np.dtype(np.float32): "engine_quantize_float_vectors"}


def _quantize_vectors(x: cupy.ndarray, scale: cupy.ndarray, zero: Any) -> cupy.ndarray | None:
    """``x`` (dense in memory order) quantized per tensor with the vector kernel, laid out as
    ``x``; None where it does not apply (another type, per-channel scales, unaligned)."""
    name = _VECTOR_NAMES.get(np.dtype(x.dtype))
    order = memory_order(x)
    dense = x if order is None else x.transpose(order)
    if name is None or scale.size != 1 or getattr(zero, "size", 1) != 1 or x.size == 0 or \
            not dense.flags.c_contiguous or dense.data.ptr % 16:
        return None
    kernel = _VECTOR_KERNELS.get(name)
    if kernel is None:
        kernel = _VECTOR_KERNELS[name] = cupy.RawKernel(_VECTOR_SOURCE, name)
    out = cupy.empty(dense.shape, cupy.int8)
    zero_ptr = zero if isinstance(zero, cupy.ndarray) else np.uint64(0)
    threads = 256
    blocks = int(min(-(-x.size // (16 // x.itemsize * threads)), 4096))
    kernel((max(blocks, 1),), (threads,), (dense, scale, zero_ptr, out, np.int64(x.size)))
    return out if order is None else out.transpose(tuple(np.argsort(order)))


def broadcast_scale(scale: cupy.ndarray, shape: tuple[int, ...], axis: int) -> cupy.ndarray:
    """``scale`` as float32, broadcastable against a tensor of ``shape``."""
    scale = scale.astype(cupy.float32)
    blocks = scale_blocks(shape, scale.shape, axis)
    if blocks is None:
        return scale.reshape(())
    if scale.ndim == 1 and (len(shape) != 1 or axis >= 0):
        return scale.reshape([-1 if i == axis else 1 for i in range(len(shape))])
    for dim, block in enumerate(blocks):
        scale = cupy.repeat(scale, block, axis=dim)
    return scale


def _int8_codes(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    code = inputs[0] if isinstance(layer, IDequantizeLayer) else None
    target = layer.to_type if isinstance(layer, IQuantizeLayer) else None  # type: ignore[attr-defined]
    if code is not None and code.dtype.name != "INT8":
        return False
    if target is not None and target.name != "INT8":
        return False
    return device_types_only(layer, inputs)


def _zero(inputs: list[cupy.ndarray | None], shape: tuple[int, ...], axis: int
          ) -> cupy.ndarray:
    zero_point = inputs[2] if len(inputs) > 2 else None
    if zero_point is None:
        return np.float32(0.0)  # type: ignore[return-value]
    return broadcast_scale(zero_point, shape, axis)


def quantize_pointwise(kernel: cupy.ElementwiseKernel, layer: IQuantizeLayer | IDequantizeLayer,
               inputs: list[cupy.ndarray | None], dtype: Any) -> cupy.ndarray:
    """``kernel(x, scale, zero)`` into a new ``dtype`` array laid out as ``x`` (a channels-last
    input gives a channels-last output, walked in memory order)."""
    x, scale = inputs[0], inputs[1]
    assert x is not None and scale is not None
    operands = [x, broadcast_scale(scale, x.shape, layer.axis), _zero(inputs, x.shape, layer.axis)]
    order = memory_order(x)
    if order is not None:
        operands = [a.transpose(order) if getattr(a, "ndim", 0) == x.ndim else a
                    for a in operands]
    out = cupy.empty(operands[0].shape, dtype)
    kernel(*operands, out)
    return out if order is None else out.transpose(tuple(np.argsort(order)))


@kernel(LayerType.QUANTIZE, backend="gpu", name="gpu.quantize_int8", supports=_int8_codes)
def quantize(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IQuantizeLayer)
    x, scale = inputs[0], inputs[1]
    assert x is not None and scale is not None
    if scale.size == 1:
        zero = _zero(inputs, x.shape, layer.axis)
        fast = _quantize_vectors(x, scale.astype(cupy.float32).reshape(()), zero)
        if fast is not None:
            return [fast]
    return [quantize_pointwise(_quantize, layer, inputs, cupy.int8)]


@kernel(LayerType.DEQUANTIZE, backend="gpu", name="gpu.dequantize_int8", supports=_int8_codes)
def dequantize(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IDequantizeLayer)
    return [quantize_pointwise(_dequantize, layer, inputs, nptype(layer.to_type))]
