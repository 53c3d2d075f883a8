"""The cuBLASLt tactics (``TacticSource.CUBLAS_LT``): dense layers ``activation(x @ w + b +
residual)`` built with cuBLASLt as the only tactic source, so every product must take
``gpu.fused_matmul_cublaslt`` (the bias and activation in the GEMM's epilogue, the residual
as its C matrix) or ``gpu.matmul_cublaslt``, compared with the same network on the CPU
target; and the call captured into a CUDA graph. Skips itself where nvmath-python is
missing."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from engine.kernels.registry import get_tactic
from engine.network.layer import LayerType
from tests.gpu.gpu_support import build_gpu_engine, only_source, run_on_both

cupy = pytest.importorskip("cupy")
pytest.importorskip("nvmath")
cublaslt = pytest.importorskip("engine.kernels.gpu.cublaslt")

RNG = np.random.default_rng(29)
K, N = 64, 48
A = trt.ActivationType
M = trt.MatrixOperation


@pytest.fixture(autouse=True)
def _needs_cublaslt(monkeypatch: pytest.MonkeyPatch) -> None:
    if not cublaslt.available():
        pytest.skip("nvmath-python imports but makes no cuBLASLt handle here")
    # A product cuBLASLt turned down would run the cuBLAS tactic unseen: make that fail.
    def no_fallback(layer, inputs):
        raise AssertionError(f"layer {layer.name!r} fell back to the cuBLAS tactic")

    monkeypatch.setattr(cublaslt, "fused_matrix_multiply", no_fallback)
    monkeypatch.setattr(cublaslt, "matrix_multiply", no_fallback)


def dense(rows: tuple[int, ...], dtype: type, *, bias: bool = True,
          activation: A | None = None, residual: bool = False, transposed: bool = False):
    """``activation(x @ w + b + r)`` for ``x`` of shape ``rows + (K,)``; the weights are a
    constant ``[1.., K, N]`` (``[1.., N, K]`` read transposed when ``transposed``)."""
    lead = (1,) * (len(rows) - 1)
    w = RNG.standard_normal((N, K) if transposed else (K, N)) / np.sqrt(K)
    w = w.astype(dtype).reshape(lead + w.shape)
    b = (0.5 * RNG.standard_normal(N)).astype(dtype).reshape(lead + (1, N))

    def define(net: trt.INetworkDefinition, t: dict[str, trt.ITensor]):
        weights = net.add_constant(w.shape, w).get_output(0)
        y = net.add_matrix_multiply(t["x"], M.NONE, weights,
                                    M.TRANSPOSE if transposed else M.NONE).get_output(0)
        if bias:
            b_tensor = net.add_constant(b.shape, b).get_output(0)
            y = net.add_elementwise(y, b_tensor, trt.ElementWiseOperation.SUM).get_output(0)
        if residual:
            y = net.add_elementwise(y, t["r"], trt.ElementWiseOperation.SUM).get_output(0)
        if activation is not None:
            y = net.add_activation(y, activation).get_output(0)
        return [y]

    inputs = {"x": RNG.standard_normal(rows + (K,)).astype(dtype)}
    if residual:
        inputs["r"] = RNG.standard_normal(rows + (N,)).astype(dtype)
    return define, inputs


def cublaslt_only(fp16: bool):  # noqa: ANN201
    # No cuBLAS, no cuDNN: a product has no tactic but cuBLASLt's.
    return only_source(trt.TacticSource.CUBLAS_LT, fp16)


CASES = {
    # name: (rows, fp16, keyword arguments of ``dense``)
    "bias-2d": ((40,), False, {}),
    "bias-relu": ((2, 12), False, {"activation": A.RELU}),
    "relu-no-bias": ((2, 12), False, {"bias": False, "activation": A.RELU}),
    "bias-gelu-tanh": ((2, 12), False, {"activation": A.GELU_TANH}),
    "residual": ((2, 12), False, {"bias": False, "residual": True}),
    "bias-residual-relu": ((2, 12), False, {"activation": A.RELU, "residual": True}),
    "transposed-bias": ((2, 12), False, {"transposed": True}),
    "transposed-bias-gelu-tanh-f16": ((2, 16), True, {"transposed": True,
                                                       "activation": A.GELU_TANH}),
    "bias-relu-f16": ((2, 16), True, {"activation": A.RELU}),
    "bias-residual-gelu-tanh-f16": ((2, 16), True, {"activation": A.GELU_TANH,
                                                     "residual": True}),
    "rows-not-a-multiple-of-8-f16": ((3, 7), True, {"activation": A.RELU}),
    "rows-not-a-multiple-of-8": ((3, 7), False, {"residual": True}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_dense_layer_on_cublaslt_matches_the_cpu(name: str) -> None:
    rows, fp16, options = CASES[name]
    define, inputs = dense(rows, np.float16 if fp16 else np.float32, **options)
    engine = build_gpu_engine(define, inputs, config_hook=cublaslt_only(fp16))
    products = [tactic for _, _, tactic in engine.layer_tactics if "matmul" in tactic]
    assert products == ["gpu.fused_matmul_cublaslt"], engine.layer_tactics
    by_gpu, by_cpu = run_on_both(define, inputs, config_hook=cublaslt_only(fp16))
    gelu = options.get("activation") == A.GELU_TANH
    tolerance = 2e-2 if fp16 else 2e-3 if gelu else 1e-4
    np.testing.assert_allclose(cupy.asnumpy(by_gpu[0]).astype(np.float64),
                               by_cpu[0].astype(np.float64), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_plain_product_on_cublaslt_matches_the_cpu(fp16: bool) -> None:
    define, inputs = dense((2, 9), np.float16 if fp16 else np.float32, bias=False)
    engine = build_gpu_engine(define, inputs, config_hook=cublaslt_only(fp16))
    products = [tactic for _, _, tactic in engine.layer_tactics if "matmul" in tactic]
    assert products == ["gpu.matmul_cublaslt"], engine.layer_tactics
    by_gpu, by_cpu = run_on_both(define, inputs, config_hook=cublaslt_only(fp16))
    tolerance = 2e-2 if fp16 else 1e-4
    np.testing.assert_allclose(cupy.asnumpy(by_gpu[0]).astype(np.float64),
                               by_cpu[0].astype(np.float64), rtol=tolerance, atol=tolerance)


def test_dynamic_batch_plans_at_run_time() -> None:
    define, inputs = dense((3, 10), np.float16, activation=A.RELU)
    options = {"config_hook": cublaslt_only(True), "dynamic": {"x": (-1, 10, K)}}
    engine = build_gpu_engine(define, inputs, **options)
    assert "gpu.fused_matmul_cublaslt" in [tactic for _, _, tactic in engine.layer_tactics]
    by_gpu, by_cpu = run_on_both(define, inputs, **options)
    np.testing.assert_allclose(cupy.asnumpy(by_gpu[0]).astype(np.float64),
                               by_cpu[0].astype(np.float64), rtol=2e-2, atol=2e-2)


def test_the_call_is_captured_into_a_cuda_graph() -> None:
    from engine.kernels.gpu import device_milliseconds
    from engine.network.layers.fused import IFusedMatrixMultiplyLayer

    network = trt.Builder(trt.Logger()).create_network(0)
    x = network.add_input("x", trt.float16, (2, 16, K))
    w = network.add_input("w", trt.float16, (1, K, N))
    b = network.add_input("b", trt.float16, (1, 1, N))
    layer = IFusedMatrixMultiplyLayer(network, x, M.NONE, w, M.NONE, b)
    layer.activation = A.GELU_TANH
    arrays = [cupy.asarray(RNG.standard_normal(shape).astype(np.float16))
              for shape in ((2, 16, K), (1, K, N), (1, 1, N))]
    tactic = get_tactic("gpu", LayerType.FUSED_MATRIX_MULTIPLY, "gpu.fused_matmul_cublaslt")
    assert tactic.source == "CUBLAS_LT"
    tactic.run(layer, arrays)  # plans outside the capture, as the builder does
    assert device_milliseconds(lambda: tactic.run(layer, arrays), 8, 3) is not None


def test_gelu_erf_is_not_taken() -> None:
    """cuBLASLt's GELU is the tanh approximation: an exact GELU must not use it."""
    from engine.network.layer import TensorInfo
    from engine.network.layers.fused import IFusedMatrixMultiplyLayer

    network = trt.Builder(trt.Logger()).create_network(0)
    x = network.add_input("x", trt.float32, (8, K))
    w = network.add_input("w", trt.float32, (K, N))
    layer = IFusedMatrixMultiplyLayer(network, x, M.NONE, w, M.NONE)
    infos = [TensorInfo((8, K), trt.float32), TensorInfo((K, N), trt.float32)]
    tactic = get_tactic("gpu", LayerType.FUSED_MATRIX_MULTIPLY, "gpu.fused_matmul_cublaslt")
    layer.activation = A.GELU_TANH
    assert tactic.accepts(layer, infos)
    layer.activation = A.GELU_ERF
    assert not tactic.accepts(layer, infos)
