"""The shipped plugins against references written here (and onnx's RoiAlign)."""

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import engine as trt
from tests.support import run_network


def field(name, value, kind):
    dtype = np.float32 if kind == trt.PluginFieldType.FLOAT32 else np.int32
    return trt.PluginField(name, np.array([value], dtype), kind)


def make_plugin(name, **values):
    creator = trt.get_plugin_registry().get_creator(name, "1", "")
    kinds = {f.name: f.type for f in creator.field_names}
    fields = trt.PluginFieldCollection(field(k, v, kinds[k]) for k, v in values.items())
    return creator.create_plugin(name, fields, trt.TensorRTPhase.BUILD)


def run_plugin(name, inputs, **values):
    plugin = make_plugin(name, **values)

    def define(network, t):
        layer = network.add_plugin_v3([t[k] for k in inputs], [], plugin)
        return [layer.get_output(i) for i in range(layer.num_outputs)]

    return run_network(define, inputs)


# -- EfficientNMS_TRT ------------------------------------------------------------------------
def reference_nms(boxes, scores, score_threshold, iou_threshold, max_output_boxes,
                  background_class=-1, score_activation=0, box_coding=0):
    """Greedy class-aware NMS, one candidate at a time, in plain Python."""
    if score_activation:
        scores = 1 / (1 + np.exp(-scores.astype(np.float64)))
    results = []
    for b in range(scores.shape[0]):
        cands = [(float(scores[b, i, c]), i, c) for i in range(scores.shape[1])
                 for c in range(scores.shape[2])
                 if scores[b, i, c] > score_threshold and c != background_class]
        cands.sort(key=lambda s: -s[0])
        kept = []
        for s, i, c in cands:
            box = boxes[b, i]
            if box_coding == 1:
                x, y, w, h = box
                box = np.array([x - w / 2, y - h / 2, x + w / 2, y + h / 2])
            ok = True
            for _, _, kc, kbox in kept:
                if kc != c:
                    continue
                iw = max(0.0, min(box[2], kbox[2]) - max(box[0], kbox[0]))
                ih = max(0.0, min(box[3], kbox[3]) - max(box[1], kbox[1]))
                inter = iw * ih
                union = ((box[2] - box[0]) * (box[3] - box[1])
                         + (kbox[2] - kbox[0]) * (kbox[3] - kbox[1]) - inter)
                if inter / union > iou_threshold:
                    ok = False
                    break
            if ok and len(kept) < max_output_boxes:
                kept.append((s, i, c, box))
        results.append(kept)
    return results


def test_efficient_nms_hand_made_example():
    boxes = np.array([[[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]]],
                     np.float32)
    scores = np.array([[[0.9, 0.1], [0.8, 0.7], [0.3, 0.6], [0.05, 0.95]]], np.float32)
    num, out_boxes, out_scores, out_classes = run_plugin(
        "EfficientNMS_TRT", {"boxes": boxes, "scores": scores}, score_threshold=0.2,
        iou_threshold=0.5, max_output_boxes=5, background_class=-1, score_activation=0,
        box_coding=0)
    # class 1: 0.95 (box 3) suppresses 0.7 (box 1, IoU 0.68); box 2 0.6 survives.
    # class 0: 0.9 (box 0) suppresses 0.8 (box 1); 0.3 (box 2) survives.
    np.testing.assert_array_equal(num, [[4]])
    np.testing.assert_allclose(out_scores, [[0.95, 0.9, 0.6, 0.3, 0.0]], rtol=1e-6)
    np.testing.assert_array_equal(out_classes, [[1, 0, 1, 0, 0]])
    np.testing.assert_array_equal(out_boxes[0, :4], boxes[0, [3, 0, 2, 2]])
    assert not out_boxes[0, 4].any()
    assert num.dtype == np.int32 and out_classes.dtype == np.int32


@pytest.mark.parametrize("background_class,score_activation,box_coding,max_out", [
    (-1, 0, 0, 20), (0, 0, 0, 20), (-1, 1, 0, 20), (-1, 0, 1, 20), (2, 1, 1, 3)])
def test_efficient_nms_matches_reference(background_class, score_activation, box_coding,
                                         max_out):
    rng = np.random.default_rng(7)
    batch, count, classes = 2, 30, 3
    xy = rng.uniform(0, 50, (batch, count, 2))
    wh = rng.uniform(5, 20, (batch, count, 2))
    if box_coding == 0:
        boxes = np.concatenate([xy, xy + wh], -1).astype(np.float32)
    else:
        boxes = np.concatenate([xy + wh / 2, wh], -1).astype(np.float32)
    scores = rng.uniform(-2 if score_activation else 0, 2 if score_activation else 1,
                         (batch, count, classes)).astype(np.float32)
    num, out_boxes, out_scores, out_classes = run_plugin(
        "EfficientNMS_TRT", {"boxes": boxes, "scores": scores}, score_threshold=0.4,
        iou_threshold=0.3, max_output_boxes=max_out, background_class=background_class,
        score_activation=score_activation, box_coding=box_coding)
    expected = reference_nms(boxes, scores, 0.4, 0.3, max_out, background_class,
                             score_activation, box_coding)
    for b, kept in enumerate(expected):
        assert num[b, 0] == len(kept)
        np.testing.assert_allclose(out_scores[b, :len(kept)], [k[0] for k in kept], rtol=1e-5)
        np.testing.assert_array_equal(out_classes[b, :len(kept)], [k[2] for k in kept])
        np.testing.assert_array_equal(out_boxes[b, :len(kept)], boxes[b, [k[1] for k in kept]])
        assert not out_scores[b, len(kept):].any()


def test_efficient_nms_refuses_bad_fields():
    with pytest.raises(ValueError, match="box_coding must be 0"):
        make_plugin("EfficientNMS_TRT", box_coding=3)
    with pytest.raises(ValueError, match="unknown field 'topk'"):
        trt.get_plugin_registry().get_creator("EfficientNMS_TRT", "1", "").create_plugin(
            "nms", trt.PluginFieldCollection([field("topk", 1, trt.PluginFieldType.INT32)]),
            trt.TensorRTPhase.BUILD)


# -- ROIAlign_TRT against onnx's RoiAlign ---------------------------------------------------------
@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("half_pixel", [0, 1])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align_matches_onnx(mode, half_pixel, sampling_ratio):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 10, 12)).astype(np.float32)
    rois = np.array([[0, 0, 9, 9], [2.5, 1.5, 11, 7.2], [-2, -1, 3, 4], [4, 4, 4.5, 4.2]],
                    np.float32)
    batch_indices = np.array([0, 1, 1, 0], np.int32)
    (y,) = run_plugin("ROIAlign_TRT", {"x": x, "rois": rois, "batch_indices": batch_indices},
                      coordinate_transformation_mode=half_pixel, mode=mode, output_height=3,
                      output_width=4, sampling_ratio=sampling_ratio, spatial_scale=0.5)
    node = helper.make_node(
        "RoiAlign", ["x", "rois", "bi"], ["y"], mode="avg" if mode else "max",
        output_height=3, output_width=4, sampling_ratio=sampling_ratio, spatial_scale=0.5,
        coordinate_transformation_mode="half_pixel" if half_pixel else "output_half_pixel")
    graph = helper.make_graph([node], "g", [
        helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x.shape),
        helper.make_tensor_value_info("rois", onnx.TensorProto.FLOAT, rois.shape),
        helper.make_tensor_value_info("bi", onnx.TensorProto.INT64, batch_indices.shape)],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    (expected,) = ReferenceEvaluator(model).run(
        None, {"x": x, "rois": rois, "bi": batch_indices.astype(np.int64)})
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


# -- GroupNormalizationPlugin and MultiHeadAttention --------------------------------------------
def test_group_normalization():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 4, 5)).astype(np.float32)
    scale = rng.standard_normal(6).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    (y,) = run_plugin("GroupNormalizationPlugin", {"x": x, "scale": scale, "bias": bias},
                      eps=1e-3, num_groups=3)
    g = x.astype(np.float64).reshape(2, 3, 2, 4, 5)
    mean = g.mean(axis=(2, 3, 4), keepdims=True)
    var = ((g - mean) ** 2).mean(axis=(2, 3, 4), keepdims=True)
    expected = ((g - mean) / np.sqrt(var + 1e-3)).reshape(x.shape) * scale[:, None, None] \
        + bias[:, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    network = trt.Builder(trt.Logger()).create_network(0)
    bad = network.add_input("x", trt.float32, (1, 5, 2))
    with pytest.raises(trt.NetworkError, match="5 channels do not split into 3 groups"):
        network.add_plugin_v3([bad, bad, bad], [], make_plugin(
            "GroupNormalizationPlugin", num_groups=3))


def reference_attention(q, k, v, heads, causal):
    b, sq, w = q.shape
    d = w // heads
    out = np.zeros((b, sq, w))
    for h in range(heads):
        qs, ks, vs = (t[:, :, h * d:(h + 1) * d].astype(np.float64) for t in (q, k, v))
        logits = qs @ ks.transpose(0, 2, 1) / np.sqrt(d)
        if causal:
            logits = logits + np.triu(np.full((sq, ks.shape[1]), -np.inf), 1)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        out[:, :, h * d:(h + 1) * d] = (p / p.sum(-1, keepdims=True)) @ vs
    return out


@pytest.mark.parametrize("causal", [0, 1])
@pytest.mark.parametrize("tactic", [0, 1])
def test_multi_head_attention(causal, tactic):
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((2, 5, 8)).astype(np.float32) for _ in range(3))
    plugin = make_plugin("MultiHeadAttention", num_heads=2, causal=causal)
    plugin.set_tactic(tactic)
    out = np.zeros_like(q)
    plugin.enqueue([], [], [q, k, v], [out], None, 0)
    np.testing.assert_allclose(out, reference_attention(q, k, v, 2, causal), rtol=1e-5,
                               atol=1e-6)
    (y,) = run_plugin("MultiHeadAttention", {"q": q, "k": k, "v": v}, num_heads=2,
                      causal=causal)
    expected = reference_attention(q, k, v, 2, causal)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
