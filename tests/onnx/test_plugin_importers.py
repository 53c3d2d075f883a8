"""Sampling and detection ops against onnx's reference evaluator: GridSample and
NonMaxSuppression (TensorRT's layers where they cover the node, shipped plugins elsewhere),
RoiAlign and Det (shipped plugins)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import engine as trt
from tests.onnx.support import errors, parse, run_model


def make_model(nodes, inputs, outputs, initializers=(), opset=20):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def vinfo(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sample_2d_matches_reference(mode, padding_mode, align_corners):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    grid = rng.uniform(-1.6, 1.6, size=(2, 3, 6, 2)).astype(np.float32)
    model = make_model([helper.make_node("GridSample", ["x", "g"], ["y"], mode=mode,
                                         padding_mode=padding_mode,
                                         align_corners=align_corners)],
                       [vinfo("x", x.shape), vinfo("g", grid.shape)], [vinfo("y", None)])
    want = ReferenceEvaluator(model).run(None, {"x": x, "g": grid})[0]
    got = run_model(model, {"x": x, "g": grid})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def layer_types(model):
    ok, network, parser = parse(model)
    assert ok, [str(e) for e in errors(parser)]
    return {layer.layer_type for layer in network}


def test_grid_sample_imports_2d_float_images_as_the_layer_and_the_rest_as_the_plugin():
    def model(x_shape, x_type=TensorProto.FLOAT, grid_type=TensorProto.FLOAT):
        grid_shape = [x_shape[0], *x_shape[2:], len(x_shape) - 2]
        return make_model([helper.make_node("GridSample", ["x", "g"], ["y"], mode="cubic",
                                            padding_mode="border", align_corners=1)],
                          [vinfo("x", x_shape, x_type), vinfo("g", grid_shape, grid_type)],
                          [vinfo("y", None, x_type)])

    ok, network, _ = parse(model([1, 2, 4, 5]))
    (layer,) = list(network)
    assert isinstance(layer, trt.IGridSampleLayer)
    assert (layer.interpolation_mode, layer.sample_mode, layer.align_corners) == \
        (trt.InterpolationMode.CUBIC, trt.SampleMode.CLAMP, True)
    assert layer_types(model([1, 2, 4, 5], TensorProto.FLOAT16, TensorProto.FLOAT16)) == \
        {trt.LayerType.GRID_SAMPLE}
    for plugin_case in (model([1, 2, 3, 4, 5]), model([1, 2, 4, 5], TensorProto.FLOAT16)):
        assert layer_types(plugin_case) == {trt.LayerType.PLUGIN_V3}


def test_grid_sample_3d_linear_matches_reference():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 2, 3, 4, 5)).astype(np.float32)
    grid = rng.uniform(-1.2, 1.2, size=(1, 2, 3, 2, 3)).astype(np.float32)
    model = make_model([helper.make_node("GridSample", ["x", "g"], ["y"])],
                       [vinfo("x", x.shape), vinfo("g", grid.shape)], [vinfo("y", None)])
    want = ReferenceEvaluator(model).run(None, {"x": x, "g": grid})[0]
    got = run_model(model, {"x": x, "g": grid})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("center_point_box", [0, 1])
def test_non_max_suppression_matches_reference(center_point_box):
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 10, size=(2, 12, 2))
    wh = rng.uniform(1, 5, size=(2, 12, 2))
    boxes = (np.concatenate([xy, wh], -1) if center_point_box
             else np.concatenate([xy[..., ::-1], xy[..., ::-1] + wh], -1)).astype(np.float32)
    scores = rng.uniform(size=(2, 3, 12)).astype(np.float32)
    consts = [helper.make_tensor("m", TensorProto.INT64, [1], [6]),
              helper.make_tensor("i", TensorProto.FLOAT, [1], [0.1]),
              helper.make_tensor("s", TensorProto.FLOAT, [1], [0.5])]
    model = make_model([helper.make_node("NonMaxSuppression", ["b", "sc", "m", "i", "s"],
                                         ["y"], center_point_box=center_point_box)],
                       [vinfo("b", boxes.shape), vinfo("sc", scores.shape)],
                       [vinfo("y", None, TensorProto.INT64)], consts)
    want = ReferenceEvaluator(model).run(None, {"b": boxes, "sc": scores})[0]
    got = run_model(model, {"b": boxes, "sc": scores})["y"]
    assert 0 < len(want) < 2 * 3 * 6  # some blocks are not full
    np.testing.assert_array_equal(got, want)


def nms_model(boxes_shape, scores_shape, inputs=("m", "i", "s"), consts=(), attrs=None):
    graph_inputs = [vinfo("b", boxes_shape), vinfo("sc", scores_shape)]
    types = {"m": TensorProto.INT64, "i": TensorProto.FLOAT, "s": TensorProto.FLOAT}
    graph_inputs += [vinfo(n, [1], types[n]) for n in inputs if n not in
                     {c.name for c in consts}]
    node = helper.make_node("NonMaxSuppression", ["b", "sc", *inputs], ["y"], **(attrs or {}))
    return make_model([node], graph_inputs, [vinfo("y", None, TensorProto.INT64)], consts)


def test_non_max_suppression_is_the_layer_regrouped_by_class():
    model = nms_model([2, 12, 4], [2, 3, 12])
    types = layer_types(model)
    assert trt.LayerType.NMS in types and trt.LayerType.PLUGIN_V3 not in types
    assert trt.LayerType.SCATTER in types  # the rows regrouped by class
    assert layer_types(nms_model([2, 12, 4], [2, 1, 12])) <= {
        trt.LayerType.NMS, trt.LayerType.SHUFFLE, trt.LayerType.CAST,
        trt.LayerType.ELEMENTWISE, trt.LayerType.CONSTANT}  # one class: no regrouping


def test_non_max_suppression_thresholds_and_limit_given_at_run_time():
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 10, size=(2, 15, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 5, size=(2, 15, 2))], -1).astype(np.float32)
    scores = rng.uniform(size=(2, 4, 15)).astype(np.float32)
    model = nms_model(boxes.shape, scores.shape)
    reference = ReferenceEvaluator(model)
    for limit, iou, score in [(3, 0.2, 0.3), (9223372036854775807, 0.5, 0.0), (0, 0.5, 0.0)]:
        feeds = {"b": boxes, "sc": scores, "m": np.array([limit], np.int64),
                 "i": np.array([iou], np.float32), "s": np.array([score], np.float32)}
        want = reference.run(None, feeds)[0]
        np.testing.assert_array_equal(run_model(model, feeds)["y"], want)


def test_non_max_suppression_without_a_score_threshold_keeps_every_score():
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 10, size=(1, 10, 2))
    boxes = np.concatenate([xy, xy + 2], -1).astype(np.float32)
    scores = rng.normal(size=(1, 2, 10)).astype(np.float32)  # half of them negative
    model = nms_model(boxes.shape, scores.shape, inputs=("m", "i"),
                      consts=[helper.make_tensor("m", TensorProto.INT64, [1], [10]),
                              helper.make_tensor("i", TensorProto.FLOAT, [1], [0.3])])
    want = ReferenceEvaluator(model).run(None, {"b": boxes, "sc": scores})[0]
    got = run_model(model, {"b": boxes, "sc": scores})["y"]
    assert (scores[want[:, 0], want[:, 1], want[:, 2]] < 0).any()
    np.testing.assert_array_equal(got, want)


def test_non_max_suppression_beyond_the_layers_candidate_limit_takes_the_plugin():
    rng = np.random.default_rng(6)
    xy = rng.uniform(0, 100, size=(1, 1700, 2))
    boxes = np.concatenate([xy, xy + 3], -1).astype(np.float32)
    scores = rng.uniform(size=(1, 3, 1700)).astype(np.float32)  # 5100 candidates > 5000
    consts = [helper.make_tensor("m", TensorProto.INT64, [1], [4]),
              helper.make_tensor("i", TensorProto.FLOAT, [1], [0.1]),
              helper.make_tensor("s", TensorProto.FLOAT, [1], [0.2])]
    model = nms_model(boxes.shape, scores.shape, consts=consts, attrs={"center_point_box": 0})
    types = layer_types(model)
    assert trt.LayerType.PLUGIN_V3 in types and trt.LayerType.NMS not in types
    want = ReferenceEvaluator(model).run(None, {"b": boxes, "sc": scores})[0]
    np.testing.assert_array_equal(run_model(model, {"b": boxes, "sc": scores})["y"], want)


def test_roi_align_matches_reference():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    rois = np.array([[0, 0, 5, 5], [1.5, 2, 7, 6.5], [2, 1, 3, 7]], np.float32)
    idx = np.array([0, 1, 1], np.int64)
    model = make_model([helper.make_node("RoiAlign", ["x", "r", "i"], ["y"], output_height=3,
                                         output_width=2, sampling_ratio=2, spatial_scale=0.9)],
                       [vinfo("x", x.shape), vinfo("r", rois.shape),
                        vinfo("i", idx.shape, TensorProto.INT64)], [vinfo("y", None)])
    want = ReferenceEvaluator(model).run(None, {"x": x, "r": rois, "i": idx})[0]
    got = run_model(model, {"x": x, "r": rois, "i": idx})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_deregistered_shipped_plugin_is_named_in_the_error():
    model = make_model([helper.make_node("Det", ["x"], ["y"])], [vinfo("x", [2, 2])],
                       [vinfo("y", [])])
    registry = trt.get_plugin_registry()
    creator = registry.get_creator("Determinant_TRT", "1", "")
    assert registry.deregister_creator(creator)
    try:
        ok, _, parser = parse(model)
    finally:
        assert registry.register_creator(creator)
    assert not ok
    (error,) = errors(parser)
    assert error.code() == trt.ErrorCode.UNSUPPORTED_NODE
    assert "plugin 'Determinant_TRT' (version 1) is not registered" in error.desc()
