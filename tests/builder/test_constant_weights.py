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
