"""The parser's API and its refusals: every bad model gives errors naming the node, never an
exception or a hang."""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import engine as trt
from tests.onnx.support import errors, parse, run_model
from tests.support import CollectingLogger


def make_model(nodes, inputs, outputs, initializers=(), opset=17, **kwargs):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kwargs)


def vinfo(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def ort_run(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))


def test_error_codes_are_tensorrts():
    assert [m.name for m in trt.ErrorCode] == [
        "SUCCESS", "INTERNAL_ERROR", "MEM_ALLOC_FAILED", "MODEL_DESERIALIZE_FAILED",
        "INVALID_VALUE", "INVALID_GRAPH", "INVALID_NODE", "UNSUPPORTED_GRAPH",
        "UNSUPPORTED_NODE", "UNSUPPORTED_NODE_ATTR", "UNSUPPORTED_NODE_INPUT",
        "UNSUPPORTED_NODE_DATATYPE", "UNSUPPORTED_NODE_DYNAMIC", "UNSUPPORTED_NODE_SHAPE",
        "REFIT_FAILED"]
    assert [int(m) for m in trt.ErrorCode] == list(range(15))


def test_flags():
    network = trt.Builder(trt.Logger()).create_network(0)
    parser = trt.OnnxParser(network, trt.Logger())
    assert parser.get_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)
    parser.clear_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)
    assert not parser.get_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)
    parser.set_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)
    assert parser.flags == 1


def test_supports_operator():
    parser = trt.OnnxParser(trt.Builder(trt.Logger()).create_network(0), trt.Logger())
    assert parser.supports_operator("Conv")
    assert parser.supports_operator("Relu")
    assert not parser.supports_operator("NoSuchOp")
    assert not parser.supports_operator("StringNormalizer")


def test_gemm_relu_matches_onnxruntime():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((3,)).astype(np.float32)
    model = make_model(
        [helper.make_node("Gemm", ["x", "w", "b"], ["h"], alpha=0.5),
         helper.make_node("Relu", ["h"], ["y"])],
        [vinfo("x", [2, 4])], [vinfo("y", [2, 3])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    x = rng.standard_normal((2, 4)).astype(np.float32)
    got = run_model(model, {"x": x})["y"]
    np.testing.assert_allclose(got, ort_run(model, {"x": x})["y"], rtol=1e-5, atol=1e-6)


def test_symbolic_dims_and_a_shape_subgraph():
    # Shape -> Gather -> Concat -> Reshape: flatten all but the batch dim, batch symbolic
    model = make_model(
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
         helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
         helper.make_node("Concat", ["n1", "minus_one"], ["dims"], axis=0),
         helper.make_node("Reshape", ["x", "dims"], ["y"])],
        [vinfo("x", ["batch", 3, 4])], [vinfo("y", ["batch", 12])],
        [numpy_helper.from_array(np.array(0, np.int64), "zero"),
         numpy_helper.from_array(np.array([0], np.int64), "axes"),
         numpy_helper.from_array(np.array([-1], np.int64), "minus_one")])
    ok, network, parser = parse(model)
    assert ok, [str(e) for e in errors(parser)]
    assert tuple(network.get_input(0).shape) == (-1, 3, 4)
    for batch in (1, 5):
        x = np.arange(batch * 12, dtype=np.float32).reshape(batch, 3, 4)
        np.testing.assert_array_equal(run_model(model, {"x": x})["y"], x.reshape(batch, 12))


def test_node_names_become_layer_names_and_outputs_keep_onnx_names():
    model = make_model([helper.make_node("Relu", ["x"], ["y"], name="act")],
                       [vinfo("x", [2])], [vinfo("y", [2])])
    ok, network, _ = parse(model)
    assert ok
    assert network.get_layer(network.num_layers - 1).name == "act"
    assert network.get_output(0).name == "y"


def test_malformed_protobuf():
    ok, _, parser = parse(b"\x08\x01\x12\xff\xff\xff not a model")
    assert not ok
    (error,) = errors(parser)
    assert error.code() == trt.ErrorCode.MODEL_DESERIALIZE_FAILED
    assert error.node() == -1


def test_random_bytes_never_crash():
    rng = np.random.default_rng(1)
    for _ in range(50):
        ok, _, parser = parse(rng.integers(0, 256, int(rng.integers(1, 200)), np.uint8).tobytes())
        assert not ok and parser.num_errors >= 1


def test_missing_input_names_the_node():
    model = make_model([helper.make_node("Relu", ["nowhere"], ["y"], name="r")],
                       [vinfo("x", [2])], [vinfo("y", [2])])
    ok, _, parser = parse(model)
    assert not ok
    (error,) = errors(parser)
    assert error.code() == trt.ErrorCode.INVALID_GRAPH
    assert "'nowhere'" in error.desc() and "node 0 ('r', Relu)" in error.desc()


def test_cycle_is_refused():
    model = make_model([helper.make_node("Add", ["x", "b"], ["a"], name="n0"),
                        helper.make_node("Relu", ["a"], ["b"], name="n1")],
                       [vinfo("x", [2])], [vinfo("b", [2])])
    ok, _, parser = parse(model)
    assert not ok
    assert errors(parser)[0].code() == trt.ErrorCode.INVALID_GRAPH
    assert "cycle" in errors(parser)[0].desc()


def test_unsorted_nodes_are_imported_in_order():
    model = make_model([helper.make_node("Relu", ["a"], ["y"]),
                        helper.make_node("Neg", ["x"], ["a"])],
                       [vinfo("x", [3])], [vinfo("y", [3])])
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    np.testing.assert_array_equal(run_model(model, {"x": x})["y"], np.maximum(-x, 0))


def test_unknown_domain_is_unsupported_node():
    node = helper.make_node("Frobnicate", ["x"], ["y"], name="f", domain="com.example")
    graph = helper.make_graph([node], "g", [vinfo("x", [2])], [vinfo("y", [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)])
    ok, _, parser = parse(model)
    assert not ok
    (error,) = errors(parser)
    assert error.code() == trt.ErrorCode.UNSUPPORTED_NODE
    assert error.node() == 0 and error.node_name() == "f"
    assert error.node_operator() == "Frobnicate"
    assert "no importer and no plugin for op Frobnicate" in error.desc()
    assert error.file().endswith(".py") and error.func()


def test_unknown_default_domain_op():
    model = make_model([helper.make_node("NotAnOp", ["x"], ["y"], name="z")],
                       [vinfo("x", [2])], [vinfo("y", [2])])
    ok, _, parser = parse(model)
    assert not ok
    assert "no importer and no plugin for op NotAnOp" in errors(parser)[0].desc()


def test_unsupported_input_type():
    model = make_model([helper.make_node("Identity", ["x"], ["y"])],
                       [vinfo("x", [2], TensorProto.COMPLEX64)],
                       [vinfo("y", [2], TensorProto.COMPLEX64)])
    ok, _, parser = parse(model)
    assert not ok
    assert errors(parser)[0].code() == trt.ErrorCode.UNSUPPORTED_GRAPH
    assert "COMPLEX64" in errors(parser)[0].desc()


@pytest.mark.parametrize("elem, narrowed", [(TensorProto.DOUBLE, trt.float32),
                                            (TensorProto.INT16, trt.int32),
                                            (TensorProto.UINT16, trt.int32),
                                            (TensorProto.UINT32, trt.int64),
                                            (TensorProto.UINT64, trt.int64)])
def test_types_tensorrt_lacks_are_narrowed_with_a_warning(elem, narrowed):
    model = make_model([helper.make_node("Add", ["x", "w"], ["y"])],
                       [vinfo("x", [3], elem)], [vinfo("y", [3], elem)],
                       [helper.make_tensor("w", elem, [3], [1, 2, 3])])
    logger = CollectingLogger()
    network = trt.Builder(logger).create_network(0)
    assert trt.OnnxParser(network, logger).parse(model.SerializeToString())
    assert network.get_input(0).dtype == narrowed
    assert network.get_output(0).dtype == narrowed
    warnings = [m for s, m in logger.messages if s == trt.Logger.WARNING]
    name = TensorProto.DataType.Name(elem)
    assert any(m.startswith("narrowed: graph input 'x'") and name in m for m in warnings)
    assert any(m.startswith("narrowed: initializer 'w'") for m in warnings)
    x = np.array([7, 0, 300], trt.nptype(narrowed))
    out = run_model(model, {"x": x})["y"]
    np.testing.assert_array_equal(out, x + np.array([1, 2, 3]))


def test_double_graph_matches_onnxruntime_in_float32():
    model = make_model([helper.make_node("Exp", ["x"], ["y"])],
                       [vinfo("x", [4], TensorProto.DOUBLE)],
                       [vinfo("y", [4], TensorProto.DOUBLE)])
    x = np.array([-1.5, 0.0, 0.25, 3.0])
    want = ort_run(model, {"x": x})["y"]
    got = run_model(model, {"x": x.astype(np.float32)})["y"]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_integer_arithmetic_on_8_bit_types_is_exact_and_wraps_like_onnx():
    nodes = [helper.make_node("Div", ["a", "b"], ["q"]), helper.make_node("Add", ["a", "b"], ["s"]),
             helper.make_node("Greater", ["a", "b"], ["g"])]
    for elem, dtype in ((TensorProto.INT8, np.int8), (TensorProto.UINT8, np.uint8)):
        model = make_model(nodes, [vinfo("a", [4], elem), vinfo("b", [4], elem)],
                           [vinfo("q", [4], elem), vinfo("s", [4], elem),
                            vinfo("g", [4], TensorProto.BOOL)])
        a = np.array([7, 100, 9, 3], dtype) * (1 if dtype == np.uint8 else -1)
        b = np.array([2, 3, 4, 5], dtype)
        got = run_model(model, {"a": a, "b": b})
        want = ort_run(model, {"a": a, "b": b})
        for name, expected in want.items():
            assert got[name].dtype == expected.dtype
            np.testing.assert_array_equal(got[name], expected)


def test_type_mismatch_names_the_node():
    model = make_model([helper.make_node("Add", ["x", "i"], ["y"], name="add")],
                       [vinfo("x", [2]), vinfo("i", [2], TensorProto.INT32)],
                       [vinfo("y", [2])])
    ok, _, parser = parse(model)
    assert not ok
    (error,) = errors(parser)
    assert error.node_name() == "add" and error.code() == trt.ErrorCode.INVALID_NODE


def test_bad_attribute_value_is_an_error_not_a_crash():
    model = make_model([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 0])],
                       [vinfo("x", [2, 3])], [vinfo("y", [3, 2])])
    ok, _, parser = parse(model)
    assert not ok and errors(parser)[0].code() == trt.ErrorCode.INVALID_NODE


def test_run_time_value_needed_at_build_time():
    model = make_model([helper.make_node("ReduceSum", ["x", "axes"], ["y"])],
                       [vinfo("x", [2, 3]), vinfo("axes", [1], TensorProto.INT64)],
                       [vinfo("y", [1, 3])])
    ok, _, parser = parse(model)
    assert not ok
    (error,) = errors(parser)
    assert error.code() == trt.ErrorCode.UNSUPPORTED_NODE_DYNAMIC and error.tensor == "axes"


def test_errors_clear_and_reset_per_parse():
    bad = make_model([helper.make_node("NotAnOp", ["x"], ["y"])],
                     [vinfo("x", [2])], [vinfo("y", [2])])
    ok, network, parser = parse(bad)
    assert parser.num_errors == 1
    parser.clear_errors()
    assert parser.num_errors == 0 and parser.get_error(0) is None


def test_if_with_constant_condition_is_folded():
    then_graph = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                                   [vinfo("t", [3])])
    else_graph = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                                   [vinfo("e", [3])])
    model = make_model([helper.make_node("If", ["c"], ["y"], then_branch=then_graph,
                                         else_branch=else_graph)],
                       [vinfo("x", [3])], [vinfo("y", [3])],
                       [numpy_helper.from_array(np.array(False), "c")])
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    np.testing.assert_array_equal(run_model(model, {"x": x})["y"], -x)


def test_if_with_run_time_condition_is_refused_clearly():
    branch = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "b", [],
                               [vinfo("t", [3])])
    model = make_model([helper.make_node("If", ["c"], ["y"], then_branch=branch,
                                         else_branch=branch)],
                       [vinfo("x", [3]), vinfo("c", [], TensorProto.BOOL)], [vinfo("y", [3])])
    ok, _, parser = parse(model)
    assert not ok
    assert errors(parser)[0].code() == trt.ErrorCode.UNSUPPORTED_NODE_DYNAMIC
    assert "conditional" in errors(parser)[0].desc()


def test_loop_with_constant_trip_count_is_unrolled():
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", "x"], ["acc_out"]),
         helper.make_node("Identity", ["acc_out"], ["scan"])],
        "body",
        [vinfo("i", [], TensorProto.INT64), vinfo("cond_in", [], TensorProto.BOOL),
         vinfo("acc_in", [2])],
        [vinfo("cond_out", [], TensorProto.BOOL), vinfo("acc_out", [2]), vinfo("scan", [2])])
    model = make_model(
        [helper.make_node("Loop", ["n", "", "acc0"], ["acc", "scans"], body=body)],
        [vinfo("x", [2]), vinfo("acc0", [2])], [vinfo("acc", [2]), vinfo("scans", [3, 2])],
        [numpy_helper.from_array(np.array(3, np.int64), "n")])
    feeds = {"x": np.array([1.0, 2.0], np.float32), "acc0": np.zeros(2, np.float32)}
    got = run_model(model, feeds)
    want = ort_run(model, feeds)
    np.testing.assert_allclose(got["acc"], want["acc"])
    np.testing.assert_allclose(got["scans"], want["scans"])


def test_function_ops_are_expanded():
    # Celu has an importer; MeanVarianceNormalization is defined by an ONNX function
    model = make_model([helper.make_node("MeanVarianceNormalization", ["x"], ["y"])],
                       [vinfo("x", [1, 2, 3, 3])], [vinfo("y", [1, 2, 3, 3])], opset=13)
    x = np.random.default_rng(2).standard_normal((1, 2, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(run_model(model, {"x": x})["y"], ort_run(model, {"x": x})["y"],
                               rtol=1e-4, atol=1e-5)


def _external_model(tmp_path, location):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    tensor = numpy_helper.from_array(w, "w")
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                       [vinfo("x", [1, 2])], [vinfo("y", [1, 3])], [tensor])
    onnx.external_data_helper.convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location=location, size_threshold=0)
    return model, w


def test_external_weights_load_through_the_path(tmp_path):
    model, w = _external_model(tmp_path, "weights.bin")
    path = str(tmp_path / "model.onnx")
    onnx.save_model(model, path)
    logger = trt.Logger()
    network = trt.Builder(logger).create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(path), [str(e) for e in errors(parser)]
    with open(path, "rb") as f:
        data = f.read()
    ok, _, parser = parse(data)
    assert not ok and errors(parser)[0].code() == trt.ErrorCode.INVALID_VALUE


def test_external_weights_outside_the_model_directory_are_refused(tmp_path):
    inner = tmp_path / "models"
    inner.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.zeros(6, np.float32).tobytes())
    model, _ = _external_model(tmp_path, "weights.bin")
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = os.path.join("..", "secret.bin")
    path = str(inner / "model.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    network = trt.Builder(trt.Logger()).create_network(0)
    parser = trt.OnnxParser(network, trt.Logger(trt.Logger.INTERNAL_ERROR))
    assert not parser.parse_from_file(path)
    assert parser.get_error(0).code() == trt.ErrorCode.INVALID_VALUE
    assert "outside" in parser.get_error(0).desc()


def test_missing_file():
    parser = trt.OnnxParser(trt.Builder(trt.Logger()).create_network(0),
                            trt.Logger(trt.Logger.INTERNAL_ERROR))
    assert not parser.parse_from_file("/nonexistent/model.onnx")
    assert parser.get_error(0).code() == trt.ErrorCode.MODEL_DESERIALIZE_FAILED


def test_supports_model_v2_reports_subgraphs():
    model = make_model([helper.make_node("Relu", ["x"], ["a"]),
                        helper.make_node("NotAnOp", ["a"], ["y"])],
                       [vinfo("x", [2])], [vinfo("y", [2])])
    parser = trt.OnnxParser(trt.Builder(trt.Logger()).create_network(0),
                            trt.Logger(trt.Logger.INTERNAL_ERROR))
    assert not parser.supports_model_v2(model.SerializeToString())
    assert parser.num_subgraphs == 2
    assert parser.get_subgraph_nodes(0) == [0] and parser.is_subgraph_supported(0)
    assert parser.get_subgraph_nodes(1) == [1] and not parser.is_subgraph_supported(1)


@pytest.mark.parametrize("depth", [200])
def test_deep_chains_do_not_overflow(depth):
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"]) for i in range(depth)]
    model = make_model(nodes, [vinfo("t0", [2])], [vinfo(f"t{depth}", [2])])
    ok, network, parser = parse(model)
    assert ok, [str(e) for e in errors(parser)]
