"""An explicitly quantized ONNX model (QuantizeLinear / DequantizeLinear around every
convolution and matrix product, INT8 weights stored as initializers) of the digits CNN: the
parser maps it onto Q/DQ layers, the builder folds them into quantized layers, and the
outputs match onnxruntime's."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import engine as trt
from tests.quantization.digits import accuracy, digits, trained_cnn
from tests.quantization.test_accuracy import activation_amax
from tests.support import CollectingLogger


def qdq_model() -> bytes:
    model = trained_cnn()
    amax = activation_amax()
    inits, nodes = [], []

    def init(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def qdq(x, scale, name):
        init(f"{name}_s", np.float32(scale))
        init(f"{name}_z", np.int8(0))
        nodes.append(helper.make_node("QuantizeLinear", [x, f"{name}_s", f"{name}_z"],
                                      [f"{name}_q"]))
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s",
                                                           f"{name}_z"], [f"{name}_dq"]))
        return f"{name}_dq"

    def weights(w, axis, name):
        scale = (np.moveaxis(np.abs(w), axis, 0).reshape(w.shape[axis], -1).max(1) / 127)
        shape = [1] * w.ndim
        shape[axis] = -1
        codes = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        init(f"{name}_codes", codes)
        init(f"{name}_s", scale.astype(np.float32))
        init(f"{name}_z", np.zeros(w.shape[axis], np.int8))
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_codes", f"{name}_s",
                                                           f"{name}_z"], [f"{name}_w"],
                                      axis=axis))
        return f"{name}_w"

    h = "x"
    for i, (w, b, stride) in enumerate(((model.w1, model.b1, 1), (model.w2, model.b2, 2))):
        nodes.append(helper.make_node(
            "Conv", [qdq(h, amax[i] / 127, f"a{i}"), weights(w, 0, f"w{i}"),
                     init(f"b{i}", b)], [f"c{i}"], pads=[1, 1, 1, 1], strides=[stride] * 2))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        h = f"r{i}"
    nodes.append(helper.make_node("Reshape", [h, init("shape", np.array([-1, 256]))], ["flat"]))
    nodes.append(helper.make_node("MatMul", [qdq("flat", amax[2] / 127, "a2"),
                                             weights(model.w3, 1, "w3")], ["mm"]))
    nodes.append(helper.make_node("Add", ["mm", init("b3", model.b3)], ["logits"]))
    graph = helper.make_graph(
        nodes, "digits_qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                            ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx_model.ir_version = 8
    return onnx_model.SerializeToString()


@pytest.mark.parametrize("level", ["ORT_DISABLE_ALL", "ORT_ENABLE_ALL"])
def test_qdq_onnx_model_matches_onnxruntime(level):
    data = digits()
    model = qdq_model()
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    parser = trt.OnnxParser(net, logger)
    assert parser.parse(model), [parser.get_error(i) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    profile = builder.create_optimization_profile()
    n = len(data.test_y)
    profile.set_shape("x", (1, 1, 8, 8), (n, 1, 8, 8), (n, 1, 8, 8))
    config.add_optimization_profile(profile)
    config.set_flag(trt.BuilderFlag.INT8)
    plan = builder.build_serialized_network(net, config)
    assert plan is not None, logger.errors()
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    types = [layer.layer_type.name for layer in engine._network._layers]
    assert types.count("FUSED_QUANTIZED_CONVOLUTION") == 2  # each with its ReLU
    assert types.count("QUANTIZED_MATRIX_MULTIPLY") == 1
    ours = engine.create_execution_context().infer({"x": data.test_x})["logits"]

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"x": data.test_x})[0]
    if level == "ORT_DISABLE_ALL":  # onnxruntime runs the Q/DQ nodes as written
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    else:
        # onnxruntime fuses Q/DQ into QLinearConv / QLinearMatMul and requantizes in fixed
        # point: a value a hair from a rounding boundary can land one code apart.
        close = np.isclose(ours, theirs, rtol=1e-4, atol=1e-4)
        assert close.mean() >= 0.75 and np.abs(ours - theirs).max() < 0.5
        assert np.mean(np.argmax(ours, 1) == np.argmax(theirs, 1)) >= 0.99
    print(f"\nONNX Q/DQ model ({level}): ours {accuracy(ours, data.test_y):.2f}%, "
          f"onnxruntime {accuracy(theirs, data.test_y):.2f}%, "
          f"max |difference| {np.abs(ours - theirs).max():.2e}")
