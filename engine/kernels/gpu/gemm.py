"""Batched GEMM through cuBLAS directly (``cublasGemmStridedBatchedEx``), capturable into
CUDA graphs.

``cupy.matmul`` refuses to run while a stream is being captured ("calling cuBLAS API during
stream capture is currently unsupported"); cuBLAS itself supports capture, so the matrix
products of this backend call it through CuPy's low-level bindings. FP32 runs in FP32 (no
TF32), FP16 accumulates in FP32.
"""

from __future__ import annotations

import cupy
import numpy as np
from cupy_backends.cuda.libs import cublas

from engine.kernels.gpu.capabilities import contiguous

_CUDA_TYPES = {np.dtype(np.float32): 0, np.dtype(np.float16): 2}  # CUDA_R_32F, CUDA_R_16F
_COMPUTE_32F = 68  # CUBLAS_COMPUTE_32F
_GEMM_DEFAULT = -1
_OP_N, _OP_T = 0, 1
# alpha and beta are read from host memory when the call is made (captured by value).
_ONE = np.ones((), np.float32)
_ZERO = np.zeros((), np.float32)

GEMM_TYPES = frozenset(_CUDA_TYPES)


def batched_matmul(a: cupy.ndarray, b: cupy.ndarray, *, transpose_a: bool = False,
                   transpose_b: bool = False) -> cupy.ndarray:
    """``op(a) @ op(b)`` over the last two axes, batch axes broadcast as in NumPy; ``op``
    swaps the last two axes when ``transpose_*`` is set. FP32 or FP16, both the same."""
    assert a.dtype == b.dtype and a.dtype in _CUDA_TYPES, (a.dtype, b.dtype)
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
    a, stride_a = _batched(a, batch)
    b, stride_b = _batched(b, batch)
    # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: pass B first.
    cuda_type = _CUDA_TYPES[a.dtype]
    cublas.gemmStridedBatchedEx(
        cupy.cuda.device.get_cublas_handle(),
        _OP_T if transpose_b else _OP_N, _OP_T if transpose_a else _OP_N,
        cols, rows, depth,
        _ONE.ctypes.data,
        b.data.ptr, cuda_type, b.shape[-1], stride_b,
        a.data.ptr, cuda_type, a.shape[-1], stride_a,
        _ZERO.ctypes.data,
        out.data.ptr, cuda_type, cols, rows * cols,
        count, _COMPUTE_32F, _GEMM_DEFAULT)
    return out


def _batched(x: cupy.ndarray, batch: tuple[int, ...]) -> tuple[cupy.ndarray, int]:
    """``x`` contiguous, and the element stride between its matrices over ``batch`` (0 when
    one matrix serves the whole batch; a broadcast copy otherwise)."""
    matrix = x.shape[-2] * x.shape[-1]
    if int(np.prod(x.shape[:-2], dtype=np.int64)) == 1:
        return contiguous(x), 0
    if tuple(x.shape[:-2]) != tuple(batch):
        x = cupy.broadcast_to(x, batch + x.shape[-2:])
        return x.copy(), matrix
    return contiguous(x), matrix
