"""One-kernel row operations: softmax (with an optional scale and broadcast additive mask) and
layer normalization over the last axis, float32 inside.

Rows of up to 1,024 columns take one warp each, the row held in registers (one read, one
write; four rows per block). Longer rows take one thread block each and read the row three
times (maximum or mean, sum of exponentials or squared deviations, output), the later reads
mostly from cache. Block reductions use warp shuffles and 33 floats
of shared memory. HALF is converted with PTX ``cvt`` instructions, so the source needs no
CUDA headers. Kernels are compiled (NVRTC) once per element-type combination.
"""

from __future__ import annotations

import cupy
import numpy as np

from engine.errors import NetworkError
from engine.kernels.gpu.capabilities import both, device_types_only
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.math_reduction import ISoftMaxLayer
from engine.network.layers.spatial_norm import INormalizationLayer
from engine.network.shapes import axes_from_mask

HALF_PRELUDE = _PRELUDE = r"""
#define NEG_INF __int_as_float(0xff800000)
__device__ __forceinline__ float h2f(unsigned short h) {
    float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ unsigned short f2h(float f) {
    unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ float ld(float v) { return v; }
__device__ __forceinline__ float ld(unsigned short v) { return h2f(v); }
__device__ __forceinline__ void st(float* p, float v) { *p = v; }
__device__ __forceinline__ void st(unsigned short* p, float v) { *p = f2h(v); }
__device__ __forceinline__ float ld(signed char v) { return (float)v; }
__device__ __forceinline__ void st(signed char* p, float v) { *p = (signed char)v; }
__device__ __forceinline__ float warp_op(float v, int is_max) {
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, w) : v + w;
    }
    return v;
}
__device__ float block_op(float v, int is_max, float* buf) {
    v = warp_op(v, is_max);
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    __syncthreads();
    if (lane == 0) buf[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = lane < nw ? buf[lane] : (is_max ? NEG_INF : 0.f);
        v = warp_op(v, is_max);
        if (lane == 0) buf[32] = v;
    }
    __syncthreads();
    return buf[32];
}
"""

_SOFTMAX = r"""
extern "C" __global__ void engine_softmax_rows(
        const XT* x, const MT* mask, XT* y, int L, float scale, int has_mask,
        int d1, int d2, int d3, long long s0, long long s1, long long s2, long long s3,
        long long sl) {
    __shared__ float buf[33];
    long long row = blockIdx.x;
    const XT* xr = x + row * L;
    XT* yr = y + row * L;
    const MT* mr = mask;
    if (has_mask) {
        long long r = row;
        long long i3 = r % d3; r /= d3;
        long long i2 = r % d2; r /= d2;
        long long i1 = r % d1; r /= d1;
        mr = mask + r * s0 + i1 * s1 + i2 * s2 + i3 * s3;
    }
    float top = NEG_INF;
    for (int c = threadIdx.x; c < L; c += blockDim.x) {
        float v = ld(xr[c]) * scale + (has_mask ? ld(mr[c * sl]) : 0.f);
        top = fmaxf(top, v);
    }
    top = block_op(top, 1, buf);
    float total = 0.f;
    for (int c = threadIdx.x; c < L; c += blockDim.x) {
        float v = ld(xr[c]) * scale + (has_mask ? ld(mr[c * sl]) : 0.f);
        total += __expf(v - top);
    }
    total = block_op(total, 0, buf);
    float inv = 1.f / total;
    for (int c = threadIdx.x; c < L; c += blockDim.x) {
        float v = ld(xr[c]) * scale + (has_mask ? ld(mr[c * sl]) : 0.f);
        st(yr + c, __expf(v - top) * inv);
    }
}
"""

_LAYER_NORM = r"""
extern "C" __global__ void engine_layer_norm_rows(
        const XT* x, const GT* g, const GT* b, XT* y, int L, float eps, int g_step,
        int b_step) {
    __shared__ float buf[33];
    long long row = blockIdx.x;
    const XT* xr = x + row * L;
    XT* yr = y + row * L;
    float s = 0.f;
    for (int c = threadIdx.x; c < L; c += blockDim.x) s += ld(xr[c]);
    float mean = block_op(s, 0, buf) / L;
    float d = 0.f;
    for (int c = threadIdx.x; c < L; c += blockDim.x) {
        float v = ld(xr[c]) - mean;
        d += v * v;
    }
    float rstd = rsqrtf(block_op(d, 0, buf) / L + eps);
    for (int c = threadIdx.x; c < L; c += blockDim.x) {
        st(yr + c, (ld(xr[c]) - mean) * rstd * ld(g[c * g_step]) + ld(b[c * b_step]));
    }
}
"""

# Rows of up to WARP_ROW_LIMIT columns: one warp per row, the row held in registers (read
# once, written once), WARPS_PER_BLOCK rows per block.
_SOFTMAX_WARP = r"""
extern "C" __global__ void engine_softmax_warp(
        const XT* x, const MT* mask, XT* y, long long rows, int L, float scale, int has_mask,
        int d1, int d2, int d3, long long s0, long long s1, long long s2, long long s3,
        long long sl) {
    int lane = threadIdx.x & 31;
    long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    const XT* xr = x + row * L;
    XT* yr = y + row * L;
    const MT* mr = mask;
    if (has_mask) {
        long long r = row;
        long long i3 = r % d3; r /= d3;
        long long i2 = r % d2; r /= d2;
        long long i1 = r % d1; r /= d1;
        mr = mask + r * s0 + i1 * s1 + i2 * s2 + i3 * s3;
    }
    float v[COLS];
    float top = NEG_INF;
#pragma unroll
    for (int k = 0; k < COLS; ++k) {
        int c = lane + k * 32;
        v[k] = c < L ? ld(xr[c]) * scale + (has_mask ? ld(mr[c * sl]) : 0.f) : NEG_INF;
        top = fmaxf(top, v[k]);
    }
    top = warp_op(top, 1);
    float total = 0.f;
#pragma unroll
    for (int k = 0; k < COLS; ++k) {
        v[k] = lane + k * 32 < L ? __expf(v[k] - top) : 0.f;
        total += v[k];
    }
    float inv = 1.f / warp_op(total, 0);
#pragma unroll
    for (int k = 0; k < COLS; ++k) {
        int c = lane + k * 32;
        if (c < L) st(yr + c, v[k] * inv);
    }
}
"""

_LAYER_NORM_WARP = r"""
extern "C" __global__ void engine_layer_norm_warp(
        const XT* x, const GT* g, const GT* b, XT* y, long long rows, int L, float eps,
        int g_step, int b_step) {
    int lane = threadIdx.x & 31;
    long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    const XT* xr = x + row * L;
    XT* yr = y + row * L;
    float v[COLS];
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < COLS; ++k) {
        int c = lane + k * 32;
        v[k] = c < L ? ld(xr[c]) : 0.f;
        s += v[k];
    }
    float mean = warp_op(s, 0) / L;
    float d = 0.f;
#pragma unroll
    for (int k = 0; k < COLS; ++k) {
        float t = lane + k * 32 < L ? v[k] - mean : 0.f;
        d += t * t;
    }
    float rstd = rsqrtf(warp_op(d, 0) / L + eps);
#pragma unroll
    for (int k = 0; k < COLS; ++k) {
        int c = lane + k * 32;
        if (c < L) st(yr + c, (v[k] - mean) * rstd * ld(g[c * g_step]) + ld(b[c * b_step]));
    }
}
"""
# HALF rows of a multiple of 4 columns: the same, each lane moving 4 elements per 8-byte load
# and store (a quarter of the memory instructions).
_LAYER_NORM_WARP4 = r"""
extern "C" __global__ void engine_layer_norm_warp4(
        const unsigned long long* x, const GT* g, const GT* b, unsigned long long* y,
        long long rows, int L, float eps, int g_step, int b_step) {
    int lane = threadIdx.x & 31;
    long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    int L4 = L >> 2;
    const unsigned long long* xr = x + row * L4;
    unsigned long long* yr = y + row * L4;
    float v[COLS * 4];
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < COLS; ++k) {
        int c = lane + k * 32;
        unsigned long long raw = c < L4 ? xr[c] : 0ull;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            v[k * 4 + j] = h2f((unsigned short)(raw >> (16 * j)));
            s += v[k * 4 + j];
        }
    }
    float mean = warp_op(s, 0) / L;
    float d = 0.f;
#pragma unroll
    for (int k = 0; k < COLS; ++k) {
        if (lane + k * 32 < L4) {
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                float t = v[k * 4 + j] - mean;
                d += t * t;
            }
        }
    }
    float rstd = rsqrtf(warp_op(d, 0) / L + eps);
#pragma unroll
    for (int k = 0; k < COLS; ++k) {
        int c = lane + k * 32;
        if (c < L4) {
            unsigned long long packed = 0ull;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                int col = c * 4 + j;
                float o = (v[k * 4 + j] - mean) * rstd * ld(g[col * g_step]) +
                          ld(b[col * b_step]);
                packed |= (unsigned long long)f2h(o) << (16 * j);
            }
            yr[c] = packed;
        }
    }
}
"""
WARP_ROW_LIMIT = 1024
WARP4_ROW_LIMIT = 2048
WARPS_PER_BLOCK = 4

_C_TYPES = {"float32": "float", "float16": "unsigned short"}
_KERNELS: dict[tuple[str | int, ...], cupy.RawKernel] = {}


def row_types_fit(*dtypes: object) -> bool:
    """Whether the row kernels take these element types (FLOAT and HALF only)."""
    return all(np.dtype(d).name in _C_TYPES for d in dtypes)  # type: ignore[call-overload]


def _compiled(source: str, name: str, columns: int = 0, **types: np.dtype) -> cupy.RawKernel:
    key = (name, columns) + tuple(f"{k}={v.name}" for k, v in sorted(types.items()))
    found = _KERNELS.get(key)
    if found is None:
        defines = "".join(f"#define {k} {_C_TYPES[v.name]}\n" for k, v in types.items())
        defines += f"#define COLS {max(columns, 1)}\n"
        found = _KERNELS[key] = cupy.RawKernel(defines + _PRELUDE + source, name)
    return found


def _threads(length: int) -> int:
    """Threads per row: about four columns each, a whole number of warps, at most 1024."""
    columns = -(-length // 4)
    return min(1024, max(32, -(-columns // 32) * 32))


def softmax_rows(x: cupy.ndarray, scale: float = 1.0, mask: cupy.ndarray | None = None
                 ) -> cupy.ndarray:
    """``softmax(x * scale + mask)`` over the last axis, in ``x``'s type, as one kernel.
    ``mask`` broadcasts to ``x`` (rank 5 at most)."""
    x = x if x.flags.c_contiguous else x.copy()
    length = x.shape[-1] if x.ndim else 1
    rows = x.size // max(length, 1)
    out = cupy.empty(x.shape, x.dtype)
    if out.size == 0:
        return out
    if mask is None:
        lead, strides, last, masked, args_mask = (1, 1, 1), (0, 0, 0, 0), 0, 0, x
    else:
        view = cupy.broadcast_to(mask, x.shape)
        item = view.itemsize
        elem = [s // item for s in view.strides]
        pad = 5 - x.ndim
        shape = (1,) * pad + x.shape
        elem = [0] * pad + elem
        lead = (int(shape[1]), int(shape[2]), int(shape[3]))
        strides = (int(elem[0]), int(elem[1]), int(elem[2]), int(elem[3]))
        last = int(elem[4])
        masked, args_mask = 1, view
    tail = (np.int32(length), np.float32(scale), np.int32(masked),
            *(np.int32(d) for d in lead), *(np.int64(s) for s in strides), np.int64(last))
    if length <= WARP_ROW_LIMIT:
        kernel = _compiled(_SOFTMAX_WARP, "engine_softmax_warp", -(-length // 32),
                           XT=x.dtype, MT=args_mask.dtype)
        kernel((-(-rows // WARPS_PER_BLOCK),), (32 * WARPS_PER_BLOCK,),
               (x, args_mask, out, np.int64(rows), *tail))
    else:
        kernel = _compiled(_SOFTMAX, "engine_softmax_rows", XT=x.dtype, MT=args_mask.dtype)
        kernel((rows,), (_threads(length),), (x, args_mask, out, *tail))
    return out


def layer_norm_rows(x: cupy.ndarray, scale: cupy.ndarray, bias: cupy.ndarray, epsilon: float
                    ) -> cupy.ndarray:
    """Normalization over the last axis with per-column (or scalar) scale and bias, as one
    kernel; ``scale`` and ``bias`` have one element or one per column."""
    x = x if x.flags.c_contiguous else x.copy()
    length = x.shape[-1]
    out = cupy.empty(x.shape, x.dtype)
    if out.size == 0:
        return out
    kind = np.promote_types(scale.dtype, bias.dtype)
    g = cupy.ascontiguousarray(scale.astype(kind, copy=False)).reshape(-1)
    b = cupy.ascontiguousarray(bias.astype(kind, copy=False)).reshape(-1)
    rows = x.size // length
    tail = (np.int32(length), np.float32(epsilon), np.int32(g.size > 1), np.int32(b.size > 1))
    if x.dtype == np.float16 and length % 4 == 0 and length <= WARP4_ROW_LIMIT and \
            x.data.ptr % 8 == 0:
        kernel = _compiled(_LAYER_NORM_WARP4, "engine_layer_norm_warp4", -(-length // 128),
                           GT=kind)
        kernel((-(-rows // WARPS_PER_BLOCK),), (32 * WARPS_PER_BLOCK,),
               (x, g, b, out, np.int64(rows), *tail))
    elif length <= WARP_ROW_LIMIT:
        kernel = _compiled(_LAYER_NORM_WARP, "engine_layer_norm_warp", -(-length // 32),
                           XT=x.dtype, GT=kind)
        kernel((-(-rows // WARPS_PER_BLOCK),), (32 * WARPS_PER_BLOCK,),
               (x, g, b, out, np.int64(rows), *tail))
    else:
        kernel = _compiled(_LAYER_NORM, "engine_layer_norm_rows", XT=x.dtype, GT=kind)
        kernel((rows,), (_threads(length),), (x, g, b, out, *tail))
    return out


def per_column(shape: tuple[int, ...], length: int) -> bool:
    """Whether coefficients of ``shape`` hold one value, or one per column of rows of
    ``length`` (every other axis 1)."""
    size = int(np.prod(shape)) if shape else 1
    return size == 1 or (len(shape) > 0 and shape[-1] == length and size == length)


def _float(info: TensorInfo | None) -> bool:
    return info is not None and info.dtype.name in ("FLOAT", "HALF")


def _softmax_over_last_axis(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, ISoftMaxLayer)
    x = inputs[0]
    if not _float(x) or x is None or len(x.shape) == 0:
        return False
    return list(axes_from_mask(int(layer.axes), len(x.shape))) == [len(x.shape) - 1]


@kernel(LayerType.SOFTMAX, backend="gpu", name="gpu.softmax_rows",
        supports=both(device_types_only, _softmax_over_last_axis))
def softmax(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    return [softmax_rows(inputs[0])]


def _layer_norm_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, INormalizationLayer)
    if len(inputs) != 3 or not all(_float(i) for i in inputs):
        return False
    x, scale, bias = inputs
    assert x is not None and scale is not None and bias is not None
    rank = len(x.shape)
    if rank == 0 or int(layer.num_groups) > 1:
        return False
    try:
        layer.check_coefficients(inputs)
    except NetworkError:
        return False
    if list(axes_from_mask(int(layer.axes), rank)) != [rank - 1]:
        return False
    return per_column(tuple(scale.shape), x.shape[-1]) and \
        per_column(tuple(bias.shape), x.shape[-1])


@kernel(LayerType.NORMALIZATION, backend="gpu", name="gpu.layer_norm_rows",
        supports=both(device_types_only, _layer_norm_fits))
def layer_norm(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, INormalizationLayer)
    x, scale, bias = inputs
    return [layer_norm_rows(x, scale, bias, float(layer.epsilon))]
