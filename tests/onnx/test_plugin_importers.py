"""ONNX ops imported through shipped plugins (GridSample, RoiAlign, NonMaxSuppression) against
onnx's reference evaluator."""

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
