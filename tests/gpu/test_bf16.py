"""BF16 on the GPU target (engine/kernels/gpu/bf16.py): BF16 tensors held as uint16 patterns,
native BF16 casts and cuBLAS products on BF16 tensor cores, every other layer through its
FP32 form; against the CPU target (ml_dtypes) within BF16's precision. Written without a GPU
(2026-12-06)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import engine as trt
from engine.kernels.backends import gpu_available
from tests.gpu.gpu_support import build_gpu_engine
from tests.support import build_engine

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not gpu_available(), reason="needs a GPU")

RNG = np.random.default_rng(17)
X = RNG.standard_normal((4, 64)).astype(np.float32)
W = (RNG.standard_normal((64, 32)) / 8).astype(np.float32)
B = (RNG.standard_normal((1, 32)) / 4).astype(np.float32)
STRONG = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def block(net, t):
    """FLOAT in, BF16 inside (matmul, bias, GELU, softmax), FLOAT out."""
    x = net.add_cast(t["x"], trt.DataType.BF16).get_output(0)
    w = net.add_constant(W.shape, trt.Weights(W.astype(ml_dtypes.bfloat16))).get_output(0)
    b = net.add_constant(B.shape, trt.Weights(B.astype(ml_dtypes.bfloat16))).get_output(0)
    y = net.add_matrix_multiply(x, trt.MatrixOperation.NONE, w,
                                trt.MatrixOperation.NONE).get_output(0)
    y = net.add_elementwise(y, b, trt.ElementWiseOperation.SUM).get_output(0)
    y = net.add_activation(y, trt.ActivationType.GELU_ERF).get_output(0)
    y = net.add_softmax(y).get_output(0)
    return [net.add_cast(y, trt.DataType.FLOAT).get_output(0)]


def test_a_strongly_typed_bf16_block_matches_the_cpu_target():
    engine = build_gpu_engine(block, {"x": X}, flags=STRONG)
    tactics = [tactic for _, _, tactic in engine.layer_tactics]
    assert any("matmul" in t for t in tactics), tactics  # fused with its bias and GELU
    assert any(t.endswith("@fp32") for t in tactics), tactics  # GELU, softmax in FLOAT
    context = engine.create_execution_context()
    for _ in range(3):  # eager, captured, replayed
        got = cupy.asnumpy(context.infer({"x": X})["out0"])
    want = build_engine(block, {"x": X}, flags=STRONG).create_execution_context() \
        .infer({"x": X})["out0"]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-3)


def test_bf16_inputs_and_outputs_travel_as_their_patterns():
    def define(net, t):
        y = net.add_activation(t["x"], trt.ActivationType.RELU).get_output(0)
        return [y]

    x = X.astype(ml_dtypes.bfloat16)
    engine = build_gpu_engine(define, {"x": x}, flags=STRONG)
    assert engine.get_tensor_dtype("out0") == trt.DataType.BF16
    out = engine.create_execution_context().infer({"x": x})["out0"]
    assert out.dtype == np.uint16  # BF16 patterns (CuPy has no bfloat16)
    got = cupy.asnumpy(out).view(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(got, np.maximum(x, 0))
    # the pointer path: device buffers of the patterns
    dx, dy = cupy.asarray(x.view(np.uint16)), cupy.empty(x.shape, cupy.uint16)
    context = engine.create_execution_context()
    context.set_input_shape("x", x.shape)
    context.set_tensor_address("x", dx.data.ptr)
    context.set_tensor_address("out0", dy.data.ptr)
    for _ in range(3):
        assert context.execute_async_v3(0)
    cupy.cuda.Stream.null.synchronize()
    np.testing.assert_array_equal(cupy.asnumpy(dy).view(ml_dtypes.bfloat16), np.maximum(x, 0))


def test_builder_flag_bf16_on_a_float_network():
    def define(net, t):
        w = net.add_constant(W.shape, trt.Weights(W)).get_output(0)
        y = net.add_matrix_multiply(t["x"], trt.MatrixOperation.NONE, w,
                                    trt.MatrixOperation.NONE).get_output(0)
        return [net.add_activation(y, trt.ActivationType.RELU).get_output(0)]

    engine = build_gpu_engine(define, {"x": X},
                              config_hook=lambda c: c.set_flag(trt.BuilderFlag.BF16))
    got = cupy.asnumpy(engine.create_execution_context().infer({"x": X})["out0"])
    np.testing.assert_allclose(got, np.maximum(X @ W, 0), rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("name", ["gpu.conv_cudnn", "gpu.attention_cudnn_sdpa"])
def test_cudnn_computes_bf16_natively(name):
    """cuDNN's convolution and fused attention take BF16 patterns themselves (BF16 tensor
    cores, FP32 accumulation): the BF16 forms of their kernel cases against the CPU target's
    BF16 results, within BF16's precision."""
    from engine.kernels.gpu import cudnn_conv
    from engine.kernels.gpu.storage import host_storage
    from engine.kernels.registry import tactics_for
    from engine.network.layer import TensorInfo
    from tests.gpu.kernel_cases import CASES
    from tests.gpu.test_kernels import _bf16_case, _dtype, make_layer

    if not cudnn_conv.available():
        pytest.skip("cuDNN's frontend is not installed here")
    layer_type = trt.LayerType.CONVOLUTION if "conv" in name else trt.LayerType.FUSED_ATTENTION
    [tactic] = [t for t in tactics_for("gpu", layer_type) if t.name == name]
    ran = []
    for case in CASES[layer_type]:
        bf16_case = _bf16_case(case)
        if bf16_case is None:
            continue
        try:
            layer, arrays = make_layer(bf16_case)
            expected = tactics_for("cpu", layer_type)[0].run(layer, arrays)
        except (trt.NetworkError, TypeError, ValueError):
            continue
        infos = [None if a is None else TensorInfo(a.shape, _dtype(a)) for a in arrays]
        if not tactic.accepts(layer, infos):
            continue
        (got,) = tactic.run(layer, [None if a is None else cupy.asarray(host_storage(a))
                                    for a in arrays])
        assert got.dtype == np.uint16, f"{case.name}: {got.dtype} (BF16 patterns expected)"
        np.testing.assert_allclose(cupy.asnumpy(got).view(ml_dtypes.bfloat16).astype(np.float64),
                                   np.asarray(expected[0]).astype(np.float64),
                                   rtol=3e-2, atol=3e-2, err_msg=case.name)
        ran.append(case.name)
    assert ran, f"{name} took none of the BF16 cases"


def test_cublas_multiplies_bf16_patterns_natively():
    """cuBLAS's BF16 GEMM (CUDA_R_16BF operands, FP32 accumulation) on BF16 patterns, against
    the CPU kernel's BF16 result."""
    from engine.kernels.registry import tactics_for
    from engine.network.layer import TensorInfo

    network = trt.Builder(trt.Logger()).create_network(
        1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    a = X.astype(ml_dtypes.bfloat16)
    w = W.astype(ml_dtypes.bfloat16)
    ta = network.add_input("a", trt.DataType.BF16, a.shape)
    tw = network.add_input("w", trt.DataType.BF16, w.shape)
    layer = network.add_matrix_multiply(ta, trt.MatrixOperation.NONE, tw,
                                        trt.MatrixOperation.NONE)
    infos = [TensorInfo(a.shape, trt.DataType.BF16), TensorInfo(w.shape, trt.DataType.BF16)]
    [tactic] = [t for t in tactics_for("gpu", trt.LayerType.MATRIX_MULTIPLY)
                if t.name == "gpu.matmul_cublas"]
    assert tactic.accepts(layer, infos)
    (got,) = tactic.run(layer, [cupy.asarray(a.view(np.uint16)), cupy.asarray(w.view(np.uint16))])
    assert got.dtype == np.uint16
    (want,) = tactics_for("cpu", trt.LayerType.MATRIX_MULTIPLY)[0].run(layer, [a, w])
    np.testing.assert_allclose(cupy.asnumpy(got).view(ml_dtypes.bfloat16).astype(np.float64),
                               np.asarray(want).astype(np.float64), rtol=2e-2, atol=2e-2)
