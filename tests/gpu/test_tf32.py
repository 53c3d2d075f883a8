"""BuilderFlag.TF32 on the GPU: FP32 matrix products and convolutions of an engine built
with it (TensorRT's default) run on TF32 tensor cores — close to FP32 but measurably
rounded — and without it are exact FP32; a loaded plan runs in the mode it was built for."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from engine.kernels.backends import gpu_available
from tests.gpu.gpu_support import build_gpu_engine, only_source

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not gpu_available(), reason="needs a GPU")

RNG = np.random.default_rng(12)
A = RNG.standard_normal((64, 1024)).astype(np.float32)
W = RNG.standard_normal((1024, 256)).astype(np.float32)
X = RNG.standard_normal((2, 64, 16, 16)).astype(np.float32)
K = (RNG.standard_normal((64, 64, 3, 3)) / 24).astype(np.float32)


def matmul(net, t):
    w = net.add_constant(W.shape, trt.Weights(W)).get_output(0)
    return [net.add_matrix_multiply(t["a"], trt.MatrixOperation.NONE, w,
                                    trt.MatrixOperation.NONE).get_output(0)]


def convolution(net, t):
    layer = net.add_convolution_nd(t["x"], 64, (3, 3), trt.Weights(K), trt.Weights())
    layer.padding_nd = (1, 1)
    return [layer.get_output(0)]


def _conv_reference() -> np.ndarray:
    padded = np.pad(X.astype(np.float64), [(0, 0), (0, 0), (1, 1), (1, 1)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    return np.einsum("bchwij,kcij->bkhw", windows, K.astype(np.float64))


def _runs(context, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Three runs through ``infer`` (eager, captured, replayed) and three through
    ``execute_async_v3`` on fixed device buffers (eager, then a graph captured on them, then
    replayed): each in the plan's math mode."""
    got = [cupy.asnumpy(context.infer(dict(inputs))["out0"]) for _ in range(3)]
    feeds = {name: cupy.asarray(a) for name, a in inputs.items()}
    for name, a in feeds.items():
        context.set_input_shape(name, a.shape)
        context.set_tensor_address(name, a.data.ptr)
    out = cupy.empty(tuple(context.get_tensor_shape("out0")), cupy.float32)
    context.set_tensor_address("out0", out.data.ptr)
    for _ in range(3):
        assert context.execute_async_v3(0)
        cupy.cuda.Stream.null.synchronize()
        got.append(cupy.asnumpy(out))
    return got


@pytest.mark.parametrize("case", ["matmul", "convolution"])
def test_tf32_rounds_fp32_products_only_where_the_flag_allows(case):
    """cuBLAS alone (COMPUTE_32F_FAST_TF32 is certain there; cuDNN or the implicit-GEMM
    convolution, timed against it, may keep exact FP32 plans)."""
    define, inputs, want = {
        "matmul": (matmul, {"a": A}, A.astype(np.float64) @ W.astype(np.float64)),
        "convolution": (convolution, {"x": X}, _conv_reference()),
    }[case]
    errors: dict[bool, list[float]] = {False: [], True: []}
    for tf32 in (False, True):
        engine = build_gpu_engine(define, inputs, tf32=tf32,
                                  config_hook=only_source(trt.TacticSource.CUBLAS, False))
        loaded = trt.Runtime(trt.Logger()).deserialize_cuda_engine(engine.serialize())
        for got in _runs(loaded.create_execution_context(), inputs):
            got = got.astype(np.float64)
            errors[tf32].append(float(np.linalg.norm(got - want) / np.linalg.norm(want)))
    assert max(errors[False]) < 1e-5, errors
    assert all(1e-5 < e < 1e-2 for e in errors[True]), errors  # TF32: ~10 mantissa bits


@pytest.mark.parametrize("source", ["CUDNN", "CUBLAS_LT"])
def test_other_sources_stay_close_with_tf32(source):
    """cuDNN and cuBLASLt may or may not pick a TF32 plan: only the upper bound holds."""
    define, inputs, want = (convolution, {"x": X}, _conv_reference()) if source == "CUDNN" \
        else (matmul, {"a": A}, A.astype(np.float64) @ W.astype(np.float64))
    engine = build_gpu_engine(define, inputs, tf32=True,
                              config_hook=only_source(trt.TacticSource[source], False))
    for got in _runs(engine.create_execution_context(), inputs):
        error = np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want)
        assert error < 1e-2
