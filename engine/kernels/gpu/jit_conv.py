"""Convolution tactics of TacticSource.JIT_CONVOLUTIONS: an implicit-GEMM kernel generated per
configuration and compiled with NVRTC (``cupy.RawKernel``) on its first use; no cuDNN.

The convolution is the GEMM ``Y[K, N] = A[K, C*R*S] @ B[C*R*S, N]``, N = batch * OH * OW,
reduction index ``crs = (c * R + r) * S + s``. A is the kernel, arranged once per layer on the
device and zero-padded to whole tiles. B, the im2col columns, is never materialized: each
block gathers its B tile from the NCHW input with the window arithmetic. A per-layer table
gives each reduction index its channel and dilated row and column offsets (no division in
the inner loop); padding, positions past N and indices past C*R*S read zero. Every thread
gathers one output position (one B column) for the whole kernel, so a warp reads 32
neighbouring positions.

A block computes 64 output channels x 128 positions with 256 threads. Tiles are
double-buffered in shared memory through registers: the next tile's loads are in flight
while the current one is multiplied, and one barrier per tile suffices.

- HALF: reduction tiles of 32, tensor cores through ``ldmatrix`` and
  ``mma.sync.m16n8k16`` (FP32 accumulation), inline PTX, so no CUDA header is needed; each
  of the 8 warps computes 32 x 32. A is ``[Kpad, CRSpad]``.
- FLOAT: reduction tiles of 16, FP32 FMA on the SIMT cores (exact FP32, no TF32), 4 x 8
  outputs per thread. A is ``[CRSpad, Kpad]`` (reduction-major) so a tile loads as float4
  rows.

The epilogue runs in the same kernel: the accumulators are staged through shared memory,
and each thread writes ``activation(acc + bias[k] + residual)`` along its output position
(neighbouring threads, neighbouring NCHW addresses). One kernel per (type, activation,
alpha, bias?, residual?), compiled when the builder first runs the tactic (or the engine's
eager warm-up), never inside a CUDA graph capture; CuPy keeps the compiled code on disk.
"""

from __future__ import annotations

import cupy
import numpy as np

from engine.errors import ExecutionError
from engine.kernels.gpu.capabilities import contiguous
from engine.kernels.gpu.fused_conv import uniform_float_2d_convolution
from engine.kernels.gpu.fused_pointwise import activation_expression
from engine.kernels.gpu.rows import HALF_PRELUDE
from engine.kernels.gpu.weights import derived_constant, device_weights
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.fused import IFusedConvolutionLayer, epilogue_of
from engine.network.layers.math_pointwise import ActivationType
from engine.network.layers.spatial_conv import IConvolutionLayer

# Output channels x positions per block, and the reduction per tile. The kernels' warp and
# thread layouts are written for exactly these sizes.
BLOCK_M, BLOCK_N, THREADS = 64, 128, 256
BLOCK_K = {"float16": 32, "float32": 16}
ACTIVATIONS = (ActivationType.RELU, ActivationType.LEAKY_RELU, ActivationType.SIGMOID,
               ActivationType.TANH, ActivationType.GELU_ERF, ActivationType.GELU_TANH)
_INT32_LIMIT = 2**31 - 1

_COMMON = r"""
#define ROWS (THREADS / BN)   // B-tile rows the block gathers in one pass
#define CS_LD (BN + 8)        // floats per row of the staged output tile

// The output position (B column) one thread gathers for the whole kernel.
struct Position { const T* image; int ih0, iw0; bool ok; };

__device__ __forceinline__ Position position_of(
        const T* x, int n, int N, int P, int OW, int C, int H, int W,
        int sh, int sw, int ph, int pw) {
    Position at;
    at.ok = n < N;
    int b = at.ok ? n / P : 0, p = at.ok ? n - b * P : 0;
    int oh = p / OW, ow = p - oh * OW;
    at.image = x + (long long)b * C * H * W;
    at.ih0 = oh * sh - ph;
    at.iw0 = ow * sw - pw;
    return at;
}

// Rows k0 + threadIdx.x / BN + ROWS * i of this thread's B column; taps[crs] is
// (c, r * dh, s * dw, 0).
template <int COUNT>
__device__ __forceinline__ void gather(T (&v)[COUNT], const Position& at,
                                       const int4* __restrict__ taps, int k0, int CRS,
                                       int H, int W) {
    const int row = threadIdx.x / BN;
#pragma unroll
    for (int i = 0; i < COUNT; ++i) {
        const int crs = k0 + row + ROWS * i;
        T value = (T)0;
        if (at.ok && crs < CRS) {
            const int4 tap = taps[crs];
            const int ih = at.ih0 + tap.y, iw = at.iw0 + tap.z;
            if ((unsigned)ih < (unsigned)H && (unsigned)iw < (unsigned)W)
                value = at.image[(tap.x * H + ih) * W + iw];
        }
        v[i] = value;
    }
}

// y[b, m, p] = activation(acc + bias[m] + residual[b, m, p]) for the block's staged tile;
// thread t writes column t % BN, rows t / BN + ROWS * i.
__device__ __forceinline__ void epilogue(const float* Cs, T* __restrict__ y,
                                         const T* __restrict__ bias,
                                         const T* __restrict__ res,
                                         int m0, int n0, int K, int N, int P) {
    const int column = threadIdx.x % BN, n = n0 + column;
    if (n >= N) return;
    const int b = n / P, p = n - b * P;
    const long long base = (long long)b * K * P + p;
#pragma unroll 4
    for (int i = 0; i < BM / ROWS; ++i) {
        const int row = threadIdx.x / BN + ROWS * i, m = m0 + row;
        if (m >= K) break;  // rows grow with i
        float v = Cs[row * CS_LD + column];
        const long long at = base + (long long)m * P;
        if (HAS_BIAS) v += ld(bias[m]);
        if (HAS_RESIDUAL) v += ld(res[at]);
        ACTIVATE
        st(y + at, v);
    }
}
"""

_HALF = r"""
#define A_LD (BK + 8)   // halves per A row: 80 bytes, so ldmatrix's 8 rows hit distinct banks
#define B_LD (BN + 8)   // halves per B row: 272 bytes, likewise
#define MAIN_BYTES (2 * BM * A_LD * 2 + 2 * BK * B_LD * 2)
#define STAGE_BYTES (BM * CS_LD * 4)
#define SMEM_BYTES (MAIN_BYTES > STAGE_BYTES ? MAIN_BYTES : STAGE_BYTES)

__device__ __forceinline__ unsigned shared_address(const void* p) {
    unsigned a;
    asm("{ .reg .u64 g; cvta.to.shared.u64 g, %1; cvt.u32.u64 %0, g; }" : "=r"(a) : "l"(p));
    return a;
}

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const T* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(p)) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const T* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(p)) : "memory");
}

__device__ __forceinline__ void mma_16816(float (&c)[4], const unsigned (&a)[4],
                                          const unsigned (&b)[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

extern "C" __global__ void __launch_bounds__(THREADS) engine_conv_implicit_gemm_half(
        const T* __restrict__ x, const uint4* __restrict__ w, const int4* __restrict__ taps,
        const T* __restrict__ bias, const T* __restrict__ res, T* __restrict__ y,
        int C, int H, int W, int K, int OW, int sh, int sw, int ph, int pw,
        int N, int P, int CRS, int CRSpad) {
    __shared__ __align__(16) unsigned char smem[SMEM_BYTES];
    T* As = (T*)smem;                  // [2][BM][A_LD]
    T* Bs = As + 2 * BM * A_LD;        // [2][BK][B_LD]
    float* Cs = (float*)smem;          // [BM][CS_LD], once the products are done
    const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
    const int wm = (warp & 1) * 32, wn = (warp >> 1) * 32;  // this warp's 32 x 32
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const Position at = position_of(x, n0 + t % BN, N, P, OW, C, H, W, sh, sw, ph, pw);
    // A: one 16-byte piece per thread and tile, row t / 4, halves (t % 4) * 8 ...
    const int a_row = t >> 2, a_col = (t & 3) * 8;
    const uint4* a_src = w + ((long long)(m0 + a_row) * CRSpad + a_col) / 8;
    const int b_row = t / BN, b_col = t % BN;
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
    uint4 a_next = a_src[0];
    T b_next[BK / ROWS];
    gather(b_next, at, taps, 0, CRS, H, W);
    *(uint4*)(As + a_row * A_LD + a_col) = a_next;
#pragma unroll
    for (int i = 0; i < BK / ROWS; ++i) Bs[(b_row + ROWS * i) * B_LD + b_col] = b_next[i];
    __syncthreads();
    const int tiles = CRSpad / BK;
    for (int tile = 0; tile < tiles; ++tile) {
        const int buf = tile & 1;
        const bool more = tile + 1 < tiles;
        if (more) {  // the next tile's loads, in flight during the products below
            a_next = a_src[(tile + 1) * (BK / 8)];
            gather(b_next, at, taps, (tile + 1) * BK, CRS, H, W);
        }
        const T* A = As + buf * BM * A_LD;
        const T* B = Bs + buf * BK * B_LD;
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            unsigned a[2][4], b[4][2];
#pragma unroll
            for (int i = 0; i < 2; ++i)  // rows wm + 16 i ..., lanes 0-15 rows, 16-31 k + 8
                ldmatrix_x4(a[i], A + (wm + i * 16 + (lane & 15)) * A_LD + kk + (lane >> 4) * 8);
#pragma unroll
            for (int j = 0; j < 2; ++j) {  // two n8 fragments: k rows, transposed
                unsigned r[4];
                ldmatrix_x4_trans(r, B + (kk + (lane & 15)) * B_LD + wn + j * 16 +
                                     (lane >> 4) * 8);
                b[2 * j][0] = r[0]; b[2 * j][1] = r[1];
                b[2 * j + 1][0] = r[2]; b[2 * j + 1][1] = r[3];
            }
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) mma_16816(acc[i][j], a[i], b[j]);
        }
        if (more) {  // the other buffer: its last readers passed the previous barrier
            const int next = buf ^ 1;
            *(uint4*)(As + next * BM * A_LD + a_row * A_LD + a_col) = a_next;
#pragma unroll
            for (int i = 0; i < BK / ROWS; ++i)
                Bs[next * BK * B_LD + (b_row + ROWS * i) * B_LD + b_col] = b_next[i];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {  // mma's C layout: rows lane / 4 (+ 8), cols 2 (lane % 4)
            const int row = wm + i * 16 + (lane >> 2), col = wn + j * 8 + (lane & 3) * 2;
            Cs[row * CS_LD + col] = acc[i][j][0];
            Cs[row * CS_LD + col + 1] = acc[i][j][1];
            Cs[(row + 8) * CS_LD + col] = acc[i][j][2];
            Cs[(row + 8) * CS_LD + col + 1] = acc[i][j][3];
        }
    __syncthreads();
    epilogue(Cs, y, bias, res, m0, n0, K, N, P);
}
"""

_FLOAT = r"""
#define MAIN_BYTES (2 * BK * BM * 4 + 2 * BK * BN * 4)
#define STAGE_BYTES (BM * CS_LD * 4)
#define SMEM_BYTES (MAIN_BYTES > STAGE_BYTES ? MAIN_BYTES : STAGE_BYTES)

extern "C" __global__ void __launch_bounds__(THREADS) engine_conv_implicit_gemm_float(
        const T* __restrict__ x, const float4* __restrict__ w, const int4* __restrict__ taps,
        const T* __restrict__ bias, const T* __restrict__ res, T* __restrict__ y,
        int C, int H, int W, int K, int OW, int sh, int sw, int ph, int pw,
        int N, int P, int CRS, int CRSpad, int Kpad) {
    __shared__ __align__(16) unsigned char smem[SMEM_BYTES];
    float* As = (float*)smem;          // [2][BK][BM]
    float* Bs = As + 2 * BK * BM;      // [2][BK][BN]
    float* Cs = (float*)smem;          // [BM][CS_LD], once the products are done
    const int t = threadIdx.x, tx = t & 15, ty = t >> 4;  // outputs: rows 4 ty, cols 4 tx
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const Position at = position_of(x, n0 + t % BN, N, P, OW, C, H, W, sh, sw, ph, pw);
    // A: one float4 per thread and tile, reduction row t / 16, channels (t % 16) * 4 ...
    const int a_row = t >> 4, a_col = (t & 15) * 4;
    const float4* a_src = w + ((long long)a_row * Kpad + m0 + a_col) / 4;
    const long long a_step = (long long)BK * Kpad / 4;
    const int b_row = t / BN, b_col = t % BN;
    float acc[4][8];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;
    float4 a_next = a_src[0];
    T b_next[BK / ROWS];
    gather(b_next, at, taps, 0, CRS, H, W);
    *(float4*)(As + a_row * BM + a_col) = a_next;
#pragma unroll
    for (int i = 0; i < BK / ROWS; ++i) Bs[(b_row + ROWS * i) * BN + b_col] = b_next[i];
    __syncthreads();
    const int tiles = CRSpad / BK;
    for (int tile = 0; tile < tiles; ++tile) {
        const int buf = tile & 1;
        const bool more = tile + 1 < tiles;
        if (more) {
            a_next = a_src[(tile + 1) * a_step];
            gather(b_next, at, taps, (tile + 1) * BK, CRS, H, W);
        }
        const float* A = As + buf * BK * BM;
        const float* B = Bs + buf * BK * BN;
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            const float4 a4 = *(const float4*)(A + kk * BM + ty * 4);
            const float4 b4 = *(const float4*)(B + kk * BN + tx * 4);
            const float4 c4 = *(const float4*)(B + kk * BN + BN / 2 + tx * 4);
            const float av[4] = {a4.x, a4.y, a4.z, a4.w};
            const float bv[8] = {b4.x, b4.y, b4.z, b4.w, c4.x, c4.y, c4.z, c4.w};
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        if (more) {
            const int next = buf ^ 1;
            *(float4*)(As + next * BK * BM + a_row * BM + a_col) = a_next;
#pragma unroll
            for (int i = 0; i < BK / ROWS; ++i)
                Bs[next * BK * BN + (b_row + ROWS * i) * BN + b_col] = b_next[i];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            Cs[(ty * 4 + i) * CS_LD + tx * 4 + j] = acc[i][j];
            Cs[(ty * 4 + i) * CS_LD + BN / 2 + tx * 4 + j] = acc[i][4 + j];
        }
    __syncthreads();
    epilogue(Cs, y, bias, res, m0, n0, K, N, P);
}
"""

_KERNELS: dict[tuple, cupy.RawKernel] = {}


def _compiled(dtype: np.dtype, activation: ActivationType | None, alpha: float, beta: float,
              has_bias: bool, has_residual: bool) -> cupy.RawKernel:
    """The kernel for one configuration, compiled on its first request (never during a
    CUDA graph capture: the first call of a layer is eager)."""
    half = np.dtype(dtype) == np.float16
    kind = None if activation is None else ActivationType(activation).name
    key = (half, kind, float(alpha), float(beta), has_bias, has_residual)
    compiled = _KERNELS.get(key)
    if compiled is None:
        assert not cupy.cuda.get_current_stream().is_capturing(), \
            "implicit-GEMM kernels must be compiled before a CUDA graph capture"
        activate = "" if kind is None else f"v = {activation_expression(kind, 'v', alpha, beta)};"
        defines = {"T": "unsigned short" if half else "float", "BM": BLOCK_M, "BN": BLOCK_N,
                   "THREADS": THREADS, "BK": BLOCK_K["float16" if half else "float32"],
                   "HAS_BIAS": int(has_bias), "HAS_RESIDUAL": int(has_residual),
                   "ACTIVATE": activate}
        source = "".join(f"#define {k} {v}\n" for k, v in defines.items()) + HALF_PRELUDE + \
            _COMMON + (_HALF if half else _FLOAT)
        name = "engine_conv_implicit_gemm_" + ("half" if half else "float")
        compiled = cupy.RawKernel(source, name)
        compiled.compile()
        _KERNELS[key] = compiled
    return compiled


def _ceil_to(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _arranged_kernel(layer: IConvolutionLayer, depth: int, dtype: np.dtype) -> cupy.ndarray:
    """A on the device: the kernel ``[K, C*R*S]`` zero-padded to whole tiles, HALF as
    ``[Kpad, CRSpad]``, FLOAT transposed to ``[CRSpad, Kpad]``."""
    dtype = np.dtype(dtype)
    maps = layer.num_output_maps
    shape = (_ceil_to(maps, BLOCK_M), _ceil_to(depth, BLOCK_K[dtype.name]))

    def make() -> np.ndarray:
        padded = np.zeros(shape, dtype)
        padded[:maps, :depth] = layer.kernel.numpy().reshape(maps, depth)
        return padded if dtype == np.float16 else padded.T

    return derived_constant(layer, ("implicit_gemm_kernel", dtype.name), make)


def _taps(layer: IConvolutionLayer, depth_pad: int) -> cupy.ndarray:
    """Per reduction index ``crs`` (to ``depth_pad``): ``(c, r * dh, s * dw, 0)``, int32."""
    (_, taps_w), (dh, dw) = tuple(layer.kernel_size_nd), tuple(layer.dilation_nd)
    taps = int(np.prod(tuple(layer.kernel_size_nd)))

    def make() -> np.ndarray:
        crs = np.arange(depth_pad)
        channel, tap = np.divmod(crs, taps)
        r, s = np.divmod(tap, taps_w)
        return np.stack([channel, r * dh, s * dw, np.zeros_like(crs)], 1).astype(np.int32)

    return derived_constant(layer, ("implicit_gemm_taps", depth_pad), make)


def _fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConvolutionLayer)
    x = inputs[0]
    if x is None or not uniform_float_2d_convolution(layer, inputs, ACTIVATIONS):
        return False
    if x.dtype.name == "HALF" and int(cupy.cuda.Device().compute_capability) < 80:
        return False  # mma.sync.m16n8k16 on f16 needs sm_80
    if any(d < 0 for d in x.shape):
        return True  # sizes are kernel arguments; _run checks the int32 limits
    return _sizes_fit(layer, x.shape)


def _sizes_fit(layer: IConvolutionLayer, shape: tuple[int, ...]) -> bool:
    """Whether the kernel's int32 index arithmetic holds for an input of ``shape``."""
    batch = int(np.prod(shape[:-3]))
    positions = int(np.prod([o for _, _, o in layer.geometry(shape[-2:])]))
    return int(np.prod(shape[-3:])) <= _INT32_LIMIT and \
        batch * positions <= _INT32_LIMIT - BLOCK_N


def _run(layer: IConvolutionLayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    """``activation(conv(x) + bias + residual)`` by one implicit-GEMM kernel, NCHW."""
    x = inputs[0]
    assert x is not None
    if not _sizes_fit(layer, x.shape):
        raise ExecutionError(f"layer '{layer.name}' ({layer.layer_type.name}): input "
                             f"{x.shape} is too large for the implicit-GEMM kernel's 32-bit "
                             f"indices")
    lead = x.shape[:-3]
    flat = contiguous(x).reshape((int(np.prod(lead)),) + x.shape[-3:])
    batch, channels, height, width = flat.shape
    (ph, _, oh), (pw, _, ow) = layer.geometry((height, width))
    maps = layer.num_output_maps
    out = cupy.empty((batch, maps, oh, ow), x.dtype)
    residual = inputs[3] if len(inputs) > 3 else None
    if out.size:
        depth = channels * int(np.prod(tuple(layer.kernel_size_nd)))
        a = _arranged_kernel(layer, depth, x.dtype)
        depth_pad = a.shape[1] if x.dtype == np.float16 else a.shape[0]
        bias = device_weights(layer.bias, x.dtype) if layer.bias.size else None
        if residual is not None:
            residual = contiguous(residual).reshape(out.shape)
        compiled = _compiled(x.dtype, *epilogue_of(layer), bias is not None,
                             residual is not None)
        (sh, sw) = tuple(layer.stride_nd)
        columns = batch * oh * ow
        args = [flat, a, _taps(layer, depth_pad), out if bias is None else bias,
                out if residual is None else residual, out] + [
            np.int32(v) for v in (channels, height, width, maps, ow, sh, sw, ph, pw, columns,
                                  oh * ow, depth, depth_pad)]
        if x.dtype != np.float16:
            args.append(np.int32(a.shape[1]))  # Kpad
        compiled((-(-columns // BLOCK_N), _ceil_to(maps, BLOCK_M) // BLOCK_M), (THREADS,),
                 tuple(args))
    return [out.reshape(lead + out.shape[1:])]


@kernel(LayerType.CONVOLUTION, backend="gpu", name="gpu.conv_jit_implicit_gemm",
        supports=_fits, source="JIT_CONVOLUTIONS")
def convolution(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IConvolutionLayer)
    return _run(layer, inputs)


@kernel(LayerType.FUSED_CONVOLUTION, backend="gpu", name="gpu.fused_conv_jit_implicit_gemm",
        supports=_fits, source="JIT_CONVOLUTIONS")
def fused_convolution(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedConvolutionLayer)
    return _run(layer, inputs)
