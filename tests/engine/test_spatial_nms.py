"""The non-maximum suppression layer against TensorRT's rules written out in NumPy for the
test, and against onnx's ReferenceEvaluator (NonMaxSuppression) where the two orders agree
(one class); its data-dependent output through ``context.infer`` and an output allocator."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import engine as trt
from tests.runtime.test_dynamic_shapes import RecordingAllocator
from tests.support import build_engine, run_network

RNG = np.random.default_rng(7)
CORNERS, CENTERS = trt.BoundingBoxFormat.CORNER_PAIRS, trt.BoundingBoxFormat.CENTER_SIZES


def iou(a, b, fmt):
    def corners(box):
        if fmt == CENTERS:
            x, y, w, h = box
            return x - w / 2, y - h / 2, x + w / 2, y + h / 2
        x1, y1, x2, y2 = box
        return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)

    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = corners(a), corners(b)
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def reference_nms(boxes, scores, max_per_class, iou_threshold=0.0, score_threshold=0.0,
                  fmt=CORNERS, limit=5000):
    """TensorRT's rules, plainly: per batch item the (box, class) pairs scoring above the
    threshold, best first (equal scores: by box, then class), the first ``limit`` of them; a
    pair is selected unless its class is full or it overlaps a selected box of its class by
    more than the IoU threshold."""
    rows = []
    batches, count, classes = scores.shape
    for b in range(batches):
        ranked = sorted((-float(scores[b, n, c]), n, c) for n in range(count)
                        for c in range(classes) if scores[b, n, c] > score_threshold)[:limit]
        chosen = {c: [] for c in range(classes)}
        for _, n, c in ranked:
            box = boxes[b, n] if boxes.ndim == 3 else boxes[b, n, c]
            if len(chosen[c]) < max_per_class and \
                    all(iou(box, other, fmt) <= iou_threshold for other in chosen[c]):
                chosen[c].append(box)
                rows.append((b, c, n))
    return np.array(rows, np.int32).reshape(-1, 3)


def random_boxes(batches, count, fmt=CORNERS, classes=None, dtype=np.float32):
    lead = (batches, count) if classes is None else (batches, count, classes)
    xy = RNG.uniform(0, 20, lead + (2,))
    wh = RNG.uniform(2, 8, lead + (2,))
    if fmt == CENTERS:
        return np.concatenate([xy, wh], -1).astype(dtype)
    # diagonal corners in either order
    return np.concatenate([xy + wh, xy], -1).astype(dtype) if count % 2 else \
        np.concatenate([xy, xy + wh], -1).astype(dtype)


def scalar(net, value, dtype):
    return net.add_constant((), np.array(value, dtype)).get_output(0)


def nms(max_per_class, iou_threshold=None, score_threshold=None, fmt=None, limit=None):
    def define(net, t):
        layer = net.add_nms(t["boxes"], t["scores"], scalar(net, max_per_class, np.int32))
        if iou_threshold is not None:
            layer.set_input(3, scalar(net, iou_threshold, np.float32))
        if score_threshold is not None:
            layer.set_input(4, scalar(net, score_threshold, np.float32))
        if fmt is not None:
            layer.bounding_box_format = fmt
        if limit is not None:
            layer.topk_box_limit = limit
        return [layer.get_output(0), layer.get_output(1)]
    return define


@pytest.mark.parametrize("fmt", [CORNERS, CENTERS])
@pytest.mark.parametrize("iou_threshold, score_threshold", [(0.2, 0.3), (0.5, None),
                                                            (None, 0.6)])
def test_boxes_shared_by_the_classes(fmt, iou_threshold, score_threshold):
    boxes = random_boxes(2, 30, fmt)
    scores = RNG.uniform(0, 1, (2, 30, 3)).astype(np.float32)
    selected, count = run_network(nms(4, iou_threshold, score_threshold, fmt),
                                  {"boxes": boxes, "scores": scores})
    want = reference_nms(boxes, scores, 4, iou_threshold or 0.0, score_threshold or 0.0, fmt)
    assert selected.dtype == np.int32 and count.dtype == np.int32 and count.shape == ()
    np.testing.assert_array_equal(selected, want)
    assert count == len(want) > 0


def test_boxes_of_their_own_per_class():
    boxes = random_boxes(2, 25, classes=4)
    scores = RNG.uniform(0, 1, (2, 25, 4)).astype(np.float32)
    selected, count = run_network(nms(3, 0.1), {"boxes": boxes, "scores": scores})
    np.testing.assert_array_equal(selected, reference_nms(boxes, scores, 3, 0.1))
    assert count == len(selected)


def test_dynamic_batch_box_and_class_counts():
    boxes = random_boxes(2, 15, CENTERS)
    scores = RNG.uniform(0, 1, (2, 15, 3)).astype(np.float32)
    selected, count = run_network(nms(4, 0.3, fmt=CENTERS), {"boxes": boxes, "scores": scores},
                                  dynamic={"boxes": (-1, -1, 4), "scores": (-1, -1, -1)})
    np.testing.assert_array_equal(selected, reference_nms(boxes, scores, 4, 0.3, fmt=CENTERS))
    assert count == len(selected)


def test_rows_come_by_batch_then_by_descending_score():
    boxes = random_boxes(3, 20)
    scores = RNG.uniform(0, 1, (3, 20, 5)).astype(np.float32)
    selected, _ = run_network(nms(3, 0.4), {"boxes": boxes, "scores": scores})
    b, c, n = selected.T
    assert np.all(np.diff(b) >= 0)
    for batch in range(3):
        picked = scores[batch, n[b == batch], c[b == batch]]
        assert np.all(np.diff(picked) <= 0)


def test_topk_box_limit_caps_the_candidates_per_batch_item():
    boxes = random_boxes(2, 30)
    scores = RNG.uniform(0, 1, (2, 30, 3)).astype(np.float32)
    selected, _ = run_network(nms(10, 0.5, limit=7), {"boxes": boxes, "scores": scores})
    np.testing.assert_array_equal(selected, reference_nms(boxes, scores, 10, 0.5, limit=7))
    assert len(selected) <= 2 * 7


def test_default_thresholds_drop_scores_not_above_zero_and_any_overlap():
    # two overlapping boxes, a third apart; scores of the third class all <= 0
    boxes = np.array([[[0, 0, 4, 4], [1, 1, 5, 5], [10, 10, 12, 12]]], np.float32)
    scores = np.array([[[0.9, 0.2, 0.0], [0.8, 0.7, -0.5], [0.1, 0.3, -1.0]]], np.float32)
    selected, count = run_network(nms(5), {"boxes": boxes, "scores": scores})
    np.testing.assert_array_equal(selected, [[0, 0, 0], [0, 1, 1], [0, 1, 2], [0, 0, 2]])
    assert count == 4


def test_nothing_selected_gives_an_empty_output():
    boxes = random_boxes(1, 6)
    scores = RNG.uniform(0, 0.5, (1, 6, 2)).astype(np.float32)
    selected, count = run_network(nms(3, 0.5, 0.9), {"boxes": boxes, "scores": scores})
    assert selected.shape == (0, 3) and count == 0


def test_thresholds_and_limit_given_at_run_time():
    boxes = random_boxes(2, 20)
    scores = RNG.uniform(0, 1, (2, 20, 2)).astype(np.float32)

    def define(net, t):
        layer = net.add_nms(t["boxes"], t["scores"], t["limit"])
        layer.set_input(3, t["iou"])
        layer.set_input(4, t["score"])
        return [layer.get_output(0)]

    feeds = {"boxes": boxes, "scores": scores, "limit": np.array(3, np.int32),
             "iou": np.array(0.25, np.float32), "score": np.array(0.2, np.float32)}
    (selected,) = run_network(define, feeds)
    np.testing.assert_array_equal(selected, reference_nms(boxes, scores, 3, 0.25, 0.2))


def test_half_boxes_and_scores():
    boxes = random_boxes(1, 16, dtype=np.float16)
    scores = RNG.uniform(0, 1, (1, 16, 2)).astype(np.float16)
    selected, _ = run_network(nms(4, 0.3), {"boxes": boxes, "scores": scores})
    want = reference_nms(boxes.astype(np.float64), scores.astype(np.float64), 4, 0.3)
    np.testing.assert_array_equal(selected, want)


def test_int64_indices_through_set_output_type():
    boxes = random_boxes(1, 10)
    scores = RNG.uniform(0, 1, (1, 10, 2)).astype(np.float32)

    def define(net, t):
        layer = net.add_nms(t["boxes"], t["scores"], scalar(net, 2, np.int32))
        layer.set_output_type(0, trt.int64)
        return [layer.get_output(0)]

    (selected,) = run_network(define, {"boxes": boxes, "scores": scores})
    assert selected.dtype == np.int64
    np.testing.assert_array_equal(selected, reference_nms(boxes, scores, 2))


@pytest.mark.parametrize("center_point_box", [0, 1])
def test_one_class_matches_onnx_reference(center_point_box):
    """With one class TensorRT's order (by score) is ONNX's (by class, then selection)."""
    fmt = CENTERS if center_point_box else CORNERS
    boxes = random_boxes(2, 24, fmt)
    scores = RNG.uniform(0, 1, (2, 1, 24)).astype(np.float32)  # ONNX: [batch, class, box]
    node = helper.make_node("NonMaxSuppression", ["b", "s", "m", "i", "t"], ["y"],
                            center_point_box=center_point_box)
    consts = [helper.make_tensor("m", TensorProto.INT64, [1], [5]),
              helper.make_tensor("i", TensorProto.FLOAT, [1], [0.3]),
              helper.make_tensor("t", TensorProto.FLOAT, [1], [0.1])]
    model = helper.make_model(helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("b", TensorProto.FLOAT, boxes.shape),
                      helper.make_tensor_value_info("s", TensorProto.FLOAT, scores.shape)],
        [helper.make_tensor_value_info("y", TensorProto.INT64, None)], consts),
        opset_imports=[helper.make_opsetid("", 11)])
    want = ReferenceEvaluator(model).run(None, {"b": boxes, "s": scores})[0]
    selected, _ = run_network(nms(5, 0.3, 0.1, fmt),
                              {"boxes": boxes, "scores": scores.transpose(0, 2, 1).copy()})
    np.testing.assert_array_equal(selected, want)


def test_data_dependent_output_through_an_output_allocator():
    boxes = random_boxes(2, 12)
    scores = RNG.uniform(0, 1, (2, 12, 3)).astype(np.float32)
    engine = build_engine(nms(2, 0.3), {"boxes": boxes, "scores": scores})
    context = engine.create_execution_context()
    for name, array in (("boxes", boxes), ("scores", scores)):
        context.set_tensor_address(name, array.ctypes.data)
    assert context.get_tensor_shape("out0") == (-1, 3)
    assert context.get_tensor_shape("out1") == ()
    count = np.zeros((), np.int32)
    context.set_tensor_address("out1", count.ctypes.data)
    allocator = RecordingAllocator()
    assert context.set_output_allocator("out0", allocator)
    assert context.execute_async_v3(0)
    want = reference_nms(boxes, scores, 2, 0.3)
    assert allocator.shapes == {"out0": want.shape}
    got = allocator.buffers["out0"][:want.nbytes].view(np.int32).reshape(want.shape)
    np.testing.assert_array_equal(got, want)
    assert count == len(want)
    np.testing.assert_array_equal(context.infer({"boxes": boxes, "scores": scores})["out0"],
                                  want)


def test_attributes_survive_the_plan():
    boxes = random_boxes(1, 8, CENTERS)
    scores = RNG.uniform(0, 1, (1, 8, 2)).astype(np.float32)
    engine = build_engine(nms(3, 0.5, fmt=CENTERS, limit=6), {"boxes": boxes, "scores": scores})
    (restored,) = [layer for layer in engine._network._layers
                   if isinstance(layer, trt.INMSLayer)]
    assert restored.attributes() == {"bounding_box_format": CENTERS, "topk_box_limit": 6}
    assert restored.type == trt.LayerType.NMS and restored.num_outputs == 2


def new_network():
    return trt.Builder(trt.Logger()).create_network(0)


@pytest.mark.parametrize("boxes_shape, scores_shape, dtypes, message", [
    ((2, 10), (2, 10, 3), None, r"boxes must be \[batch, boxes, 4\] or \[batch, boxes, "
                                r"classes, 4\], got shape \(2, 10\)"),
    ((2, 10, 5), (2, 10, 3), None, r"got shape \(2, 10, 5\)"),
    ((2, 10, 4), (2, 10), None, r"scores must be \[batch, boxes, classes\], got shape "
                                r"\(2, 10\)"),
    ((2, 10, 4), (3, 10, 2), None, "differ in batch size"),
    ((2, 10, 4), (2, 9, 2), None, "differ in box count"),
    ((2, 10, 3, 4), (2, 10, 2), None, "differ in class count"),
    ((2, 10, 4), (2, 10, 3), (trt.float32, trt.float16),
     r"boxes \(input 0\) has type FLOAT but scores \(input 1\) has type HALF"),
    ((2, 10, 4), (2, 10, 3), (trt.int32, trt.int32), r"boxes \(input 0\) has type INT32"),
])
def test_input_refusals_name_the_problem(boxes_shape, scores_shape, dtypes, message):
    net = new_network()
    box_type, score_type = dtypes or (trt.float32, trt.float32)
    boxes = net.add_input("boxes", box_type, boxes_shape)
    scores = net.add_input("scores", score_type, scores_shape)
    with pytest.raises(trt.NetworkError, match=message):
        net.add_nms(boxes, scores, scalar(net, 3, np.int32))


@pytest.mark.parametrize("index, value, message", [
    (2, np.array(3, np.int64), r"MaxOutputBoxesPerClass \(input 2\) must be a 0-D INT32 "
                               r"tensor, got INT64 of shape \(\)"),
    (2, np.array([3], np.int32), r"must be a 0-D INT32 tensor, got INT32 of shape \(1,\)"),
    (3, np.array([0.5], np.float32), r"IoUThreshold \(input 3\) must be a 0-D FLOAT tensor"),
    (4, np.array(1, np.int32), r"ScoreThreshold \(input 4\) must be a 0-D FLOAT tensor, got "
                               r"INT32"),
])
def test_scalar_input_refusals(index, value, message):
    net = new_network()
    layer = net.add_nms(net.add_input("boxes", trt.float32, (1, 5, 4)),
                        net.add_input("scores", trt.float32, (1, 5, 2)),
                        scalar(net, 3, np.int32))
    layer.set_input(index, net.add_constant(value.shape, value).get_output(0))
    with pytest.raises(trt.NetworkError, match=message):
        _ = layer.get_output(0).shape


@pytest.mark.parametrize("limit", [-1, 5001])
def test_topk_box_limit_beyond_tensorrts_is_refused(limit):
    net = new_network()
    layer = net.add_nms(net.add_input("boxes", trt.float32, (1, 5, 4)),
                        net.add_input("scores", trt.float32, (1, 5, 2)),
                        scalar(net, 3, np.int32))
    layer.topk_box_limit = limit
    with pytest.raises(trt.NetworkError, match=rf"topk_box_limit is {limit}; it must be in "
                                               r"\[0, 5000\]"):
        _ = layer.get_output(0).shape


def test_indices_of_a_float_type_are_refused():
    net = new_network()
    layer = net.add_nms(net.add_input("boxes", trt.float32, (1, 5, 4)),
                        net.add_input("scores", trt.float32, (1, 5, 2)),
                        scalar(net, 3, np.int32))
    layer.set_output_type(0, trt.float32)
    with pytest.raises(trt.NetworkError, match=r"SelectedIndices \(output 0\) must be INT32 "
                                               r"or INT64, not FLOAT"):
        _ = layer.get_output(0).shape
