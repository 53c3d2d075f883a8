"""Importers composed of other layers (recurrent cells, Scan, bit operations, Fourier
transforms, quantized products, Compress) against onnxruntime on small models."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import engine as trt
from tests.onnx.support import errors, parse, run_model


def make_model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def vinfo(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def assert_matches_onnxruntime(model, feeds, rtol=1e-5, atol=1e-5):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    got = run_model(model, feeds)
    for name, expected in want.items():
        assert got[name].dtype == expected.dtype, name
        np.testing.assert_allclose(got[name], expected, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("op, gates", [("RNN", 1), ("GRU", 3), ("LSTM", 4)])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_recurrent_cells_unrolled(op, gates, direction):
    rng = np.random.default_rng(0)
    seq, batch, inp, hidden = 4, 2, 3, 5
    dirs = 2 if direction == "bidirectional" else 1
    w = rng.normal(size=(dirs, gates * hidden, inp)).astype(np.float32)
    r = rng.normal(size=(dirs, gates * hidden, hidden)).astype(np.float32) * 0.5
    b = rng.normal(size=(dirs, 2 * gates * hidden)).astype(np.float32)
    outputs = ["y", "y_h"] + (["y_c"] if op == "LSTM" else [])
    attrs = {"linear_before_reset": 1} if op == "GRU" else {}
    node = helper.make_node(op, ["x", "w", "r", "b"], outputs, hidden_size=hidden,
                            direction=direction, **attrs)
    model = make_model([node], [vinfo("x", [seq, batch, inp])],
                       [vinfo(n, None) for n in outputs],
                       [helper.make_tensor(n, TensorProto.FLOAT, v.shape, v.reshape(-1))
                        for n, v in (("w", w), ("r", r), ("b", b))])
    assert_matches_onnxruntime(model, {"x": rng.normal(size=(seq, batch, inp))
                                       .astype(np.float32)})


def test_scan_unrolled_with_a_reversed_input():
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
         helper.make_node("Identity", ["s_out"], ["y_t"])], "body",
        [vinfo("s_in", [2]), vinfo("x_t", [2])], [vinfo("s_out", [2]), vinfo("y_t", [2])])
    node = helper.make_node("Scan", ["s0", "xs"], ["s", "ys"], body=body, num_scan_inputs=1,
                            scan_input_directions=[1])
    model = make_model([node], [vinfo("s0", [2]), vinfo("xs", [3, 2])],
                       [vinfo("s", [2]), vinfo("ys", [3, 2])])
    assert_matches_onnxruntime(model, {"s0": np.array([1, -1], np.float32),
                                       "xs": np.arange(6, dtype=np.float32).reshape(3, 2)})


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bit_shift_of_unsigned_bytes(direction):
    model = make_model([helper.make_node("BitShift", ["x", "s"], ["y"], direction=direction)],
                       [vinfo("x", [4], TensorProto.UINT8), vinfo("s", [4], TensorProto.UINT8)],
                       [vinfo("y", [4], TensorProto.UINT8)])
    assert_matches_onnxruntime(model, {"x": np.array([16, 4, 1, 255], np.uint8),
                                       "s": np.array([1, 2, 3, 0], np.uint8)})


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
def test_bitwise_on_signed_integers(op):
    model = make_model([helper.make_node(op, ["a", "b"], ["y"])],
                       [vinfo("a", [5], TensorProto.INT32), vinfo("b", [5], TensorProto.INT32)],
                       [vinfo("y", [5], TensorProto.INT32)], opset=18)
    assert_matches_onnxruntime(model, {"a": np.array([-7, 12, 0, 2**31 - 1, -1], np.int32),
                                       "b": np.array([3, -5, 9, 6, -2**31], np.int32)})


@pytest.mark.parametrize("inverse, onesided", [(0, 0), (0, 1), (1, 0)])
def test_dft_matches_onnxruntime(inverse, onesided):
    node = helper.make_node("DFT", ["x", "", "axis"], ["y"], inverse=inverse, onesided=onesided)
    last = 2 if inverse else 1
    model = make_model([node], [vinfo("x", [2, 6, last])], [vinfo("y", None)],
                       [helper.make_tensor("axis", TensorProto.INT64, [], [1])], opset=20)
    x = np.random.default_rng(1).normal(size=(2, 6, last)).astype(np.float32)
    assert_matches_onnxruntime(model, {"x": x}, rtol=1e-4, atol=1e-5)


def test_qlinear_matmul_requantizes_like_onnxruntime():
    rng = np.random.default_rng(2)
    names = ["a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"]
    consts = [helper.make_tensor("a_scale", TensorProto.FLOAT, [], [0.05]),
              helper.make_tensor("a_zp", TensorProto.UINT8, [], [113]),
              helper.make_tensor("b_scale", TensorProto.FLOAT, [], [0.02]),
              helper.make_tensor("b_zp", TensorProto.UINT8, [], [114]),
              helper.make_tensor("y_scale", TensorProto.FLOAT, [], [0.1]),
              helper.make_tensor("y_zp", TensorProto.UINT8, [], [118])]
    model = make_model([helper.make_node("QLinearMatMul", names, ["y"])],
                       [vinfo("a", [3, 4], TensorProto.UINT8), vinfo("b", [4, 2],
                                                                      TensorProto.UINT8)],
                       [vinfo("y", [3, 2], TensorProto.UINT8)], consts)
    assert_matches_onnxruntime(model, {"a": rng.integers(0, 255, (3, 4), dtype=np.uint8),
                                       "b": rng.integers(0, 255, (4, 2), dtype=np.uint8)})


def test_compress_with_a_constant_condition():
    node = helper.make_node("Compress", ["x", "c"], ["y"], axis=1)
    model = make_model([node], [vinfo("x", [2, 4])], [vinfo("y", None)],
                       [helper.make_tensor("c", TensorProto.BOOL, [4], [1, 0, 0, 1])])
    assert_matches_onnxruntime(model, {"x": np.arange(8, dtype=np.float32).reshape(2, 4)})


@pytest.mark.parametrize("op, attrs", [
    ("MaxPool", {}),
    ("MaxPool", {"pads": [1, 2, 1, 0], "strides": [2, 1]}),
    ("AveragePool", {"pads": [1, 1, 1, 2], "count_include_pad": 0}),
    ("AveragePool", {"pads": [1, 1, 1, 2], "count_include_pad": 1, "strides": [2, 2]}),
    ("AveragePool", {"pads": [1, 2, 0, 1], "ceil_mode": 1, "strides": [2, 3]}),
    ("LpPool", {"pads": [1, 0, 1, 0], "p": 2}),
])
def test_dilated_pooling_as_strided_slices(op, attrs):
    model = make_model([helper.make_node(op, ["x"], ["y"], kernel_shape=[2, 3],
                                         dilations=[2, 2], **attrs)],
                       [vinfo("x", [1, 2, 7, 8])], [vinfo("y", None)], opset=19)
    x = np.random.default_rng(1).normal(size=(1, 2, 7, 8)).astype(np.float32)
    assert_matches_onnxruntime(model, {"x": x})


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_dilated_pooling_with_an_empty_window_is_refused(op):
    model = make_model([helper.make_node(op, ["x"], ["y"], kernel_shape=[0, 2],
                                         dilations=[2, 2])],
                       [vinfo("x", [1, 1, 4, 4])], [vinfo("y", None)], opset=19)
    ok, _, parser = parse(model)
    assert not ok
    (error,) = errors(parser)
    assert error.code() == trt.ErrorCode.INVALID_NODE
    assert "kernel_shape [0, 2] must be positive" in error.desc()


def _scan_body():
    return helper.make_graph(
        [helper.make_node("Add", ["s", "x"], ["s2"]), helper.make_node("Identity", ["s2"], ["y"])],
        "body", [vinfo("s", [2]), vinfo("x", [2])], [vinfo("s2", [2]), vinfo("y", [2])])


def _int8(name, value):
    return helper.make_tensor(name, TensorProto.INT8, [], [value])


def _float(name, value):
    return helper.make_tensor(name, TensorProto.FLOAT, [], [value])


@pytest.mark.parametrize("case", ["Scan-8", "QLinearConv", "QLinearMatMul"])
def test_a_required_input_left_out_is_named(case):
    if case == "Scan-8":  # the initial state, after the (absent) sequence_lens
        model = make_model(
            [helper.make_node("Scan", ["", "", "xs"], ["sf", "ys"], body=_scan_body(),
                              num_scan_inputs=1)],
            [vinfo("xs", [1, 3, 2])], [vinfo("sf", [1, 2]), vinfo("ys", [1, 3, 2])], opset=8)
        missing = 1
    elif case == "QLinearConv":  # x_scale
        model = make_model(
            [helper.make_node("QLinearConv", ["x", "", "xz", "w", "ws", "wz", "ys", "yz"],
                              ["y"])],
            [vinfo("x", [1, 1, 2, 2], TensorProto.INT8)],
            [vinfo("y", [1, 1, 2, 2], TensorProto.INT8)],
            [_int8("xz", 0), helper.make_tensor("w", TensorProto.INT8, [1, 1, 1, 1], [1]),
             _float("ws", 0.1), _int8("wz", 0), _float("ys", 0.1), _int8("yz", 0)])
        missing = 1
    else:  # b_scale
        model = make_model(
            [helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "", "bz", "ys", "yz"],
                              ["y"])],
            [vinfo("a", [2, 2], TensorProto.INT8)], [vinfo("y", [2, 2], TensorProto.INT8)],
            [_float("as", 0.1), _int8("az", 0),
             helper.make_tensor("b", TensorProto.INT8, [2, 2], [1, 0, 0, 1]),
             _int8("bz", 0), _float("ys", 0.1), _int8("yz", 0)])
        missing = 4
    ok, _, parser = parse(model)
    assert not ok
    (error,) = errors(parser)
    assert error.code() == trt.ErrorCode.INVALID_NODE
    assert error.desc() == f"input {missing} is required"


@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("axis", [0, -1])
def test_cumprod_as_running_products_of_slices(exclusive, reverse, axis):
    from onnx.reference import ReferenceEvaluator

    model = make_model([helper.make_node("CumProd", ["x", "a"], ["y"], exclusive=exclusive,
                                         reverse=reverse)],
                       [vinfo("x", [3, 4])], [vinfo("y", None)],
                       [helper.make_tensor("a", TensorProto.INT64, [], [axis])], opset=26)
    x = np.random.default_rng(2).uniform(0.5, 2, size=(3, 4)).astype(np.float32)
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(run_model(model, {"x": x})["y"], want, rtol=1e-6)


@pytest.mark.parametrize("lengths_at_run_time", [False, True])
@pytest.mark.parametrize("batch_axis, time_axis", [(1, 0), (0, 1)])
def test_reverse_sequence_imports_as_the_layer(batch_axis, time_axis, lengths_at_run_time):
    shape = [4, 3] if time_axis == 0 else [3, 4]
    lens = np.array([4, 1, 2], np.int64)
    inputs = [vinfo("x", shape + [2])]
    if lengths_at_run_time:
        inputs.append(vinfo("l", [3], TensorProto.INT64))
        initializers = []
    else:
        initializers = [helper.make_tensor("l", TensorProto.INT64, [3], lens)]
    model = make_model([helper.make_node("ReverseSequence", ["x", "l"], ["y"],
                                         batch_axis=batch_axis, time_axis=time_axis)],
                       inputs, [vinfo("y", None)], initializers)
    ok, network, _ = parse(model)
    assert ok
    (layer,) = [layer for layer in network if isinstance(layer, trt.IReverseSequenceLayer)]
    assert (layer.batch_axis, layer.sequence_axis) == (batch_axis, time_axis)
    x = np.arange(24, dtype=np.float32).reshape(shape + [2])
    assert_matches_onnxruntime(model, {"x": x, "l": lens} if lengths_at_run_time else {"x": x})


def test_mod_by_infinite_divisor_follows_numpy():
    model = make_model([helper.make_node("Mod", ["a", "b"], ["y"], fmod=0)],
                       [vinfo("a", [8]), vinfo("b", [8])], [vinfo("y", None)])
    a = np.array([5, -5, 0, 5, -5, np.inf, 7.5, -7.5], np.float32)
    b = np.array([np.inf, np.inf, np.inf, -np.inf, -np.inf, np.inf, 2, 2], np.float32)
    got = run_model(model, {"a": a, "b": b})["y"]
    with np.errstate(invalid="ignore"):
        want = np.mod(a, b)
    np.testing.assert_array_equal(got, want)


def test_batch_norm_training_mode_uses_batch_statistics_and_updates_the_running_ones():
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(3)
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"],
                            ["y", "running_mean", "running_var"], training_mode=1,
                            momentum=0.8, epsilon=1e-3)
    model = make_model([node], [vinfo("x", [2, 3, 4, 5])] + [vinfo(n, [3]) for n in "sbmv"],
                       [vinfo(n, None) for n in ("y", "running_mean", "running_var")],
                       opset=15)
    feeds = {"x": rng.normal(size=(2, 3, 4, 5)), "s": rng.normal(size=3),
             "b": rng.normal(size=3), "m": rng.normal(size=3),
             "v": rng.uniform(0.5, 2.0, size=3)}
    feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
    got = run_model(model, feeds)
    want = ReferenceEvaluator(model).run(None, feeds)
    for name, expected in zip(("y", "running_mean", "running_var"), want):
        np.testing.assert_allclose(got[name], expected, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("ratio, imports", [(0.0, True), (0.25, False)])
def test_training_dropout_imports_only_with_a_zero_ratio(ratio, imports):
    from tests.onnx.support import parse

    node = helper.make_node("Dropout", ["x", "r", "t"], ["y", "mask"])
    model = make_model([node], [vinfo("x", [3, 4])],
                       [vinfo("y", None), vinfo("mask", None, TensorProto.BOOL)],
                       [helper.make_tensor("r", TensorProto.FLOAT, [], [ratio]),
                        helper.make_tensor("t", TensorProto.BOOL, [], [True])], opset=13)
    if not imports:
        ok, _, parser = parse(model)
        assert not ok and "random dropout" in parser.get_error(0).desc()
        return
    x = np.random.default_rng(4).normal(size=(3, 4)).astype(np.float32)
    got = run_model(model, {"x": x})
    np.testing.assert_array_equal(got["y"], x)
    assert got["mask"].dtype == np.bool_ and got["mask"].all()


@pytest.mark.parametrize("output_shape", [None, (2, 3, 7, 9)])
def test_max_unpool_scatters_to_the_flat_indices_as_the_reference(output_shape):
    """MaxUnpool of values at MaxPool-style flat indices (batch and channels included), into
    the unpooled shape or the leading corner of a larger output_shape."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
    unpooled = 2 * 3 * 6 * 8
    indices = rng.choice(unpooled, size=x.size, replace=False).reshape(x.shape).astype(np.int64)
    inputs = ["x", "i"] + (["shape"] if output_shape else [])
    inits = [numpy_helper.from_array(np.array(output_shape, np.int64), "shape")] \
        if output_shape else []
    graph = helper.make_graph(
        [helper.make_node("MaxUnpool", inputs, ["y"], kernel_shape=[2, 2], strides=[2, 2])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape),
              helper.make_tensor_value_info("i", TensorProto.INT64, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    want = ReferenceEvaluator(model).run(None, {"x": x, "i": indices})[0]
    got = run_model(model, {"x": x, "i": indices})["y"]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("equation, shapes", [
    ("...ij,...jk->...ik", [(2, 3, 4, 5), (2, 3, 5, 6)]),
    ("...ij,jk", [(3, 4, 5), (5, 2)]),
    ("b...d,bd->b...", [(2, 3, 4, 5), (2, 5)]),
])
def test_einsum_with_an_ellipsis_matches_numpy(equation, shapes):
    """An ellipsis spelled out in unused letters (the einsum layer takes letters only)."""
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    names = [f"x{i}" for i in range(len(arrays))]
    graph = helper.make_graph(
        [helper.make_node("Einsum", names, ["y"], equation=equation)], "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape)
         for n, a in zip(names, arrays)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    got = run_model(model, dict(zip(names, arrays)))["y"]
    np.testing.assert_allclose(got, np.einsum(equation, *arrays), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_pool_indices_then_unpool_match_the_reference(storage_order):
    """MaxPool's Indices (overlapping padded windows, ties to the first maximum) and the
    MaxUnpool that undoes it, against onnx's reference evaluator."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(12)
    x = rng.integers(-3, 4, (2, 3, 7, 6)).astype(np.float32)  # ties in most windows
    nodes = [helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[3, 3],
                              strides=[2, 1], pads=[1, 1, 1, 1], storage_order=storage_order)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
               helper.make_tensor_value_info("i", TensorProto.INT64, None)]
    if storage_order == 0:
        nodes.append(helper.make_node("MaxUnpool", ["y", "i"], ["u"], kernel_shape=[3, 3],
                                      strides=[2, 1], pads=[1, 1, 1, 1]))
        outputs.append(helper.make_tensor_value_info("u", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, x.shape)], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    want = ReferenceEvaluator(model).run(None, {"x": x})
    got = run_model(model, {"x": x})
    for name, expected in zip([o.name for o in outputs], want):
        np.testing.assert_array_equal(got[name], expected, err_msg=name)


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
def test_bitwise_on_int64_across_the_whole_range(op):
    """64-bit operands: combined in 32-bit halves (2**63 is beyond INT64), the extremes and
    negative numbers included, against NumPy."""
    values = np.array([0, 1, -1, 2 ** 62 + 12345, -(2 ** 63), 2 ** 63 - 1, -987654321987,
                       2 ** 32, 2 ** 32 - 1, -(2 ** 31)], np.int64)
    a = np.repeat(values, len(values)).reshape(10, 10)
    b = np.tile(values, len(values)).reshape(10, 10)
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["y"])], "g",
        [helper.make_tensor_value_info("a", TensorProto.INT64, a.shape),
         helper.make_tensor_value_info("b", TensorProto.INT64, b.shape)],
        [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    want = {"BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or,
            "BitwiseXor": np.bitwise_xor}[op](a, b)
    np.testing.assert_array_equal(run_model(model, {"a": a, "b": b})["y"], want)


@pytest.mark.parametrize("group, offset_group, with_mask, stride, dilation", [
    (1, 1, False, 1, 1), (2, 2, True, 2, 1), (1, 2, True, 1, 2)])
def test_deform_conv_matches_the_reference(group, offset_group, with_mask, stride, dilation):
    """DeformConv through DeformConv_TRT (bilinear samples at shifted taps, zero outside),
    with groups, offset groups, a mask, a bias, strides, dilations and pads, against onnx's
    reference evaluator."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(19)
    x = rng.standard_normal((2, 4, 8, 7)).astype(np.float32)
    w = rng.standard_normal((6, 4 // group, 3, 3)).astype(np.float32)
    pads = [1, 0, 2, 1]
    oh = (8 + pads[0] + pads[2] - dilation * 2 - 1) // stride + 1
    ow = (7 + pads[1] + pads[3] - dilation * 2 - 1) // stride + 1
    offset = (rng.standard_normal((2, offset_group * 9 * 2, oh, ow)) * 2).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    mask = rng.uniform(0, 1, (2, offset_group * 9, oh, ow)).astype(np.float32)
    names = ["x", "w", "offset", "b"] + (["mask"] if with_mask else [])
    feeds = {"x": x, "offset": offset} | ({"mask": mask} if with_mask else {})
    node = helper.make_node("DeformConv", names, ["y"], kernel_shape=[3, 3], group=group,
                            offset_group=offset_group, pads=pads, strides=[stride, stride],
                            dilations=[dilation, dilation])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape)
                      for n, a in feeds.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    got = run_model(model, feeds)["y"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_det_matches_numpy_on_a_batch_of_matrices():
    rng = np.random.default_rng(23)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Det", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    got = run_model(model, {"x": x})["y"]
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, np.linalg.det(x.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_mel_weight_matrix_matches_the_reference():
    """MelWeightMatrix from constant parameters: the reference's triangular filter bank."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    params = {"bins": np.array(8, np.int64), "length": np.array(64, np.int64),
              "rate": np.array(16000, np.int64), "low": np.array(100.0, np.float32),
              "high": np.array(6000.0, np.float32)}
    graph = helper.make_graph(
        [helper.make_node("MelWeightMatrix", list(params), ["y"])], "g", [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in params.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    want = ReferenceEvaluator(model).run(None, {})[0]
    got = run_model(model, {})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter_writes_the_cache_rows_as_the_reference(mode):
    """TensorScatter (a key/value cache update) with per-batch write positions, the circular
    mode wrapping around the cache, against onnx's reference evaluator."""
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(29)
    cache = rng.standard_normal((3, 2, 6, 4)).astype(np.float32)
    update = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)
    write = np.array([0, 2, 5 if mode == "circular" else 3], np.int64)
    graph = helper.make_graph(
        [helper.make_node("TensorScatter", ["c", "u", "w"], ["y"], mode=mode, axis=-2)], "g",
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, cache.shape),
         helper.make_tensor_value_info("u", TensorProto.FLOAT, update.shape),
         helper.make_tensor_value_info("w", TensorProto.INT64, write.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 24)])
    feeds = {"c": cache, "u": update, "w": write}
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    np.testing.assert_array_equal(run_model(model, feeds)["y"], want)
