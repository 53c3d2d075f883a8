"""Shape subgraphs over dynamic inputs (Shape -> Gather -> Range, ConstantOfShape, Slice,
Expand, Tile, Pad with run-time parameters): one engine, built with a profile, runs at two
input shapes and matches onnxruntime at both."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import engine as trt
from tests.onnx.support import errors, parse
from tests.support import CollectingLogger

SHAPES = [(2, 5), (3, 9)]  # (batch, sequence) of the two runs


def make_model(nodes, outputs, initializers=(), opset=18):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence"])
    graph = helper.make_graph(nodes, "g", [x], outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def out(name, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, None)


def ints(name, values):
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def scalar(name, value, elem=TensorProto.INT64):
    return helper.make_tensor(name, elem, [], [value])


# n = x.shape[1] as a scalar, and as a 1-element vector.
SEQUENCE = [helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Gather", ["shape", "one"], ["n"]),
            helper.make_node("Unsqueeze", ["n", "zero_axis"], ["n_1d"])]
SEQUENCE_INITS = [scalar("one", 1), ints("zero_axis", [0])]


def build(model):
    ok, network, parser = parse(model)
    assert ok, [str(e) for e in errors(parser)]
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 1), SHAPES[0], (4, 12))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors()
    return trt.Runtime(logger).deserialize_cuda_engine(plan)


def assert_matches_onnxruntime_at_two_shapes(model):
    engine = build(model)
    context = engine.create_execution_context()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        feeds = {"x": rng.standard_normal(shape).astype(np.float32)}
        want = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
        got = context.infer(feeds)
        for name, expected in want.items():
            assert got[name].dtype == expected.dtype, name
            assert got[name].shape == expected.shape, (name, shape)
            np.testing.assert_allclose(got[name], expected, rtol=1e-6, atol=1e-6,
                                       err_msg=f"{name} at {shape}")


def test_range_with_run_time_limit_and_start():
    nodes = SEQUENCE + [
        helper.make_node("Range", ["zero", "n", "one"], ["ramp"]),
        helper.make_node("Range", ["n", "minus_two", "minus_three"], ["down"]),  # n..-2 by -3
        helper.make_node("Cast", ["n"], ["n_float"], to=TensorProto.FLOAT),
        helper.make_node("Range", ["n_float", "zero_float", "step_float"], ["float_ramp"]),
    ]
    inits = SEQUENCE_INITS + [scalar("zero", 0), scalar("minus_two", -2),
                              scalar("minus_three", -3),
                              scalar("zero_float", 0.0, TensorProto.FLOAT),
                              scalar("step_float", -1.5, TensorProto.FLOAT)]
    model = make_model(nodes, [out("ramp", TensorProto.INT64), out("down", TensorProto.INT64),
                               out("float_ramp")], inits)
    assert_matches_onnxruntime_at_two_shapes(model)


@pytest.mark.parametrize("elem, value", [(TensorProto.FLOAT, 2.5), (TensorProto.INT64, 7),
                                         (TensorProto.BOOL, True)])
def test_constant_of_shape_of_a_run_time_shape(elem, value):
    fill = helper.make_tensor("value", elem, [1], [value])
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("ConstantOfShape", ["shape"], ["filled"], value=fill)]
    model = make_model(nodes, [out("filled", elem)])
    assert_matches_onnxruntime_at_two_shapes(model)


def test_slice_with_run_time_ends_and_dynamic_axes():
    nodes = SEQUENCE + [
        helper.make_node("Sub", ["n_1d", "one_1d"], ["n_minus_1"]),
        # x[:, 1:n-1], x[:, -3:] (a dynamic axis, known bounds) and x[::-1, n-2::-2]
        helper.make_node("Slice", ["x", "one_1d", "n_minus_1", "one_1d"], ["inner"]),
        helper.make_node("Slice", ["x", "minus_three", "big", "one_1d"], ["tail"]),
        helper.make_node("Sub", ["n_1d", "two_1d"], ["n_minus_2"]),
        helper.make_node("Concat", ["minus_one", "n_minus_2"], ["back_starts"], axis=0),
        helper.make_node("Slice", ["x", "back_starts", "very_negative", "axes01", "back_steps"],
                         ["backwards"]),
    ]
    inits = SEQUENCE_INITS + [ints("one_1d", [1]), ints("two_1d", [2]), ints("minus_three", [-3]),
                              ints("big", [2**62]), ints("minus_one", [-1]),
                              ints("very_negative", [-(2**62), -(2**62)]),
                              ints("axes01", [0, 1]), ints("back_steps", [-1, -2])]
    model = make_model(nodes, [out("inner"), out("tail"), out("backwards")], inits)
    assert_matches_onnxruntime_at_two_shapes(model)


def test_expand_tile_and_pad_with_run_time_parameters():
    row = helper.make_tensor("row", TensorProto.FLOAT, [1, 1], [3.0])
    nodes = SEQUENCE + [
        helper.make_node("Expand", ["row", "shape"], ["expanded"]),
        helper.make_node("Concat", ["two_1d", "n_1d"], ["repeats"], axis=0),
        helper.make_node("Tile", ["x", "repeats"], ["tiled"]),
        # pads [0, 1, n, 2]: one column before, n rows and two columns after
        helper.make_node("Concat", ["zero_1d", "one_1d", "n_1d", "two_1d"], ["pads"], axis=0),
        helper.make_node("Pad", ["x", "pads", "pad_value"], ["padded"]),
        helper.make_node("Pad", ["x", "static_pads"], ["reflected"], mode="reflect"),
    ]
    inits = SEQUENCE_INITS + [row, ints("zero_1d", [0]), ints("one_1d", [1]),
                              ints("two_1d", [2]), ints("static_pads", [0, 1, 0, 1]),
                              scalar("pad_value", -4.0, TensorProto.FLOAT)]
    model = make_model(nodes, [out("expanded"), out("tiled"), out("padded"),
                               out("reflected")], inits)
    assert_matches_onnxruntime_at_two_shapes(model)


def test_a_static_dim_of_a_partly_dynamic_shape_is_known_at_build_time():
    # x is [batch, 4]: Shape(x)[1] is 4 while the network is defined, so Range(0, it) is a
    # constant and Reshape(x, [Shape(x)[1], -1]) has a static first dim.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "one"], ["n"]),
             helper.make_node("Range", ["zero", "n", "one"], ["ramp"]),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n_1d"]),
             helper.make_node("Concat", ["n_1d", "minus_one"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["reshaped"])]
    graph = helper.make_graph(nodes, "g", [x], [out("ramp", TensorProto.INT64),
                                                 out("reshaped")],
                              [scalar("zero", 0), scalar("one", 1), ints("axes", [0]),
                               ints("minus_one", [-1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    ok, network, parser = parse(model)
    assert ok, [str(e) for e in errors(parser)]
    shapes = {network.get_output(i).name: tuple(network.get_output(i).shape)
              for i in range(network.num_outputs)}
    assert shapes == {"ramp": (4,), "reshaped": (4, -1)}
