"""Kernels given as constant tensors become weights, so convolution fusions apply to them."""

import numpy as np

import engine as trt
from tests.support import build_engine


def conv_with_tensor_kernel(network, tensors):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    kernel = network.add_identity(network.add_constant(w.shape, w).get_output(0)).get_output(0)
    bias = network.add_constant(b.shape, b).get_output(0)
    conv = network.add_convolution_nd(tensors["x"], 4, (3, 3), trt.Weights(), trt.Weights())
    conv.set_input(1, kernel)
    conv.set_input(2, bias)
    conv.name = "conv1"
    relu = network.add_activation(conv.get_output(0), trt.ActivationType.RELU)
    relu.name = "relu1"
    return [relu.get_output(0)], w, b


def test_tensor_kernel_is_inlined_and_fused():
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    captured = {}

    def define(network, tensors):
        outputs, captured["w"], captured["b"] = conv_with_tensor_kernel(network, tensors)
        return outputs

    engine = build_engine(define, {"x": x})
    names = [name for name, _, _ in engine.layer_tactics]
    assert names == ["conv1 + relu1"]
    y = engine.create_execution_context().infer({"x": x})["out0"]
    w, b = captured["w"], captured["b"]
    ref = np.zeros((1, 4, 6, 6))
    for i in range(3):
        for j in range(3):
            ref += np.einsum("nchw,kc->nkhw", x[:, :, i:i + 6, j:j + 6], w[:, :, i, j])
    np.testing.assert_allclose(y, np.maximum(ref + b.reshape(1, 4, 1, 1), 0), rtol=1e-4,
                               atol=1e-5)


def test_uint8_rules_are_enforced_by_every_build():
    from tests.support import CollectingLogger

    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", trt.uint8, (4,))
    network.mark_output(network.add_shuffle(x).get_output(0))
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    assert builder.build_serialized_network(network, config) is None
    assert "must go through a Cast to FLOAT or HALF" in logger.errors()[0]

    ok = builder.create_network(0)
    x = ok.add_input("x", trt.uint8, (4,))
    y = ok.add_cast(ok.add_cast(x, trt.float32).get_output(0), trt.uint8).get_output(0)
    ok.mark_output(y)
    engine = trt.Runtime(logger).deserialize_cuda_engine(
        builder.build_serialized_network(ok, config))
    values = np.array([0, 7, 200, 255], np.uint8)
    np.testing.assert_array_equal(
        engine.create_execution_context().infer({"x": values})[y.name], values)
