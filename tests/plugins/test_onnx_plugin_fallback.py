"""The ONNX parser falls back to a registered plugin for ops it has no importer for."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import engine as trt


def model_with(node, inputs, initializers=()):
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def parse_and_run(model, feeds):
    logger = trt.Logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    ok = parser.parse(model.SerializeToString())
    errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
    if not ok:
        return None, errors
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    engine = trt.engine_from_plan(builder.build_serialized_network(network, config))
    return engine.create_execution_context().infer(feeds)["y"], errors


def test_unknown_op_becomes_the_registered_plugin_with_its_attributes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 3, 3)).astype(np.float32)
    scale, bias = np.array([1, 2, 3, 4], np.float32), np.array([0, 1, 0, -1], np.float32)
    node = helper.make_node("GroupNormalizationPlugin", ["x", "scale", "bias"], ["y"],
                            eps=1e-4, num_groups=2, plugin_version="1", plugin_namespace="")
    model = model_with(node, [("x", x.shape)], [numpy_helper.from_array(scale, "scale"),
                                                 numpy_helper.from_array(bias, "bias")])
    y, errors = parse_and_run(model, {"x": x})
    assert errors == []
    g = x.reshape(1, 2, -1).astype(np.float64)
    normed = (g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-4)
    expected = normed.reshape(x.shape) * scale[:, None, None] + bias[:, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_unknown_op_without_a_plugin_is_still_refused():
    node = helper.make_node("NoSuchOp", ["x"], ["y"])
    y, errors = parse_and_run(model_with(node, [("x", (2,))]), {})
    assert y is None and "no importer and no plugin for op NoSuchOp" in errors[0]


def test_plugin_version_attribute_selects_the_creator():
    node = helper.make_node("GroupNormalizationPlugin", ["x", "x", "x"], ["y"],
                            plugin_version="7")
    y, errors = parse_and_run(model_with(node, [("x", (1, 2, 2))]), {})
    assert y is None and "no plugin for op GroupNormalizationPlugin" in errors[0]
    assert isinstance(onnx.helper.get_attribute_value(node.attribute[0]), bytes)
