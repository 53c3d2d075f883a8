"""Per-layer precision, the engine inspector, and build progress."""

from __future__ import annotations

import json

import numpy as np
import pytest

import engine as trt
from engine.builder.progress import IProgressMonitor
from engine.runtime.inspector import LayerInformationFormat
from tests.support import CollectingLogger

rng = np.random.default_rng(3)
X = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)


def _build(flags=(), half_conv=False, verbosity=trt.ProfilingVerbosity.DETAILED, monitor=None,
           logger=None):
    logger = logger or CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, X.shape)
    conv = network.add_convolution_nd(x, 4, (3, 3), W, np.ones(4, np.float32))
    conv.name = "conv1"
    if half_conv:
        conv.precision = trt.DataType.HALF
    relu = network.add_activation(conv.get_output(0), trt.ActivationType.RELU)
    relu.name = "relu1"
    pool = network.add_pooling_nd(relu.get_output(0), trt.PoolingType.MAX, (2, 2))
    pool.stride_nd = (2, 2)
    pool.name = "pool1"
    pool.get_output(0).name = "y"
    network.mark_output(pool.get_output(0))
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    config.profiling_verbosity = verbosity
    for flag in flags:
        config.set_flag(flag)
    if monitor is not None:
        config.progress_monitor = monitor
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors()
    return trt.Runtime(logger).deserialize_cuda_engine(plan)


def _format_of(precision):
    return {"FLOAT": "Row major linear FP32", "HALF": "Row major linear FP16"}[precision]


def _reference():
    engine = _build()
    return engine.create_execution_context().infer({"x": X})["y"]


def test_obeyed_half_precision_runs_the_layer_in_half_with_reformats():
    engine = _build([trt.BuilderFlag.FP16, trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS],
                    half_conv=True)
    got = engine.create_execution_context().infer({"x": X})["y"]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _reference(), rtol=2e-2, atol=2e-2)
    info = json.loads(engine.create_engine_inspector().get_engine_information(
        LayerInformationFormat.JSON))
    by_name = {layer["Name"]: layer for layer in info["Layers"]}
    fused = by_name["conv1 + relu1"]
    assert fused["Precision"] == "HALF"
    assert fused["Inputs"][0]["Format/Datatype"] == "Row major linear FP16"
    reformats = [layer for layer in info["Layers"] if "reformat" in layer["Name"]]
    assert [r["Outputs"][0]["Format/Datatype"] for r in reformats] == [
        "Row major linear FP16", "Row major linear FP32"]
    # pool1 is free to run in either precision (chosen by timing); its input follows it.
    pool = by_name["pool1"]
    assert pool["Inputs"][0]["Format/Datatype"] == _format_of(pool["Precision"])
    assert info["Bindings"] == ["x", "y"]


def test_fp16_flag_alone_chooses_per_layer_by_timing_and_stays_correct():
    logger = CollectingLogger()
    engine = _build([trt.BuilderFlag.FP16], logger=logger)
    got = engine.create_execution_context().infer({"x": X})["y"]
    np.testing.assert_allclose(got, _reference(), rtol=2e-2, atol=2e-2)
    assert any("layer precisions:" in m for _, m in logger.messages)


def test_without_precision_flags_every_layer_is_float():
    inspector = _build().create_engine_inspector()
    info = json.loads(inspector.get_engine_information(LayerInformationFormat.JSON))
    assert {layer["Precision"] for layer in info["Layers"]} == {"FLOAT"}
    assert [layer["Name"] for layer in info["Layers"]] == ["conv1 + relu1", "pool1"]
    assert info["Layers"][0]["TacticName"].startswith("cpu.fused_convolution")
    assert info["Layers"][1]["Outputs"][0]["Dimensions"] == [2, 4, 2, 2]


def test_strongly_typed_networks_refuse_precision_setters():
    network = trt.Builder(trt.Logger()).create_network(
        1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    x = network.add_input("x", trt.float32, (2,))
    layer = network.add_activation(x, trt.ActivationType.RELU)
    with pytest.raises(trt.NetworkError, match="strongly typed"):
        layer.precision = trt.DataType.HALF


def test_inspector_follows_profiling_verbosity():
    names = _build(verbosity=trt.ProfilingVerbosity.LAYER_NAMES_ONLY).create_engine_inspector()
    assert names.get_layer_information(0, LayerInformationFormat.ONELINE) == "conv1 + relu1"
    assert json.loads(names.get_engine_information(LayerInformationFormat.JSON))["Layers"] == [
        "conv1 + relu1", "pool1"]
    hidden = _build(verbosity=trt.ProfilingVerbosity.NONE).create_engine_inspector()
    assert hidden.get_layer_information(0, LayerInformationFormat.ONELINE) == ""
    detailed = _build().create_engine_inspector()
    line = detailed.get_layer_information(1, LayerInformationFormat.ONELINE)
    assert line.startswith("pool1 (POOLING, FLOAT, tactic cpu.")
    with pytest.raises(IndexError):
        detailed.get_layer_information(5, LayerInformationFormat.JSON)


def test_inspector_shows_the_execution_context_shapes():
    engine = _build()
    inspector = engine.create_engine_inspector()
    context = engine.create_execution_context()
    inspector.execution_context = context
    assert inspector.execution_context is context
    layer = json.loads(inspector.get_layer_information(0, LayerInformationFormat.JSON))
    assert layer["Inputs"][0]["Dimensions"] == list(X.shape)


class Recorder(IProgressMonitor):
    def __init__(self, cancel_at=None):
        self.events = []
        self.cancel_at = cancel_at

    def phase_start(self, phase_name, parent_phase, num_steps):
        self.events.append(("start", phase_name, num_steps))

    def step_complete(self, phase_name, step):
        self.events.append(("step", phase_name, step))
        return (phase_name, step) != self.cancel_at

    def phase_finish(self, phase_name):
        self.events.append(("finish", phase_name))


def test_progress_monitor_sees_every_phase_and_logger_gets_info():
    monitor, logger = Recorder(), CollectingLogger()
    _build([trt.BuilderFlag.FP16], monitor=monitor, logger=logger)
    starts = [e[1] for e in monitor.events if e[0] == "start"]
    assert starts == ["Graph optimization", "Precision selection", "Tactic selection"]
    assert [e[1] for e in monitor.events if e[0] == "finish"] == starts
    (steps,) = [e[2] for e in monitor.events if e[:2] == ("start", "Tactic selection")]
    assert [e[2] for e in monitor.events if e[:2] == ("step", "Tactic selection")] == list(
        range(steps))
    assert any(s == trt.Logger.INFO and "build phase 'Tactic selection' finished" in m
               for s, m in logger.messages)


def test_progress_monitor_can_cancel_the_build():
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (2,))
    network.mark_output(network.add_activation(x, trt.ActivationType.RELU).get_output(0))
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    config.progress_monitor = Recorder(cancel_at=("Tactic selection", 0))
    assert builder.build_serialized_network(network, config) is None
    assert any("cancelled" in m for m in logger.errors())
