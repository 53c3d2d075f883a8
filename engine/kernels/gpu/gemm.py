"""Batched GEMM through cuBLAS (``cublasGemmStridedBatchedEx``), capturable into CUDA graphs.

CuPy refuses every cuBLAS call while a stream is being captured (its ``setStream`` raises
"calling cuBLAS API during stream capture is currently unsupported"), although cuBLAS itself
supports capture. So this module calls the cuBLAS library that CuPy has loaded through
``ctypes``, with its own handle and workspace per thread and stream (a workspace must not be
shared by work that may run at the same time). FP32 runs in FP32 (no TF32); FP16
accumulates in FP32; INT8 accumulates exactly in INT32 (``int8_matmul_nt``).
"""

from __future__ import annotations

import ctypes
import threading

import cupy
import numpy as np

from engine.kernels.gpu.capabilities import contiguous
from engine.kernels.math_mode import tf32_allowed

# CUDA_R_32F, CUDA_R_16F, and CUDA_R_16BF for BF16 (held as uint16 patterns, see bf16.py)
_CUDA_TYPES = {np.dtype(np.float32): 0, np.dtype(np.float16): 2, np.dtype(np.uint16): 14}
_COMPUTE_32F = 68  # CUBLAS_COMPUTE_32F
_COMPUTE_32F_FAST_TF32 = 77  # CUBLAS_COMPUTE_32F_FAST_TF32: FP32 products on TF32 tensor cores
_GEMM_DEFAULT = -1
_OP_N, _OP_T = 0, 1
WORKSPACE_BYTES = 32 << 20  # cuBLAS's recommendation for Hopper
_CUDA_R_8I, _CUDA_R_32I, _COMPUTE_32I = 3, 10, 72
# alpha and beta are read from host memory when the call is enqueued (captured by value).
_ONE = np.ones((), np.float32)
_ZERO = np.zeros((), np.float32)
_ONE_I32 = np.ones((), np.int32)  # CUBLAS_COMPUTE_32I takes int32 alpha and beta
_ZERO_I32 = np.zeros((), np.int32)


def _load_cublas() -> ctypes.CDLL:
    """The cuBLAS library CuPy uses (found among the process's mapped files once CuPy has
    loaded it), with the prototypes this module calls."""
    cupy.cuda.device.get_cublas_handle()  # makes CuPy load cuBLAS
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "libcublas.so" in line}
    path = next((p for p in sorted(paths) if "libcublasLt" not in p), None)
    if path is None:
        raise RuntimeError("cuBLAS is not loaded in this process")
    lib = ctypes.CDLL(path)
    p, i, ll = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong
    lib.cublasCreate_v2.argtypes = [ctypes.POINTER(p)]
    lib.cublasSetStream_v2.argtypes = [p, p]
    lib.cublasSetWorkspace_v2.argtypes = [p, p, ctypes.c_size_t]
    lib.cublasGemmStridedBatchedEx.argtypes = [
        p, i, i, i, i, i, p, p, i, i, ll, p, i, i, ll, p, p, i, i, ll, i, i, i]
    return lib


class _Handles(threading.local):
    """One cuBLAS handle per thread and device; one workspace per stream, so that work on
    different streams never shares one (cuBLASLt's tactic uses the same, ``stream_workspace``)."""

    def __init__(self) -> None:
        self.handles: dict[int, ctypes.c_void_p] = {}
        self.workspaces: dict[tuple[int, int], cupy.cuda.Memory] = {}


_LIB: ctypes.CDLL | None = None
_HANDLES = _Handles()


def _check(status: int, call: str) -> None:
    if status != 0:
        raise RuntimeError(f"{call} failed with cuBLAS status {status}")


def _handle_for(stream: cupy.cuda.Stream) -> ctypes.c_void_p:
    """This thread's handle, set to ``stream`` and to that stream's workspace."""
    global _LIB
    if _LIB is None:
        _LIB = _load_cublas()
    device = cupy.cuda.Device().id
    handle = _HANDLES.handles.get(device)
    if handle is None:
        handle = ctypes.c_void_p()
        _check(_LIB.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
        _HANDLES.handles[device] = handle
    workspace = stream_workspace(stream)
    _check(_LIB.cublasSetStream_v2(handle, stream.ptr), "cublasSetStream")
    _check(_LIB.cublasSetWorkspace_v2(handle, workspace.ptr, WORKSPACE_BYTES),
           "cublasSetWorkspace")
    return handle


def stream_workspace(stream: cupy.cuda.Stream) -> cupy.cuda.Memory:
    """This thread's ``WORKSPACE_BYTES`` workspace for ``stream`` on the current device, made
    on first use. cuBLAS and cuBLASLt (``cublaslt.py``) share it: work enqueued on one stream
    runs in order, so their kernels never use it at the same time."""
    key = (cupy.cuda.Device().id, int(stream.ptr))
    workspace = _HANDLES.workspaces.get(key)
    if workspace is None:
        # Plain device memory, not from a pool: a graph captured with it keeps using it.
        workspace = _HANDLES.workspaces[key] = cupy.cuda.Memory(WORKSPACE_BYTES)
    return workspace


def release_stream(stream: cupy.cuda.Stream) -> None:
    """Drop this thread's cuBLAS / cuBLASLt workspace for ``stream`` (a stream that is going
    away: the builder's timing streams); the next GEMM on a stream of that address makes a new
    one."""
    _HANDLES.workspaces.pop((cupy.cuda.Device().id, int(stream.ptr)), None)


GEMM_TYPES = frozenset(_CUDA_TYPES)


def batched_matmul(a: cupy.ndarray, b: cupy.ndarray, *, transpose_a: bool = False,
                   transpose_b: bool = False) -> cupy.ndarray:
    """``op(a) @ op(b)`` over the last two axes, batch axes broadcast as in NumPy; ``op``
    swaps the last two axes when ``transpose_*`` is set. FP32, FP16 or BF16 (uint16
    patterns), both the same, FP32 accumulation; FP32 on TF32 tensor cores where the math
    mode allows it (``math_mode.tf32_allowed``)."""
    assert a.dtype == b.dtype and a.dtype in _CUDA_TYPES, (a.dtype, b.dtype)
    a, transpose_a = _matrix_operand(a, transpose_a)
    b, transpose_b = _matrix_operand(b, transpose_b)
    rows, depth = (a.shape[-1], a.shape[-2]) if transpose_a else a.shape[-2:]
    depth_b, cols = (b.shape[-1], b.shape[-2]) if transpose_b else b.shape[-2:]
    assert depth == depth_b, (a.shape, b.shape)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    count = int(np.prod(batch, dtype=np.int64))
    out = cupy.empty(batch + (rows, cols), a.dtype)
    if out.size == 0:
        return out
    if depth == 0:
        out.fill(0)
        return out
    a, stride_a = batched_operand(a, batch)
    b, stride_b = batched_operand(b, batch)
    # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: pass B first.
    cuda_type = _CUDA_TYPES[a.dtype]
    handle = _handle_for(cupy.cuda.get_current_stream())
    assert _LIB is not None
    status = _LIB.cublasGemmStridedBatchedEx(
        handle,
        _OP_T if transpose_b else _OP_N, _OP_T if transpose_a else _OP_N,
        cols, rows, depth,
        _ONE.ctypes.data,
        b.data.ptr, cuda_type, b.shape[-1], stride_b,
        a.data.ptr, cuda_type, a.shape[-1], stride_a,
        _ZERO.ctypes.data,
        out.data.ptr, cuda_type, cols, rows * cols,
        count, _COMPUTE_32F_FAST_TF32 if a.dtype == np.float32 and tf32_allowed()
        else _COMPUTE_32F, _GEMM_DEFAULT)
    _check(status, "cublasGemmStridedBatchedEx")
    return out


def _matrix_operand(x: cupy.ndarray, transpose: bool) -> tuple[cupy.ndarray, bool]:
    """A view with its last two axes swapped over C-order memory (a transposed matrix, as a
    shuffle hands ``k^T`` over) is read as that memory with the other transpose flag: no
    copy."""
    if x.ndim >= 2 and not x.flags.c_contiguous:
        swapped = x.swapaxes(-1, -2)
        if swapped.flags.c_contiguous:
            return swapped, not transpose
    return x, transpose


def batched_operand(x: cupy.ndarray, batch: tuple[int, ...]) -> tuple[cupy.ndarray, int]:
    """``x`` contiguous, and the element stride between its matrices over ``batch`` (0 when
    one matrix serves the whole batch; a broadcast copy otherwise)."""
    matrix = x.shape[-2] * x.shape[-1]
    if int(np.prod(x.shape[:-2], dtype=np.int64)) == 1:
        return contiguous(x), 0
    if tuple(x.shape[:-2]) != tuple(batch):
        x = cupy.broadcast_to(x, batch + x.shape[-2:])
        return x.copy(), matrix
    return contiguous(x), matrix


def int8_matmul_nt(a: cupy.ndarray, b: cupy.ndarray) -> cupy.ndarray:
    """``a @ b^T`` over the last two axes, exact: int8 ``a`` ``[..., M, K]`` and ``b``
    ``[..., N, K]`` (both K-contiguous) to int32 ``[..., M, N]``, batch axes broadcast.

    cuBLAS's INT8 tensor-core GEMM wants both operands K-major (its "TN" form), 4-byte
    aligned and every leading dimension a multiple of 4: callers pad K and N with zeros
    (zeros add nothing to an integer sum)."""
    assert a.dtype == b.dtype == np.int8, (a.dtype, b.dtype)
    assert a.shape[-1] % 4 == 0 and b.shape[-2] % 4 == 0, (a.shape, b.shape)
    return _matmul_nt(a, b, _CUDA_R_8I, np.dtype(np.int32), _CUDA_R_32I, _COMPUTE_32I,
                      _ONE_I32, _ZERO_I32, "INT8")


def half_matmul_nt_float(a: cupy.ndarray, b: cupy.ndarray) -> cupy.ndarray:
    """``a @ b^T`` over the last two axes: float16 ``a`` ``[..., M, K]`` and ``b`` ``[..., N,
    K]`` (both K-contiguous) to float32 ``[..., M, N]``, FP32 accumulation on the FP16 tensor
    cores; batch axes broadcast. The FP8 tactics widen their codes to FP16 (exact) and take
    the sums in float32, whose range FP16 lacks (a sum of products of codes up to 448 passes
    65504 at once)."""
    assert a.dtype == b.dtype == np.float16, (a.dtype, b.dtype)
    return _matmul_nt(a, b, _CUDA_TYPES[np.dtype(np.float16)], np.dtype(np.float32),
                      _CUDA_TYPES[np.dtype(np.float32)], _COMPUTE_32F, _ONE, _ZERO, "FP16")


def _matmul_nt(a: cupy.ndarray, b: cupy.ndarray, in_type: int, out_dtype: np.dtype,
               out_type: int, compute: int, one: np.ndarray, zero: np.ndarray, label: str
               ) -> cupy.ndarray:
    """``a @ b^T`` (both K-major, cuBLAS's "TN" form) into a new ``out_dtype`` array."""
    rows, depth = a.shape[-2:]
    cols, depth_b = b.shape[-2:]
    assert depth == depth_b, (a.shape, b.shape)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    count = int(np.prod(batch, dtype=np.int64))
    out = cupy.empty(batch + (rows, cols), out_dtype)
    if out.size == 0:
        return out
    if depth == 0:
        out.fill(0)
        return out
    a, stride_a = batched_operand(a, batch)
    b, stride_b = batched_operand(b, batch)
    handle = _handle_for(cupy.cuda.get_current_stream())
    assert _LIB is not None
    # Row-major C[M, N] = A B^T is column-major C^T (N x M) = op_T(B) op_N(A).
    status = _LIB.cublasGemmStridedBatchedEx(
        handle, _OP_T, _OP_N, cols, rows, depth,
        one.ctypes.data,
        b.data.ptr, in_type, depth, stride_b,
        a.data.ptr, in_type, depth, stride_a,
        zero.ctypes.data,
        out.data.ptr, out_type, cols, rows * cols,
        count, compute, _GEMM_DEFAULT)
    _check(status, f"cublasGemmStridedBatchedEx ({label})")
    return out
