"""Refit on the GPU target: a refitted engine uploads its new weights (contexts drop the CUDA
graphs captured with the old ones), and a weight-stripped plan uploads nothing until a refit
gives its weights, then runs."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from engine.kernels.backends import gpu_available
from tests.runtime.test_onnx_refitter import X, make_model
from tests.support import CollectingLogger

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not gpu_available(), reason="needs a GPU")


def build(model, *flags):
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    assert trt.OnnxParser(network, logger).parse(model.SerializeToString())
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.GPU
    config.clear_flag(trt.BuilderFlag.TF32)
    for flag in flags:
        config.set_flag(flag)
    engine = trt.Runtime(logger).deserialize_cuda_engine(
        builder.build_serialized_network(network, config))
    assert engine is not None, logger.errors()
    return engine, logger


def run(context):
    for _ in range(3):  # eager, captured, replayed
        y = cupy.asnumpy(context.infer({"x": X})["y"])
    return y


def test_refit_on_the_gpu_replaces_the_weights_graphs_use():
    model_a, model_b = make_model(1), make_model(2)
    engine, logger = build(model_a, trt.BuilderFlag.REFIT)
    context = engine.create_execution_context()
    before = run(context)
    refitter = trt.Refitter(engine, logger)
    assert trt.OnnxParserRefitter(refitter, logger).refit_from_bytes(
        model_b.SerializeToString())
    assert refitter.refit_cuda_engine()
    want = run(build(model_b)[0].create_execution_context())
    got = run(context)  # the same context: its graphs were captured with the old weights
    assert not np.allclose(got, before)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_weight_stripped_plan_runs_on_the_gpu_after_a_refit():
    model = make_model(3)
    engine, logger = build(model, trt.BuilderFlag.REFIT, trt.BuilderFlag.STRIP_PLAN)
    assert engine._device_weight_bytes == 0  # nothing uploaded yet
    context = engine.create_execution_context()
    with pytest.raises(trt.ExecutionError, match="refit them first"):
        context.infer({"x": X})
    refitter = trt.Refitter(engine, logger)
    assert trt.OnnxParserRefitter(refitter, logger).refit_from_bytes(model.SerializeToString())
    assert refitter.refit_cuda_engine()
    assert engine._device_weight_bytes > 0
    want = run(build(model)[0].create_execution_context())
    np.testing.assert_allclose(run(context), want, rtol=1e-5, atol=1e-5)
