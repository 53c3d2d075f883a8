"""Matrix products on cuBLASLt with the bias and activation fused into the GEMM's epilogue
(TacticSource.CUBLAS_LT), through nvmath-python's low-level bindings
(``nvmath.bindings.cublasLt``, the C API one call for one call).

The fused matrix multiply ``activation(a @ b + bias + residual)`` becomes one
``cublasLtMatmul``, which computes ``D = epilogue(alpha * A @ B + beta * C)``: the residual
is C with ``beta = 1`` (``beta = 0`` and no C without one), and the epilogue adds the bias
vector, broadcast over the columns of D, before its activation (``CUBLASLT_EPILOGUE_BIAS``,
``RELU_BIAS``, ``GELU_BIAS``; ``RELU`` and ``GELU`` without a bias). So the result is
``activation(a @ b + residual + bias)``, all in FP32 before D is rounded. cuBLASLt's GELU is
the tanh approximation: GELU_TANH takes it, GELU_ERF does not (its error is about 1e-3).
Plain matrix multiplies of the same form take it with the default epilogue.

The product is ``[M, K] @ [K, N]`` over the rows of the first operand (its leading axes
flattened, not transposed) and one matrix, plain or transposed, as a network's weights are
(the cuDNN tactic's form, ``cudnn_matmul.matmul_operands``). HALF and FLOAT with
``CUBLAS_COMPUTE_32F`` (FLOAT with ``CUBLAS_COMPUTE_32F_FAST_TF32`` where the math mode
allows TF32) and FP32 alpha and beta. cuBLASLt is
column-major, so the tactic computes the transposed problem, as ``gemm.py`` does:
``D^T (N x M) = op(b)^T (N x K) @ a^T (K x M)``, the weights as cuBLASLt's A, the rows as its
B. The bias runs along the rows of cuBLASLt's D, which are our N columns, as it should.

The algorithm comes from ``cublasLtMatmulAlgoGetHeuristic``, asked once per geometry
(shapes, type, epilogue, transposition, operand alignments) per thread and device
and cached with its descriptors; where it has none, the cuBLAS tactic runs instead (a static
shape is then not offered at all). Handles are per thread and device; the workspace is
cuBLAS's per-stream one (``gemm.stream_workspace``), released with it. A call binds pointers
and enqueues on CuPy's current stream, so it is captured into the engine's CUDA graphs.

The tactic exists only where nvmath-python imports and makes a handle; elsewhere its
``supports`` says no. ``tests/gpu/test_cublaslt.py`` checks it against the CPU target.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import cupy
import numpy as np

from engine.kernels.gpu import gemm
from engine.kernels.gpu.capabilities import contiguous, probe
from engine.kernels.gpu.cudnn_matmul import bias_is_a_row, matmul_operands
from engine.kernels.gpu.fused_conv import fused_matrix_multiply
from engine.kernels.gpu.math import matrix_multiply
from engine.kernels.math_mode import tf32_allowed
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.fused import IFusedMatrixMultiplyLayer, epilogue_of
from engine.network.layers.math_contraction import IMatrixMultiplyLayer
from engine.network.layers.math_pointwise import ActivationType

# cuBLASLt's epilogue per (bias present, activation); ActivationType.GELU_TANH is its GELU.
_EPILOGUES = {
    (False, None): "DEFAULT", (True, None): "BIAS",
    (False, ActivationType.RELU): "RELU", (True, ActivationType.RELU): "RELU_BIAS",
    (False, ActivationType.GELU_TANH): "GELU", (True, ActivationType.GELU_TANH): "GELU_BIAS",
}
_TYPES = (np.dtype(np.float32), np.dtype(np.float16))
# alpha and beta are read from host memory when the call is enqueued (captured by value).
_ONE = np.ones((), np.float32)
_ZERO = np.zeros((), np.float32)
_DEFAULT_ALIGNMENT = 256  # what cuBLASLt's heuristics assume of every pointer unless told



def _bindings() -> tuple[Any, Any, Any]:
    """nvmath's cuBLASLt and cuBLAS bindings and its ``cudaDataType`` enum (optional).

    The compute type is ``nvmath.bindings.cublas.ComputeType`` (``cublasComputeType_t``,
    COMPUTE_32F = 68), not ``nvmath.ComputeType``, whose COMPUTE_32F is another number."""
    import nvmath
    from nvmath.bindings import cublas, cublasLt

    return cublasLt, cublas, nvmath.CudaDataType


@functools.cache
def available() -> bool:
    """Whether nvmath-python's cuBLASLt binding imports and makes a handle on the current
    device (asked once)."""
    return probe(_handle)


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.handles: dict[int, int] = {}
        self.plans: dict[tuple, _Plan | _Fp8Plan | None] = {}


_LOCAL = _PerThread()


def _handle() -> int:
    device = cupy.cuda.Device().id
    handle = _LOCAL.handles.get(device)
    if handle is None:
        handle = _LOCAL.handles[device] = int(_bindings()[0].create())
    return handle


def _set(setter: Any, dtype_of: Any, obj: int, attribute: Any, value: int) -> None:
    """Set one descriptor attribute, typed as the binding says it is."""
    buffer = np.asarray(value, dtype=dtype_of(attribute))
    setter(obj, attribute, buffer.ctypes.data, buffer.itemsize)


def _best_algorithm(lt: Any, desc: int, a_layout: int, b_layout: int, out_layout: int,
                    result: Any, alignments: tuple[int, int, int, int]) -> int | None:
    """The address of the heuristic's best algorithm for ``desc`` and the layouts (stored in
    ``result``, a ``MatmulHeuristicResult`` the caller keeps), or None where it has none."""
    preference = lt.matmul_preference_create()
    try:
        prefer = lt.MatmulPreferenceAttribute
        for name, value in (("MAX_WORKSPACE_BYTES", gemm.WORKSPACE_BYTES),
                            ("MIN_ALIGNMENT_A_BYTES", alignments[0]),
                            ("MIN_ALIGNMENT_B_BYTES", alignments[1]),
                            ("MIN_ALIGNMENT_C_BYTES", alignments[2]),
                            ("MIN_ALIGNMENT_D_BYTES", alignments[3])):
            _set(lt.matmul_preference_set_attribute,
                 lt.get_matmul_preference_attribute_dtype, preference, prefer[name], value)
        count = np.zeros(1, np.int32)
        try:
            lt.matmul_algo_get_heuristic(_handle(), desc, a_layout, b_layout, out_layout,
                                         out_layout, preference, 1, result.ptr,
                                         count.ctypes.data)
        except lt.cuBLASLtError:  # CUBLAS_STATUS_NOT_SUPPORTED: nothing for this geometry
            return None
    finally:
        lt.matmul_preference_destroy(preference)
    if count[0] < 1 or int(result.state) != 0 or \
            int(result.workspace_size) > gemm.WORKSPACE_BYTES:
        return None
    return int(result.ptr)


class _Plan:
    """The descriptors and the heuristic's algorithm for one geometry, on one thread and
    device. ``algorithm`` is None where the heuristic has none."""

    def __init__(self, m: int, k: int, n: int, transposed: bool, epilogue: str,
                 dtype: np.dtype, alignments: tuple[int, int, int, int], tf32: bool) -> None:
        lt, cublas, cuda_types = _bindings()
        data_type = cuda_types.CUDA_R_16F if dtype == np.float16 else cuda_types.CUDA_R_32F
        compute = cublas.ComputeType.COMPUTE_32F_FAST_TF32 \
            if dtype == np.float32 and tf32 else cublas.ComputeType.COMPUTE_32F
        self.desc = lt.matmul_desc_create(compute, cuda_types.CUDA_R_32F)
        attribute = lt.MatmulDescAttribute

        def describe(name: str, value: int) -> None:
            _set(lt.matmul_desc_set_attribute, lt.get_matmul_desc_attribute_dtype, self.desc,
                 attribute[name], value)

        describe("TRANSA", cublas.Operation.T if transposed else cublas.Operation.N)
        describe("TRANSB", cublas.Operation.N)
        describe("EPILOGUE", lt.Epilogue[epilogue])
        self._placeholder = None
        if "BIAS" in epilogue:
            # Set before asking the heuristic, as cuBLASLt's users do; every call sets its own.
            self._placeholder = cupy.cuda.Memory(n * dtype.itemsize)
            describe("BIAS_POINTER", self._placeholder.ptr)
        # Column-major: the weights (N x K, stored K x N when transposed), the rows (K x M)
        # and the output (N x M; the residual has the same layout).
        self.weights = lt.matrix_layout_create(data_type, k, n, k) if transposed else \
            lt.matrix_layout_create(data_type, n, k, n)
        self.rows = lt.matrix_layout_create(data_type, k, m, k)
        self.out = lt.matrix_layout_create(data_type, n, m, n)
        self._result = lt.MatmulHeuristicResult(1)
        self.algorithm = _best_algorithm(lt, self.desc, self.weights, self.rows, self.out,
                                         self._result, alignments)

    def destroy(self) -> None:
        lt = _bindings()[0]
        for layout in (self.weights, self.rows, self.out):
            lt.matrix_layout_destroy(layout)
        lt.matmul_desc_destroy(self.desc)


def _alignment(pointer: int) -> int:
    """The largest power of two up to 256 that divides ``pointer``."""
    return min(_DEFAULT_ALIGNMENT, pointer & -pointer) if pointer else _DEFAULT_ALIGNMENT


def _plan(m: int, k: int, n: int, transposed: bool, epilogue: str, dtype: np.dtype,
          alignments: tuple[int, int, int, int]) -> _Plan | None:
    """The cached plan of this geometry (C's alignment says whether there is a residual),
    None where cuBLASLt has no algorithm for it."""
    tf32 = tf32_allowed()
    key = (cupy.cuda.Device().id, m, k, n, transposed, epilogue, np.dtype(dtype).name,
           alignments, tf32)
    found = _cached(key, lambda: _Plan(m, k, n, transposed, epilogue, np.dtype(dtype),
                                       alignments, tf32))
    assert found is None or isinstance(found, _Plan)
    return found


PlanT = TypeVar("PlanT", "_Plan", "_Fp8Plan")


def _cached(key: tuple, make: Callable[[], PlanT]) -> PlanT | None:
    """This thread's plan for ``key``, made once; None (remembered) where the heuristic has
    no algorithm for it."""
    if key not in _LOCAL.plans:
        plan = make()
        if plan.algorithm is None:
            plan.destroy()
        _LOCAL.plans[key] = plan if plan.algorithm is not None else None
    return _LOCAL.plans[key]  # type: ignore[return-value]


def _fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IMatrixMultiplyLayer)
    a, b = inputs[0], inputs[1]
    if a is None or b is None or a.dtype.name not in ("FLOAT", "HALF") or \
            b.dtype != a.dtype or any(t != a.dtype for t in layer._output_types.values()):
        return False
    bias = inputs[2] if len(inputs) > 2 else None
    if (bias is not None, epilogue_of(layer)[0]) not in _EPILOGUES:
        return False
    if any(d < 0 for d in b.shape) or any(d < 0 for d in a.shape[-1:]):
        return False
    operands = matmul_operands(layer, tuple(max(d, 1) for d in a.shape), tuple(b.shape))
    if operands is None or not bias_is_a_row(bias, operands[2]) or not available():
        return False
    if any(d < 0 for d in a.shape):
        return True  # a dynamic batch: shapes cuBLASLt refuses run the cuBLAS tactic
    m, k, n, transposed = operands
    if 0 in (m, k, n):
        return False
    dtype = np.dtype(np.float16 if a.dtype.name == "HALF" else np.float32)
    epilogue = _EPILOGUES[(bias is not None, epilogue_of(layer)[0])]
    alignments = (_DEFAULT_ALIGNMENT,) * 4
    return _plan(m, k, n, transposed, epilogue, dtype, alignments) is not None


def _matmul(layer: ILayer, inputs: list[Any]) -> cupy.ndarray | None:
    """``activation(a @ b + bias + residual)`` in one cublasLtMatmul; None where cuBLASLt
    has no algorithm for it (or it is not this form)."""
    a, b = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    residual = inputs[3] if len(inputs) > 3 else None
    operands = matmul_operands(layer, a.shape, b.shape)  # type: ignore[arg-type]
    if operands is None or a.dtype not in _TYPES or b.dtype != a.dtype or \
            not bias_is_a_row(bias, operands[2]):
        return None
    m, k, n, transposed = operands
    if 0 in (m, k, n):
        return None
    out = cupy.empty(a.shape[:-1] + (n,), a.dtype)
    if residual is not None:
        residual = contiguous(residual.astype(a.dtype, copy=False))
        if residual.shape != out.shape:
            return None
    a = contiguous(a)
    b = contiguous(b.reshape(b.shape[-2:]))
    if bias is not None:
        bias = contiguous(bias.astype(a.dtype, copy=False)).reshape(n)
        if bias.data.ptr % 16:
            bias = bias.copy()  # a fresh allocation: aligned
    c_pointer = 0 if residual is None else residual.data.ptr
    alignments = (_alignment(b.data.ptr), _alignment(a.data.ptr),
                  _alignment(c_pointer), _alignment(out.data.ptr))
    epilogue = _EPILOGUES[(bias is not None, epilogue_of(layer)[0])]
    plan = _plan(m, k, n, transposed, epilogue, a.dtype, alignments)
    if plan is None:
        return None
    lt = _bindings()[0]
    if bias is not None:  # the plan's epilogue has the bias
        _set(lt.matmul_desc_set_attribute, lt.get_matmul_desc_attribute_dtype, plan.desc,
             lt.MatmulDescAttribute.BIAS_POINTER, bias.data.ptr)
    stream = cupy.cuda.get_current_stream()
    workspace = gemm.stream_workspace(stream)
    lt.matmul(_handle(), plan.desc,
              _ONE.ctypes.data, b.data.ptr, plan.weights, a.data.ptr, plan.rows,
              (_ZERO if residual is None else _ONE).ctypes.data, c_pointer, plan.out,
              out.data.ptr, plan.out, plan.algorithm,
              workspace.ptr, gemm.WORKSPACE_BYTES, stream.ptr)
    return out


@kernel(LayerType.FUSED_MATRIX_MULTIPLY, backend="gpu", name="gpu.fused_matmul_cublaslt",
        supports=_fits, source="CUBLAS_LT")
def fused_matmul(layer: ILayer, inputs: list[Any]) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedMatrixMultiplyLayer)
    out = _matmul(layer, inputs)
    return fused_matrix_multiply(layer, inputs) if out is None else [out]


@kernel(LayerType.MATRIX_MULTIPLY, backend="gpu", name="gpu.matmul_cublaslt",
        supports=_fits, source="CUBLAS_LT")
def plain_matmul(layer: ILayer, inputs: list[Any]) -> list[cupy.ndarray]:
    assert isinstance(layer, IMatrixMultiplyLayer)
    out = _matmul(layer, inputs)
    return matrix_multiply(layer, inputs) if out is None else [out]


# -- FP8 ----------------------------------------------------------------------------------------
_CUDA_R_8F_E4M3 = 28  # cudaDataType CUDA_R_8F_E4M3 (nvmath.CudaDataType names it too)
FP8_ALIGNMENT = 16  # FP8 operands: leading dimensions and pointers in multiples of 16 bytes


class _Fp8Plan:
    """Descriptors and algorithm of one FP8 product ``a @ b^T`` (both K-major, E4M3) into
    float32, over a batch (a stride of 0 shares one matrix), on one thread and device.
    cuBLASLt takes FP8 only in its "TN" form, which this is: column-major ``D^T (N x M) =
    op_T(b) op_N(a)``, b as cuBLASLt's A (transposed), a as its B. The operand scale
    pointers are left unset, which cuBLASLt reads as 1.0: the caller scales the sums of
    code products itself (and no device scalar has to outlive the plan's thread)."""

    def __init__(self, m: int, k: int, n: int, batch: int, strides: tuple[int, int]) -> None:
        lt, cublas, cuda_types = _bindings()
        self.desc = lt.matmul_desc_create(cublas.ComputeType.COMPUTE_32F, cuda_types.CUDA_R_32F)
        attribute = lt.MatmulDescAttribute
        for name, value in (("TRANSA", cublas.Operation.T), ("TRANSB", cublas.Operation.N)):
            _set(lt.matmul_desc_set_attribute, lt.get_matmul_desc_attribute_dtype, self.desc,
                 attribute[name], value)
        self.b = lt.matrix_layout_create(_CUDA_R_8F_E4M3, k, n, k)
        self.a = lt.matrix_layout_create(_CUDA_R_8F_E4M3, k, m, k)
        self.out = lt.matrix_layout_create(cuda_types.CUDA_R_32F, n, m, n)
        if batch > 1:
            for layout, stride in ((self.b, strides[1]), (self.a, strides[0]),
                                   (self.out, m * n)):
                for name, value in (("BATCH_COUNT", batch), ("STRIDED_BATCH_OFFSET", stride)):
                    _set(lt.matrix_layout_set_attribute, lt.get_matrix_layout_attribute_dtype,
                         layout, lt.MatrixLayoutAttribute[name], value)
        self._result = lt.MatmulHeuristicResult(1)
        self.algorithm = _best_algorithm(lt, self.desc, self.b, self.a, self.out, self._result,
                                         (FP8_ALIGNMENT, FP8_ALIGNMENT, FP8_ALIGNMENT,
                                          FP8_ALIGNMENT))

    def destroy(self) -> None:
        lt = _bindings()[0]
        for layout in (self.b, self.a, self.out):
            lt.matrix_layout_destroy(layout)
        lt.matmul_desc_destroy(self.desc)


def _fp8_plan(m: int, k: int, n: int, batch: int, strides: tuple[int, int]) -> _Fp8Plan | None:
    key = ("fp8", cupy.cuda.Device().id, m, k, n, batch, strides)
    found = _cached(key, lambda: _Fp8Plan(m, k, n, batch, strides))
    assert found is None or isinstance(found, _Fp8Plan)
    return found


def fp8_supported() -> bool:
    """Whether cuBLASLt is here and the device has FP8 tensor cores (compute capability 8.9
    and up: Ada, Hopper and later)."""
    return available() and int(cupy.cuda.Device().compute_capability) >= 89


def fp8_matmul_nt(a: cupy.ndarray, b: cupy.ndarray) -> cupy.ndarray | None:
    """``a @ b^T`` over the last two axes on FP8 tensor cores: E4M3 patterns (uint8) ``a``
    ``[..., M, K]`` and ``b`` ``[..., N, K]`` (K-contiguous, K a multiple of 16, N of 4;
    callers pad with zero codes), FP32 accumulation, float32 ``[..., M, N]``; one of the two
    may be a single matrix shared by the batch. None where cuBLASLt has no algorithm for it."""
    rows, depth = a.shape[-2:]
    cols = b.shape[-2]
    assert depth == b.shape[-1] and depth % FP8_ALIGNMENT == 0 and cols % 4 == 0, \
        (a.shape, b.shape)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    count = int(np.prod(batch, dtype=np.int64))
    if count == 0 or rows == 0 or cols == 0:
        return cupy.zeros(batch + (rows, cols), cupy.float32)
    operands = []
    for x in (a, b):
        x, stride = gemm.batched_operand(x, batch)
        if x.data.ptr % FP8_ALIGNMENT:
            x = x.copy()  # a fresh allocation: aligned
        operands.append((x, stride))
    (a, stride_a), (b, stride_b) = operands
    plan = _fp8_plan(rows, depth, cols, count, (stride_a, stride_b))
    if plan is None:
        return None
    out = cupy.empty(batch + (rows, cols), cupy.float32)
    lt = _bindings()[0]
    stream = cupy.cuda.get_current_stream()
    workspace = gemm.stream_workspace(stream)
    lt.matmul(_handle(), plan.desc,
              _ONE.ctypes.data, b.data.ptr, plan.b, a.data.ptr, plan.a,
              _ZERO.ctypes.data, 0, plan.out, out.data.ptr, plan.out, plan.algorithm,
              workspace.ptr, gemm.WORKSPACE_BYTES, stream.ptr)
    return out
