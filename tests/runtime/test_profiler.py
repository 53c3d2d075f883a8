"""IProfiler on an execution context (TensorRT's ``context.profiler``): one report per layer
of the engine, named as the engine names its layers, after each run or on
``report_to_profiler`` when ``enqueue_emits_profile`` is off."""

from __future__ import annotations

import time

import numpy as np
import pytest

import engine as trt
from tests.support import CollectingLogger, build_engine


class Recorder(trt.IProfiler):
    def __init__(self) -> None:
        super().__init__()
        self.reports: list[tuple[str, float]] = []

    def report_layer_time(self, layer_name: str, ms: float) -> None:
        self.reports.append((layer_name, ms))


def _network(net: trt.INetworkDefinition, t: dict[str, trt.ITensor]) -> list[trt.ITensor]:
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    conv = net.add_convolution_nd(t["x"], 4, (3, 3), w)
    conv.name = "conv"
    relu = net.add_activation(conv.get_output(0), trt.ActivationType.RELU)
    relu.name = "relu"
    pool = net.add_pooling_nd(relu.get_output(0), trt.PoolingType.MAX, (2, 2))
    pool.name = "pool"
    return [pool.get_output(0)]


X = np.random.default_rng(1).standard_normal((1, 3, 10, 10)).astype(np.float32)


def _layer_names(engine: trt.ICudaEngine) -> list[str]:
    return [name for name, _, _ in engine.layer_tactics]


def test_each_run_reports_every_layer_once_in_order() -> None:
    engine = build_engine(_network, {"x": X})
    context = engine.create_execution_context()
    recorder = Recorder()
    context.profiler = recorder
    assert context.profiler is recorder and context.enqueue_emits_profile
    context.infer({"x": X})
    names = _layer_names(engine)
    assert [n for n, _ in recorder.reports] == names
    assert "conv + relu" in names  # fused layers are named after the layers they replaced
    assert all(ms >= 0 for _, ms in recorder.reports)
    y = np.empty(tuple(engine.get_tensor_shape("out0")), np.float32)
    assert context.execute_v2([X.ctypes.data, y.ctypes.data])  # the pointer path too
    assert [n for n, _ in recorder.reports] == names * 2


def test_times_are_the_layers_own(monkeypatch) -> None:
    """An identity whose only tactic sleeps 20 ms reports at least that; the layer after it
    far less."""
    from engine.kernels import registry

    def sleeping(layer, inputs):  # noqa: ANN001, ANN202
        time.sleep(0.02)
        return [inputs[0].copy()]

    monkeypatch.setitem(registry._TACTICS, ("cpu", trt.LayerType.IDENTITY), [registry.Tactic(
        "cpu", trt.LayerType.IDENTITY, "cpu.identity_sleeping_for_test", sleeping)])

    def define(net, t):  # noqa: ANN001, ANN202
        identity = net.add_identity(t["x"])
        identity.name = "slow"
        neg = net.add_unary(identity.get_output(0), trt.UnaryOperation.NEG)
        neg.name = "fast"
        return [neg.get_output(0)]

    engine = build_engine(define, {"x": X})
    assert dict((n, t) for n, _, t in engine.layer_tactics)["slow"] == \
        "cpu.identity_sleeping_for_test"
    context = engine.create_execution_context()
    context.profiler = recorder = Recorder()
    context.infer({"x": X})
    times = dict(recorder.reports)
    assert times["slow"] >= 19.0 and times["fast"] < 10.0, times


def test_report_to_profiler_when_runs_do_not_emit() -> None:
    engine = build_engine(_network, {"x": X})
    context = engine.create_execution_context()
    recorder = Recorder()
    context.profiler = recorder
    context.enqueue_emits_profile = False
    context.infer({"x": X})
    assert recorder.reports == []
    assert context.report_to_profiler()
    assert [n for n, _ in recorder.reports] == _layer_names(engine)
    assert context.report_to_profiler()  # the same run again
    assert len(recorder.reports) == 2 * len(_layer_names(engine))


def test_no_profiler_no_times_and_clear_errors() -> None:
    logger = CollectingLogger()
    engine = trt.Runtime(logger).deserialize_cuda_engine(
        build_engine(_network, {"x": X}).serialize())
    context = engine.create_execution_context()
    assert context.profiler is None
    assert not context.report_to_profiler()
    assert any("no profiler is set" in e for e in logger.errors())
    context.profiler = Recorder()
    assert not context.report_to_profiler()
    assert any("no run since the profiler was set" in e for e in logger.errors())
    with pytest.raises(TypeError, match="expected an IProfiler"):
        context.profiler = object()
    context.profiler = None
    context.infer({"x": X})
    assert not context.report_to_profiler()


def test_the_base_class_must_be_implemented() -> None:
    with pytest.raises(NotImplementedError):
        trt.IProfiler().report_layer_time("layer", 1.0)
