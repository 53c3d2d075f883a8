"""``OnnxParserRefitter``: an engine built from ONNX model A, refitted with the initializers of
model B (same architecture), computes what an engine built from B computes."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import engine as trt
from tests.support import CollectingLogger


def make_model(seed, channels=4):
    rng = np.random.default_rng(seed)
    inits = {
        "conv.weight": rng.standard_normal((channels, 3, 3, 3)).astype(np.float32),
        "conv.bias": rng.standard_normal(channels).astype(np.float32),
        "fc.weight": rng.standard_normal((channels * 36, 5)).astype(np.float32),
        "fc.bias": rng.standard_normal(5).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="conv",
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc.weight"], ["m"], name="fc"),
        helper.make_node("Add", ["m", "fc.bias"], ["y"], name="fc_add"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 3, 6, 6))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def build_plan(model, *flags):
    """The CPU plan of ONNX ``model`` built with ``flags``."""
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model.SerializeToString()), parser.get_error(0)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    for flag in flags:
        config.set_flag(flag)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors()
    return bytes(plan)


def build(model, refit):
    plan = build_plan(model, *([trt.BuilderFlag.REFIT] if refit else []))
    return trt.Runtime(CollectingLogger()).deserialize_cuda_engine(plan)


X = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)


def run(engine):
    return engine.create_execution_context().infer({"x": X})["y"]


def test_refit_with_the_initializers_of_another_model(tmp_path):
    model_a, model_b = make_model(1), make_model(2)
    engine = build(model_a, refit=True)
    expected = run(build(model_b, refit=False))
    assert not np.allclose(run(engine), expected)
    path = tmp_path / "b.onnx"
    onnx.save(model_b, str(path))
    refitter = trt.Refitter(engine, CollectingLogger())
    parser_refitter = trt.OnnxParserRefitter(refitter, CollectingLogger())
    assert parser_refitter.refit_from_file(str(path)), parser_refitter.get_error(0)
    assert parser_refitter.num_errors == 0
    assert refitter.refit_cuda_engine()
    np.testing.assert_allclose(run(engine), expected, rtol=1e-5, atol=1e-5)
    # And back, from bytes.
    assert parser_refitter.refit_from_bytes(model_a.SerializeToString())
    assert refitter.refit_cuda_engine()
    np.testing.assert_allclose(run(engine), run(build(model_a, refit=False)), rtol=1e-5,
                               atol=1e-5)


def test_a_model_of_another_architecture_is_refused_with_errors():
    engine = build(make_model(1), refit=True)
    before = run(engine)
    refitter = trt.Refitter(engine, CollectingLogger())
    parser_refitter = trt.OnnxParserRefitter(refitter, CollectingLogger())
    assert not parser_refitter.refit_from_bytes(make_model(2, channels=8).SerializeToString())
    assert parser_refitter.num_errors > 0
    assert parser_refitter.get_error(0).code() == trt.ErrorCode.REFIT_FAILED
    parser_refitter.clear_errors()
    assert parser_refitter.num_errors == 0
    assert not parser_refitter.refit_from_bytes(b"not a model")
    assert parser_refitter.get_error(0).code() == trt.ErrorCode.MODEL_DESERIALIZE_FAILED
    np.testing.assert_array_equal(run(engine), before)


def initializers(model):
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_the_refitter_lists_and_accepts_the_initializer_names():
    model_a, model_b = make_model(1), make_model(2)
    engine = build(model_a, refit=True)
    refitter = trt.Refitter(engine, CollectingLogger())
    assert refitter.get_all_weights() == ["conv.bias", "conv.weight", "fc.bias", "fc.weight"]
    # fc.bias reaches the engine reshaped to (1, 5) for the Add's broadcast: still its name.
    for name, value in initializers(model_b).items():
        assert refitter.set_named_weights(name, value), name
        np.testing.assert_array_equal(refitter.get_named_weights(name).numpy().reshape(-1),
                                      value.reshape(-1))
    assert refitter.refit_cuda_engine()
    np.testing.assert_allclose(run(engine), run(build(model_b, refit=False)), rtol=1e-5,
                               atol=1e-5)
    # The layer-based names stay accepted as aliases.
    weights_a = initializers(model_a)
    assert refitter.set_named_weights("conv.kernel", weights_a["conv.weight"])
    assert refitter.set_weights("conv", trt.WeightsRole.BIAS, weights_a["conv.bias"])
    assert refitter.set_named_weights("fc.weight", weights_a["fc.weight"])
    assert refitter.set_named_weights("fc.bias", weights_a["fc.bias"])
    assert refitter.refit_cuda_engine()
    np.testing.assert_allclose(run(engine), run(build(model_a, refit=False)), rtol=1e-5,
                               atol=1e-5)


def make_gemm_model(seed):
    """A 1-D Conv (its kernel a reshaped view of the initializer), a Gemm with transB and
    alpha, and a MatMul whose weights the engine transposes at run time, not at import."""
    rng = np.random.default_rng(seed)
    inits = {
        "c1.weight": rng.standard_normal((4, 3, 3)).astype(np.float32),
        "c1.bias": rng.standard_normal(4).astype(np.float32),
        "g.weight": rng.standard_normal((5, 32)).astype(np.float32),
        "g.bias": rng.standard_normal(5).astype(np.float32),
        "m.weight": rng.standard_normal((5, 2)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "c1.weight", "c1.bias"], ["c"], name="c1", pads=[1, 1]),
        helper.make_node("Flatten", ["c"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "g.weight", "g.bias"], ["g"], name="g", transB=1,
                         alpha=0.5),
        helper.make_node("MatMul", ["g", "m.weight"], ["y"], name="m"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 3, 8))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_reshaped_and_transposed_initializers_refit_by_name():
    model_a, model_b = make_gemm_model(1), make_gemm_model(2)
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    x = np.random.default_rng(3).standard_normal((2, 3, 8)).astype(np.float32)

    def engine_of(model, refit):
        network = builder.create_network(0)
        assert trt.OnnxParser(network, logger).parse(model.SerializeToString())
        config = builder.create_builder_config()
        config.default_device_type = trt.DeviceType.CPU
        if refit:
            config.set_flag(trt.BuilderFlag.REFIT)
        plan = builder.build_serialized_network(network, config)
        return trt.Runtime(logger).deserialize_cuda_engine(plan)

    def outputs(engine):
        return engine.create_execution_context().infer({"x": x})["y"]

    engine = engine_of(model_a, refit=True)
    refitter = trt.Refitter(engine, CollectingLogger())
    weights_b = initializers(model_b)
    names = refitter.get_all_weights()
    # Every initializer by its name; beyond them only the constant the parser made for alpha.
    assert set(weights_b) < set(names) and len(names) == len(weights_b) + 1
    np.testing.assert_array_equal(
        refitter.get_named_weights((set(names) - set(weights_b)).pop()).numpy(), [[0.5]])
    for name, value in weights_b.items():
        assert refitter.set_named_weights(name, value), name
    assert refitter.refit_cuda_engine()
    expected = outputs(engine_of(model_b, refit=False))
    np.testing.assert_allclose(outputs(engine), expected, rtol=1e-5, atol=1e-5)
    # The refitted plan keeps the names.
    reloaded = trt.Runtime(logger).deserialize_cuda_engine(engine.serialize())
    assert trt.Refitter(reloaded, CollectingLogger()).get_all_weights() == names
    np.testing.assert_allclose(outputs(reloaded), expected, rtol=1e-5, atol=1e-5)
    # And the parser refitter, by initializer name.
    parser_refitter = trt.OnnxParserRefitter(refitter, CollectingLogger())
    assert parser_refitter.refit_from_bytes(model_a.SerializeToString())
    assert refitter.refit_cuda_engine()
    np.testing.assert_allclose(outputs(engine), outputs(engine_of(model_a, refit=False)),
                               rtol=1e-5, atol=1e-5)
