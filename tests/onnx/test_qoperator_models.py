"""Models quantized by onnxruntime's own tool in its QOperator format (QLinearConv,
QLinearMatMul and their QuantizeLinear / DequantizeLinear boundaries; UINT8 activations with
zero points, INT8 per-channel weights, INT32 biases) import and compute what onnxruntime
computes on them, code for code but for rare one-step roundings."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.onnx.support import parse, run_model

ort = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization")
RNG = np.random.default_rng(41)


def float_model() -> onnx.ModelProto:
    """x [1, 3, 12, 12] -> Conv 3x3 (8) -> Relu -> Conv 1x1 (4) -> Flatten -> MatMul (5)."""
    inits = [
        numpy_helper.from_array((RNG.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32),
                                "w1"),
        numpy_helper.from_array((RNG.standard_normal(8) * 0.1).astype(np.float32), "b1"),
        numpy_helper.from_array((RNG.standard_normal((4, 8, 1, 1)) * 0.3).astype(np.float32),
                                "w2"),
        numpy_helper.from_array((RNG.standard_normal(4) * 0.1).astype(np.float32), "b2"),
        numpy_helper.from_array((RNG.standard_normal((4 * 144, 5)) * 0.05).astype(np.float32),
                                "fc"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"]),
        helper.make_node("Flatten", ["c2"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 12, 12))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 5))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


class Batches(quantization.CalibrationDataReader):
    def __init__(self) -> None:
        self.batches = iter([{"x": RNG.standard_normal((1, 3, 12, 12)).astype(np.float32)}
                             for _ in range(4)])

    def get_next(self):
        return next(self.batches, None)


def test_an_onnxruntime_qoperator_model_matches_onnxruntime(tmp_path):
    source, target = tmp_path / "float.onnx", tmp_path / "qoperator.onnx"
    onnx.save(float_model(), source)
    quantization.quantize_static(
        str(source), str(target), Batches(), quant_format=quantization.QuantFormat.QOperator,
        per_channel=True, activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8)
    model = onnx.load(target)
    ops = {n.op_type for n in model.graph.node}
    assert "QLinearConv" in ops, ops
    ok, _, parser = parse(model)
    assert ok, parser.get_error(0)

    x = RNG.standard_normal((1, 3, 12, 12)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    want = session.run(None, {"x": x})[0]
    got = run_model(model, {"x": x})["y"]
    # The output is dequantized: equal codes but where a requantization rounds across a
    # half step (float32 sums here, INT32 sums with a float multiplier in onnxruntime).
    (last,) = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    step = float(inits[last.input[1]])
    assert np.abs(got - want).max() <= step * 1.001
    assert np.mean(np.abs(got - want) < step / 2) >= 0.8
