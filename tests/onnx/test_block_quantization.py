"""Block quantization from ONNX (opset 21: QuantizeLinear / DequantizeLinear with
``block_size``): weights dequantized per block become a dequantize layer with block scales
(so the builder can fold them), a cut last block or a zero point is spread over the input,
and every form computes what onnxruntime computes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.network.layer import LayerType
from tests.onnx.support import parse, run_model

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(31)


def model(k: int, block: int, zero_point: bool, matmul_input: bool = True) -> onnx.ModelProto:
    """y = x @ DequantizeLinear(w_codes, scale, [zero point], axis=0, block_size)."""
    codes = RNG.integers(-128, 128, (k, 6)).astype(np.int8)
    scale = RNG.uniform(0.01, 0.05, (-(-k // block), 6)).astype(np.float32)
    inits = [numpy_helper.from_array(codes, "w"), numpy_helper.from_array(scale, "s")]
    inputs = ["w", "s"]
    if zero_point:
        inits.append(numpy_helper.from_array(
            RNG.integers(-3, 4, scale.shape).astype(np.int8), "z"))
        inputs.append("z")
    nodes = [helper.make_node("DequantizeLinear", inputs, ["wf"], axis=0, block_size=block)]
    nodes.append(helper.make_node("MatMul", ["x", "wf"], ["y"]))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (3, k))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def onnxruntime_outputs(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    m.ir_version = min(m.ir_version, 10)
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("k, block, zero_point, layer", [
    (8, 4, False, True),    # whole blocks, symmetric: a dequantize layer with block scales
    (10, 4, False, False),  # the last block cut: the scale is spread over the weights
    (8, 2, True, False),    # a zero point: the arithmetic spelled out
])
def test_block_dequantized_weights_match_onnxruntime(k, block, zero_point, layer):
    m = model(k, block, zero_point)
    ok, network, _ = parse(m)
    assert ok
    dequantize = [la for la in network if la.layer_type == LayerType.DEQUANTIZE]
    assert bool(dequantize) == layer
    if layer:
        assert tuple(dequantize[0].block_shape) == (block, 1)
    x = RNG.standard_normal((3, k)).astype(np.float32)
    got = run_model(m, {"x": x})["y"]
    np.testing.assert_allclose(got, onnxruntime_outputs(m, x), rtol=1e-5, atol=1e-5)


def test_a_block_size_that_does_not_fit_the_scale_is_refused_with_the_shapes():
    m = model(8, 4, False)
    m.graph.node[0].attribute[1].i = 3  # block_size 3: the scale would need 3 rows, has 2
    ok, _, parser = parse(m)
    assert not ok
    message = str(parser.get_error(0))
    assert "block_size 3" in message and "expected (3, 6)" in message
