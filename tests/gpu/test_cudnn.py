"""The cuDNN convolution tactics (``TacticSource.CUDNN``) in a residual network: channels-last
outputs consumed by the next convolution, by pooling, elementwise layers and a reduction, and
the whole network against the CPU target. Skips itself where cuDNN's frontend is missing."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from tests.gpu.gpu_support import build_gpu_engine, only_source, run_on_both
from tests.support import build_engine

cupy = pytest.importorskip("cupy")
cudnn_conv = pytest.importorskip("engine.kernels.gpu.cudnn_conv")

RNG = np.random.default_rng(3)


def weights(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


W1, B1 = weights(32, 16, 3, 3), weights(32)
W2, B2 = weights(32, 32, 3, 3), weights(32)
WS, BS = weights(32, 16, 1, 1), weights(32)
W3, B3 = weights(8, 32, 1, 1), weights(8)


def residual_block(net: trt.INetworkDefinition, t: dict[str, trt.ITensor]):
    x = t["x"]

    def conv(inp, w, b, kernel, padding):
        layer = net.add_convolution_nd(inp, w.shape[0], kernel, w, b)
        layer.padding_nd = padding
        return layer.get_output(0)

    a = net.add_activation(conv(x, W1, B1, (3, 3), (1, 1)), trt.ActivationType.RELU).get_output(0)
    b = conv(a, W2, B2, (3, 3), (1, 1))
    shortcut = conv(x, WS, BS, (1, 1), (0, 0))
    summed = net.add_elementwise(b, shortcut, trt.ElementWiseOperation.SUM).get_output(0)
    c = net.add_activation(summed, trt.ActivationType.RELU).get_output(0)
    pool = net.add_pooling_nd(c, trt.PoolingType.MAX, (2, 2))
    pool.stride_nd = (2, 2)
    d = conv(pool.get_output(0), W3, B3, (1, 1), (0, 0))
    mean = net.add_reduce(d, trt.ReduceOperation.AVG, 0b1100, keep_dims=False).get_output(0)
    return [mean, c]


def cudnn_only(fp16: bool):  # noqa: ANN201
    return only_source(trt.TacticSource.CUDNN, fp16)  # no cuBLAS convolutions


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_residual_network_on_cudnn_matches_the_cpu(fp16: bool) -> None:
    if not cudnn_conv.available():
        pytest.skip("cuDNN's frontend (nvidia-cudnn-frontend) is not installed")
    inputs = {"x": RNG.standard_normal((4, 16, 20, 20)).astype(np.float32)}
    engine = build_gpu_engine(residual_block, inputs, config_hook=cudnn_only(fp16))
    convolutions = [tactic for _, _, tactic in engine.layer_tactics if "conv" in tactic]
    # conv + relu, conv + residual + relu (fused), and two plain convolutions
    assert sorted(convolutions) == ["gpu.conv_cudnn"] * 2 + ["gpu.fused_conv_cudnn"] * 2, \
        convolutions
    by_gpu, by_cpu = run_on_both(residual_block, inputs, config_hook=cudnn_only(fp16))
    tolerance = 2e-2 if fp16 else 1e-4
    for got, want in zip(by_gpu, by_cpu):
        np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=tolerance, atol=tolerance)


def test_channels_last_views_keep_logical_values() -> None:
    x = cupy.asarray(RNG.standard_normal((2, 3, 4, 5)).astype(np.float32))
    view = cudnn_conv.channels_last(x)
    assert view.shape == x.shape and view.strides == (240, 4, 60, 12)
    assert cudnn_conv.channels_last(view) is view
    cupy.testing.assert_array_equal(view, x)


def test_a_timed_build_records_its_plan_choices_and_a_loaded_engine_runs_them(monkeypatch):
    """A build above optimization level 0 times cuDNN's plans per graph and the plan carries
    the fastest's names; a process that loads the plan (graphs and choices forgotten here)
    builds those plans without timing anything, and computes what the CPU target does."""
    from engine.kernels import choices
    from engine.plan.format import read_plan

    if not cudnn_conv.available():
        pytest.skip("cuDNN's frontend (nvidia-cudnn-frontend) is not installed")
    inputs = {"x": RNG.standard_normal((4, 16, 20, 20)).astype(np.float32)}
    cudnn_conv._LOCAL.graphs.clear()  # graphs of earlier tests would be reused untimed
    engine = build_gpu_engine(residual_block, inputs, config_hook=cudnn_only(True))
    plan = bytes(engine.serialize())
    made = read_plan(plan).header["kernel_choices"]
    assert made and all(key.startswith("cudnn ") and name for key, name in made.items())

    cudnn_conv._LOCAL.graphs.clear()
    monkeypatch.setattr(choices, "_CHOICES", {})

    timed: list[object] = []
    monkeypatch.setattr(cudnn_conv, "_fastest_plan", lambda *args: timed.append(args))
    loaded = trt.Runtime(trt.Logger()).deserialize_cuda_engine(plan)
    assert {key: choices.lookup(key) for key in made} == made
    got = cupy.asnumpy(loaded.create_execution_context().infer(dict(inputs))["out0"])
    assert not timed
    want = build_engine(residual_block, inputs).create_execution_context().infer(dict(inputs))
    np.testing.assert_allclose(got, want["out0"], rtol=2e-2, atol=2e-2)
