"""The layer types whose GPU kernels came last (2026-12-06, written without a GPU):
deconvolution, LRN, non-zero (a data-dependent output shape) and assertion, in whole networks
on the GPU target against the CPU target. tests/gpu/test_kernels.py compares the kernels on
their own cases."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from engine.kernels.backends import gpu_available
from tests.gpu.gpu_support import DeviceAllocator, build_gpu_engine, run_on_both

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not gpu_available(), reason="needs a GPU")

RNG = np.random.default_rng(5)
# Drawn once: run_on_both defines the network twice (GPU and CPU builds).
W_UP = (RNG.standard_normal((6, 8, 4, 4)) * 0.2).astype(np.float32)
B_UP = RNG.standard_normal(8).astype(np.float32)


def _upsampler(net, t):
    """A decoder step: a stride-2 deconvolution, ReLU, then LRN over the channels."""
    up = net.add_deconvolution_nd(t["x"], 8, (4, 4), W_UP, B_UP)
    up.stride_nd, up.padding_nd = (2, 2), (1, 1)
    y = net.add_activation(up.get_output(0), trt.ActivationType.RELU).get_output(0)
    return [net.add_lrn(y, 5, 1e-3, 0.75, 1.0).get_output(0)]


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_deconvolution_and_lrn_network_matches_the_cpu_target(fp16):
    x = RNG.standard_normal((2, 6, 7, 9)).astype(np.float32)
    hook = (lambda c: c.set_flag(trt.BuilderFlag.FP16)) if fp16 else None
    (got,), (want,) = run_on_both(_upsampler, {"x": x}, config_hook=hook)
    assert got.shape == (2, 8, 14, 18)
    tolerance = 2e-2 if fp16 else 1e-4
    np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=tolerance, atol=tolerance)


def test_non_zero_output_through_infer_and_an_output_allocator():
    def define(net, t):
        return [net.add_non_zero(t["x"]).get_output(0)]

    x = np.array([[0, 1, 0, 2], [0, 0, 0, 0], [3, 0, 0, 4]], np.float32)
    engine = build_gpu_engine(define, {"x": x})
    context = engine.create_execution_context()
    got = context.infer({"x": x})["out0"]
    np.testing.assert_array_equal(cupy.asnumpy(got), np.array(np.nonzero(x), np.int64))

    allocator = DeviceAllocator()
    dx = cupy.asarray(x)
    context = engine.create_execution_context()
    context.set_tensor_address("x", dx.data.ptr)
    assert context.set_output_allocator("out0", allocator)
    assert context.execute_async_v3(0)
    cupy.cuda.Stream.null.synchronize()
    assert allocator.shape == (2, 4)
    values = allocator.buffer[:2 * 4 * 8].view(cupy.int64).reshape(2, 4)
    np.testing.assert_array_equal(cupy.asnumpy(values), np.array(np.nonzero(x), np.int64))


def test_failed_assertion_fails_the_run_with_its_message_and_the_context_goes_on():
    def define(net, t):
        positive = net.add_elementwise(
            t["x"], net.add_constant((1,), np.zeros(1, np.float32)).get_output(0),
            trt.ElementWiseOperation.GREATER).get_output(0)
        net.add_assertion(positive, "x must be positive")
        return [net.add_unary(t["x"], trt.UnaryOperation.SQRT).get_output(0)]

    good = np.array([1.0, 4.0, 9.0], np.float32)
    engine = build_gpu_engine(define, {"x": good})
    context = engine.create_execution_context()
    np.testing.assert_allclose(cupy.asnumpy(context.infer({"x": good})["out0"]), [1, 2, 3])
    with pytest.raises(trt.ExecutionError, match="x must be positive"):
        context.infer({"x": np.array([1.0, -4.0, 9.0], np.float32)})
    np.testing.assert_allclose(cupy.asnumpy(context.infer({"x": good})["out0"]), [1, 2, 3])


def test_every_cpu_layer_type_has_a_gpu_kernel():
    from engine.kernels.backends import load_backend
    from engine.kernels.registry import layer_types_supported

    load_backend("cpu")
    load_backend("gpu")
    missing = sorted(t.name for t in layer_types_supported("cpu") -
                     layer_types_supported("gpu"))
    assert not missing, f"layer types with a CPU kernel and no GPU kernel: {missing}"
