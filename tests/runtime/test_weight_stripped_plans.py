"""Weight-stripped plans (TensorRT 10): ``BuilderFlag.STRIP_PLAN`` with REFIT or
REFIT_IDENTICAL, and ``serialize_with_config`` with ``SerializationFlag.EXCLUDE_WEIGHTS``.
The plan holds no weights; the loaded engine lists them as missing, refuses to run with the
reason, and after a refit from the ONNX model (or by name) computes what the full engine
computes; serialized again it holds the weights."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from tests.runtime.test_onnx_refitter import X, build_plan, make_model
from tests.support import CollectingLogger

NAMES = ["conv.bias", "conv.weight", "fc.bias", "fc.weight"]


def load(plan):
    logger = CollectingLogger()
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine is not None, logger.errors()
    return engine, logger


def run(engine):
    return engine.create_execution_context().infer({"x": X})["y"]


@pytest.mark.parametrize("refit_flag", [trt.BuilderFlag.REFIT, trt.BuilderFlag.REFIT_IDENTICAL])
def test_a_stripped_plan_runs_after_a_refit_from_the_onnx_model(refit_flag):
    model = make_model(3, channels=64)
    full = build_plan(model)
    stripped = build_plan(model, refit_flag, trt.BuilderFlag.STRIP_PLAN)
    assert len(stripped) < len(full) // 10  # the fc weights are most of the full plan
    engine, logger = load(stripped)
    assert engine.refittable
    refitter = trt.Refitter(engine, logger)
    assert refitter.get_missing_weights() == NAMES
    with pytest.raises(trt.ExecutionError, match="STRIP_PLAN.*refit them first.*conv.bias"):
        run(engine)
    context = engine.create_execution_context()
    y = np.empty((2, 5), np.float32)
    context.set_input_shape("x", X.shape)
    context.set_tensor_address("x", X.ctypes.data)
    context.set_tensor_address("y", y.ctypes.data)
    assert not context.execute_async_v3(0)
    assert "refit them first" in logger.errors()[-1]

    assert not refitter.refit_cuda_engine()  # nothing given yet
    assert "not given yet" in logger.errors()[-1]
    assert trt.OnnxParserRefitter(refitter, logger).refit_from_bytes(model.SerializeToString())
    assert refitter.get_missing_weights() == []
    assert refitter.refit_cuda_engine()
    want = run(load(full)[0])
    np.testing.assert_array_equal(run(engine), want)
    assert context.execute_async_v3(0)  # a context made before the refit runs too
    np.testing.assert_array_equal(y, want)
    again, _ = load(bytes(engine.serialize()))  # the refitted plan holds the weights
    np.testing.assert_array_equal(run(again), want)


def test_strip_plan_needs_a_refit_flag():
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    assert trt.OnnxParser(network, logger).parse(make_model(1).SerializeToString())
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    config.set_flag(trt.BuilderFlag.STRIP_PLAN)
    assert builder.build_serialized_network(network, config) is None
    assert "STRIP_PLAN" in logger.errors()[-1] and "REFIT" in logger.errors()[-1]


def test_serialize_with_config_excludes_weights_of_a_refittable_engine():
    model = make_model(4)
    engine, logger = load(build_plan(model, trt.BuilderFlag.REFIT))
    want = run(engine)
    config = engine.create_serialization_config()
    assert config.get_flag(trt.SerializationFlag.INCLUDE_REFIT)
    assert not config.get_flag(trt.SerializationFlag.EXCLUDE_WEIGHTS)
    config.set_flag(trt.SerializationFlag.EXCLUDE_WEIGHTS)
    stripped, stripped_logger = load(bytes(engine.serialize_with_config(config)))
    assert stripped.create_serialization_config().get_flag(
        trt.SerializationFlag.EXCLUDE_WEIGHTS)
    refitter = trt.Refitter(stripped, stripped_logger)
    assert refitter.get_missing_weights() == NAMES
    for name in NAMES:  # by name, from the engine that has them
        assert refitter.set_named_weights(name, trt.Refitter(engine, logger)
                                          .get_named_weights(name))
    assert refitter.refit_cuda_engine()
    np.testing.assert_array_equal(run(stripped), want)

    config.clear_flag(trt.SerializationFlag.INCLUDE_REFIT)  # stripped and not refittable
    assert engine.serialize_with_config(config) is None
    assert "INCLUDE_REFIT is cleared" in logger.errors()[-1]
    config.clear_flag(trt.SerializationFlag.EXCLUDE_WEIGHTS)
    fixed, _ = load(bytes(engine.serialize_with_config(config)))
    assert not fixed.refittable
    np.testing.assert_array_equal(run(fixed), want)


def test_excluding_weights_of_an_engine_that_is_not_refittable_is_refused():
    engine, logger = load(build_plan(make_model(5)))
    config = engine.create_serialization_config()
    config.set_flag(trt.SerializationFlag.EXCLUDE_WEIGHTS)
    assert engine.serialize_with_config(config) is None
    assert "not refittable" in logger.errors()[-1]


@pytest.mark.parametrize("record", [
    {"stripped": [2, -1], "array_dtype": "float32", "dtype": "FLOAT"},
    {"stripped": [2], "array_dtype": "object", "dtype": "FLOAT"},
    {"stripped": "2", "array_dtype": "float32", "dtype": "FLOAT"},
    {"stripped": [2], "array_dtype": "float32", "dtype": "FLOATY"},
])
def test_malformed_stripped_weights_records_are_refused(record):
    from engine.errors import PlanError
    from engine.network.serialize import _Decoder

    with pytest.raises(PlanError, match="stripped weights record"):
        _Decoder([]).value(record)


def test_refit_individual_offers_only_the_marked_weights():
    """REFIT_INDIVIDUAL: the Refitter lists and accepts only the weights the network marked;
    with STRIP_PLAN only those are left out of the plan."""
    model_a, model_b = make_model(6), make_model(7)
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    assert trt.OnnxParser(network, logger).parse(model_a.SerializeToString())
    assert network.mark_weights_refittable("fc.weight")
    assert not network.mark_weights_refittable("no.such.weights")
    assert network.mark_weights_refittable("conv.bias")
    assert network.unmark_weights_refittable("conv.bias")
    assert not network.unmark_weights_refittable("conv.bias")
    assert network.are_weights_marked_refittable("fc.weight")
    assert not network.are_weights_marked_refittable("conv.bias")
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    config.set_flag(trt.BuilderFlag.REFIT_INDIVIDUAL)
    config.set_flag(trt.BuilderFlag.STRIP_PLAN)
    engine, engine_logger = load(bytes(builder.build_serialized_network(network, config)))
    refitter = trt.Refitter(engine, engine_logger)
    assert refitter.get_all_weights() == ["fc.weight"]
    assert refitter.get_missing_weights() == ["fc.weight"]
    assert not refitter.set_named_weights("conv.weight", np.zeros((4, 3, 3, 3), np.float32))
    assert trt.OnnxParserRefitter(refitter, engine_logger).refit_from_bytes(
        model_b.SerializeToString())
    assert refitter.refit_cuda_engine()

    mixed = make_model(6)  # model A's convolution and model B's fc weights
    fc_b = next(t for t in model_b.graph.initializer if t.name == "fc.weight")
    for index, tensor in enumerate(mixed.graph.initializer):
        if tensor.name == "fc.weight":
            mixed.graph.initializer[index].CopyFrom(fc_b)
    np.testing.assert_array_equal(run(engine), run(load(build_plan(mixed))[0]))
