"""FP8 (E4M3) on the GPU target (engine/kernels/gpu/fp8.py, quantized.py): FP8 tensors held
as uint8 patterns, the quantize / dequantize / cast kernels, the quantized convolution and
matrix multiply on FP8 tensor cores (cuBLASLt) and on FP16 ones (codes widened), weight-only
INT4 layers on dequantized weights, and data movement of FP8 tensors through the ``@fp32``
forms; against the CPU target. Written without a GPU (2026-12-06)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import engine as trt
from engine.kernels.backends import gpu_available
from engine.kernels.registry import tactics_for
from engine.network.layer import TensorInfo
from engine.types import from_numpy_dtype
from tests.gpu.gpu_support import only_source
from tests.quantization.digits import accuracy, digits, trained_cnn
from tests.quantization.networks import build, define_cnn, fp8_cnn, int4_weights, run

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not gpu_available(), reason="needs a GPU")

RNG = np.random.default_rng(8)


def _fp8_codes(*shape: int) -> np.ndarray:
    values = RNG.standard_normal(shape) * 2.0 ** RNG.integers(-6, 8, shape)
    return np.clip(values, -448, 448).astype(ml_dtypes.float8_e4m3fn)


def _tactics(engine: trt.ICudaEngine) -> list[str]:
    return [tactic for _, _, tactic in engine.layer_tactics]


def _within(got: np.ndarray, a: np.ndarray, b: np.ndarray, relative: float) -> None:
    """``got`` equals ``a @ b^T`` (float64) within ``relative`` of the sum of the products'
    magnitudes (what a float sum's error scales with; a layout error is of order 1)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    error = np.abs(got - a @ b.T)
    bound = relative * (np.abs(a) @ np.abs(b).T)
    assert (error <= bound).all(), float((error / np.maximum(bound, 1e-300)).max())


def test_fp8_tensor_core_sums_at_the_extremes():
    """cuBLASLt's FP8 GEMM sums code products as the exact float64 sums do, within the FP8
    tensor cores' accumulation (about 13 mantissa bits between FP32 promotions)."""
    from engine.kernels.gpu import cublaslt

    if not cublaslt.fp8_supported():
        pytest.skip("no cuBLASLt or no FP8 tensor cores on this device")
    a = _fp8_codes(3, 40, 64)
    a[0, 0, :] = 448
    b = _fp8_codes(24, 64)
    b[0, :] = -448
    got = cublaslt.fp8_matmul_nt(cupy.asarray(a.view(np.uint8)), cupy.asarray(b.view(np.uint8)))
    assert got is not None, "cuBLASLt had no FP8 algorithm for a plain TN product"
    assert got.shape == (3, 40, 24)
    _within(cupy.asnumpy(got), a, b, 4e-3)


def test_half_gemm_of_widened_codes_sums_in_float32():
    from engine.kernels.gpu import fp8
    from engine.kernels.gpu.gemm import half_matmul_nt_float

    a, b = _fp8_codes(33, 48), _fp8_codes(20, 48)
    a[0, :] = 448  # 48 * 448**2 = 9.6e6: far past FP16's range, exact in float32
    b[0, :] = 448
    wide = [fp8.widen_half(cupy.asarray(m.view(np.uint8))) for m in (a, b)]
    _within(cupy.asnumpy(half_matmul_nt_float(*wide)), a, b, 1e-5)


@pytest.mark.parametrize("source", ["CUBLAS_LT", "CUBLAS"])
def test_fp8_qdq_cnn_on_the_gpu_matches_the_cpu_target(source):
    """The digits CNN with FP8 Q/DQ built for the GPU with one tactic source (FP8 tensor
    cores, or FP16 ones on widened codes): its convolutions take an FP8 tactic, its logits
    match the CPU build's, and its accuracy is the CPU build's."""
    model, data = trained_cnn(), digits()
    want, _ = build(fp8_cnn(model), flags=[trt.BuilderFlag.FP8])
    engine, _ = build(fp8_cnn(model), flags=[trt.BuilderFlag.FP8], device=trt.DeviceType.GPU,
                      config_hook=only_source(trt.TacticSource[source], fp16=False))
    tactics = _tactics(engine)
    suffix = "_fp8_cublaslt" if source == "CUBLAS_LT" else "_fp8_as_half"
    # both convolutions, fused with their ReLU (the first with the next FP8 quantize too)
    assert tactics.count(f"gpu.fused_quantized_conv{suffix}") == 2, tactics
    assert "gpu.quantize_fp8" in tactics, tactics
    x = data.test_x
    got = run(engine, x)
    expected = run(want, x)
    # Each convolution's output is quantized to FP8 again (3 mantissa bits): a float sum a
    # rounding away from a code's midpoint flips that code, a 6-12% step. FP16 tensor cores
    # sum as float32 (the CPU in float64): almost every row is equal to 1e-4; FP8 tensor
    # cores sum with about 13 bits, flipping more codes: the logits stay close.
    close = np.isclose(got, expected, rtol=1e-4, atol=1e-4).all(axis=1)
    if source == "CUBLAS":
        assert close.mean() >= 0.99, close.mean()
    assert np.abs(got - expected).max() <= 0.05 * np.abs(expected).max()
    assert abs(accuracy(got, data.test_y) - accuracy(expected, data.test_y)) <= 1


def test_int4_weight_only_cnn_on_the_gpu_matches_the_cpu_target():
    """INT4 weights (per channel, and blocks of 32 for the matrix multiply) on dequantized
    weights."""
    model, data = trained_cnn(), digits()
    define = define_cnn(model, None, int4_weights)
    want, _ = build(define, flags=[trt.BuilderFlag.INT4])
    engine, _ = build(define, flags=[trt.BuilderFlag.INT4], device=trt.DeviceType.GPU)
    tactics = _tactics(engine)
    assert "gpu.quantized_matmul_dequantized_cublas" in tactics, tactics
    assert tactics.count("gpu.quantized_conv_dequantized_cublas") == 2, tactics
    np.testing.assert_allclose(run(engine, data.test_x), run(want, data.test_x),
                               rtol=1e-4, atol=1e-4)


def test_fp8_codes_move_through_the_fp32_forms_exactly():
    """A transpose and a concatenation of FP8 tensors on the GPU (their ``@fp32`` forms:
    widened, moved, narrowed again) give the CPU kernels' codes exactly."""
    from engine.kernels.gpu.storage import host_storage, to_storage

    network = trt.Builder(trt.Logger()).create_network(0)
    a, b = _fp8_codes(3, 5), _fp8_codes(3, 5)
    ta = network.add_input("a", trt.DataType.FP8, a.shape)
    tb = network.add_input("b", trt.DataType.FP8, b.shape)
    shuffle = network.add_shuffle(ta)
    shuffle.first_transpose = (1, 0)
    concat = network.add_concatenation([ta, tb])
    for layer, arrays in ((shuffle, [a]), (concat, [a, b])):
        infos = [TensorInfo(x.shape, from_numpy_dtype(x.dtype)) for x in arrays]
        want = tactics_for("cpu", layer.layer_type)[0].run(layer, arrays)[0]
        ran = 0
        for tactic in tactics_for("gpu", layer.layer_type):
            if not tactic.name.endswith("@fp32") or not tactic.accepts(layer, infos):
                continue
            got = tactic.run(layer, [cupy.asarray(host_storage(x)) for x in arrays])[0]
            np.testing.assert_array_equal(cupy.asnumpy(to_storage(got, trt.DataType.FP8)),
                                          host_storage(np.asarray(want)))
            ran += 1
        assert ran, f"no @fp32 tactic took the FP8 {layer.layer_type.name}"


def test_an_fp8_network_output_comes_back_as_its_patterns():
    """A network whose output is FP8 (a quantize): ``infer`` gives the uint8 patterns, and
    the pointer path fills a device buffer with them."""
    def define(net, t):
        scale = net.add_constant((), np.array(0.01, np.float32)).get_output(0)
        return [net.add_quantize(t["x"], scale, trt.DataType.FP8).get_output(0)]

    from tests.gpu.gpu_support import build_gpu_engine
    from tests.support import build_engine

    x = (RNG.standard_normal((4, 8)) * 3).astype(np.float32)
    engine = build_gpu_engine(define, {"x": x})
    assert engine.get_tensor_dtype("out0") == trt.DataType.FP8
    out = engine.create_execution_context().infer({"x": x})["out0"]
    assert out.dtype == np.uint8
    want = build_engine(define, {"x": x}).create_execution_context().infer({"x": x})["out0"]
    np.testing.assert_array_equal(cupy.asnumpy(out), np.asarray(want).view(np.uint8))
    dx, dy = cupy.asarray(x), cupy.empty(x.shape, cupy.uint8)
    context = engine.create_execution_context()
    context.set_tensor_address("x", dx.data.ptr)
    context.set_tensor_address("out0", dy.data.ptr)
    for _ in range(3):  # eager, captured, replayed
        assert context.execute_async_v3(0)
    cupy.cuda.Stream.null.synchronize()
    np.testing.assert_array_equal(cupy.asnumpy(dy), np.asarray(want).view(np.uint8))
