"""IErrorRecorder: errors met by a builder, a runtime, an engine's contexts and refitters
reach the recorder set on them (or inherited from what made them) with an ErrorCodeTRT and
the description the log gets; a recorder that raises does not take the call down."""

from __future__ import annotations

import numpy as np

import engine as trt
from tests.runtime.test_onnx_refitter import build_plan, make_model


class Recorder(trt.IErrorRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.errors: list[tuple[trt.ErrorCodeTRT, str]] = []

    def report_error(self, val, desc):
        self.errors.append((val, desc))
        return False

    def num_errors(self):
        return len(self.errors)

    def get_error_code(self, index):
        return self.errors[index][0]

    def get_error_desc(self, index):
        return self.errors[index][1]

    def has_overflowed(self):
        return False

    def clear(self):
        self.errors.clear()


def test_build_deserialize_execute_and_refit_errors_reach_the_recorder():
    recorder = Recorder()
    builder = trt.Builder(trt.Logger(trt.Logger.INTERNAL_ERROR))
    builder.error_recorder = recorder
    network = builder.create_network(0)
    assert network.error_recorder is recorder
    x = network.add_input("x", trt.float32, (2, 3))
    network.mark_output(network.add_activation(x, trt.ActivationType.RELU).get_output(0))
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    config.set_flag(trt.BuilderFlag.STRIP_PLAN)  # without a refit flag: refused
    assert builder.build_serialized_network(network, config) is None
    code, desc = recorder.errors[-1]
    assert code == trt.ErrorCodeTRT.INVALID_CONFIG and "STRIP_PLAN" in desc

    runtime = trt.Runtime(trt.Logger(trt.Logger.INTERNAL_ERROR))
    runtime.error_recorder = recorder
    assert runtime.deserialize_cuda_engine(b"not a plan at all, just bytes") is None
    code, desc = recorder.errors[-1]
    assert code == trt.ErrorCodeTRT.INVALID_ARGUMENT and "deserialize_cuda_engine" in desc

    engine = runtime.deserialize_cuda_engine(build_plan(make_model(1), trt.BuilderFlag.REFIT))
    assert engine.error_recorder is recorder
    context = engine.create_execution_context()
    assert context.error_recorder is recorder
    assert not context.set_input_shape("x", (1, 2))
    assert recorder.errors[-1][0] == trt.ErrorCodeTRT.INVALID_ARGUMENT
    context.set_input_shape("x", (2, 3, 6, 6))
    assert not context.execute_async_v3(0)  # no addresses set
    code, desc = recorder.errors[-1]
    assert code == trt.ErrorCodeTRT.FAILED_EXECUTION and "no address set" in desc

    refitter = trt.Refitter(engine, trt.Logger(trt.Logger.INTERNAL_ERROR))
    assert refitter.error_recorder is recorder
    assert not refitter.set_named_weights("no.such.weights", np.zeros(3, np.float32))
    assert "no refittable weights named" in recorder.errors[-1][1]
    assert recorder.num_errors() == 5


def test_a_recorder_that_raises_does_not_take_the_call_down():
    class Broken(Recorder):
        def report_error(self, val, desc):
            raise RuntimeError("recorder is broken")

    runtime = trt.Runtime(trt.Logger(trt.Logger.INTERNAL_ERROR))
    runtime.error_recorder = Broken()
    assert runtime.deserialize_cuda_engine(b"garbage") is None


def test_the_cpu_target_takes_no_input_consumed_event():
    """The CPU target has no CUDA events (its runs read their inputs before returning)."""
    recorder = Recorder()
    engine = trt.Runtime(trt.Logger(trt.Logger.INTERNAL_ERROR)).deserialize_cuda_engine(
        build_plan(make_model(1)))
    context = engine.create_execution_context()
    context.error_recorder = recorder
    assert context.set_input_consumed_event(0) and context.get_input_consumed_event() == 0
    assert not context.set_input_consumed_event(12345)
    assert "no CUDA events" in recorder.errors[-1][1]
