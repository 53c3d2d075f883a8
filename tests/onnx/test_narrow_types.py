"""Types TensorRT lacks: widened graph inputs, emulated casts to them (against ml_dtypes and
onnx's reference evaluator), saturating casts to FLOAT8E4M3FN."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import engine as trt
from tests.onnx.support import parse, run_model
from tests.support import CollectingLogger


def make_model(nodes, inputs, outputs, opset=25):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def vinfo(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


VALUES = np.array([0.0, -0.3, 0.5, 1.5, 2.5, -3.75, 7.2, 100.0, 1e5, -1e6, np.inf, -np.inf,
                   np.nan, 1e-9, 448.0, 57344.0, 60000.0], np.float32)


@pytest.mark.parametrize("to", [TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2,
                                TensorProto.FLOAT8E5M2FNUZ, TensorProto.FLOAT4E2M1,
                                TensorProto.INT4, TensorProto.UINT4, TensorProto.INT2,
                                TensorProto.UINT2, TensorProto.FLOAT8E4M3FN])
@pytest.mark.parametrize("saturate", [0, 1])
def test_cast_to_narrow_types_matches_onnx_reference(to, saturate):
    integer = to in (TensorProto.INT4, TensorProto.UINT4, TensorProto.INT2, TensorProto.UINT2)
    if integer or to == TensorProto.FLOAT4E2M1:
        x = VALUES[np.isfinite(VALUES) & (np.abs(VALUES) < 100)]
    else:
        x = VALUES
    model = make_model([helper.make_node("Cast", ["x"], ["y"], to=to, saturate=saturate)],
                       [vinfo("x", [len(x)])], [vinfo("y", [len(x)], to)])
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    got = run_model(model, {"x": x})["y"]
    if to == TensorProto.FLOAT8E4M3FN:
        assert got.dtype == want.dtype  # an engine type: no emulation
    else:
        assert got.dtype == (np.int8 if integer else np.float32)
    np.testing.assert_array_equal(got.astype(np.float64), want.astype(np.float64))


def test_emulated_cast_is_announced():
    model = make_model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E5M2)],
                       [vinfo("x", [3])], [vinfo("y", [3], TensorProto.FLOAT8E5M2)])
    logger = CollectingLogger()
    network = trt.Builder(logger).create_network(0)
    assert trt.OnnxParser(network, logger).parse(model.SerializeToString())
    assert network.get_output(0).dtype == trt.float32
    assert any(m.startswith("emulated: Cast to FLOAT8E5M2") for _, m in logger.messages)


@pytest.mark.parametrize("elem, np_type, carrier", [
    (TensorProto.FLOAT8E5M2, ml_dtypes.float8_e5m2, np.float32),
    (TensorProto.FLOAT8E4M3FNUZ, ml_dtypes.float8_e4m3fnuz, np.float32),
    (TensorProto.FLOAT4E2M1, ml_dtypes.float4_e2m1fn, np.float32),
    (TensorProto.UINT4, ml_dtypes.uint4, np.int8),
    (TensorProto.INT2, ml_dtypes.int2, np.int8)])
def test_narrow_graph_inputs_are_widened_losslessly(elem, np_type, carrier):
    model = make_model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
                       [vinfo("x", [4], elem)], [vinfo("y", [4])])
    ok, network, _ = parse(model)
    assert ok
    assert trt.nptype(network.get_input(0).dtype) == carrier
    x = np.array([0, 1, 1.5, 3], np.float32).astype(np_type)
    got = run_model(model, {"x": x.astype(carrier)})["y"]
    np.testing.assert_array_equal(got, x.astype(np.float32))


def test_castlike_takes_the_widened_type_of_like():
    model = make_model([helper.make_node("CastLike", ["x", "like"], ["y"])],
                       [vinfo("x", [3]), vinfo("like", [1], TensorProto.UINT4)],
                       [vinfo("y", [3], TensorProto.UINT4)])
    got = run_model(model, {"x": np.array([3.0, 17.0, -1.0], np.float32),
                            "like": np.zeros(1, np.int8)})["y"]
    want = np.array([3.0, 17.0, -1.0], np.float32).astype(ml_dtypes.uint4).astype(np.int8)
    np.testing.assert_array_equal(got, want)
    assert list(got) == [3, 1, 15]


def test_quantize_to_uint4_saturates_to_its_range():
    model = make_model([helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["y"])],
                       [vinfo("x", [4]), vinfo("s", []), vinfo("zp", [], TensorProto.UINT4)],
                       [vinfo("y", [4], TensorProto.UINT4)])
    x = np.array([-5.0, 2.0, 9.0, 100.0], np.float32)
    got = run_model(model, {"x": x, "s": np.float32(2.0), "zp": np.int8(1)})["y"]
    assert list(got) == [0, 2, 5, 15]
