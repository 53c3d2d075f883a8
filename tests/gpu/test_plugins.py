"""The shipped plugins on the GPU target, compared with their CPU kernels: each engine is run
three times on the GPU (eager, then captured and replayed where the plugin allows graphs)."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from tests.gpu.gpu_support import build_gpu_engine, run_on_both

cupy = pytest.importorskip("cupy")

RNG = np.random.default_rng(11)


def field(name, value, kind):
    data = np.array(value if np.ndim(value) else [value],
                    np.float32 if kind == trt.PluginFieldType.FLOAT32 else np.int32)
    return trt.PluginField(name, data, kind)


def plugin_network(name, **values):
    """A ``define`` adding one plugin ``name`` (made fresh for each build) on every input."""
    def define(network, t):
        creator = trt.get_plugin_registry().get_creator(name, "1", "")
        kinds = {f.name: f.type for f in creator.field_names}
        fields = trt.PluginFieldCollection(field(k, v, kinds[k]) for k, v in values.items())
        plugin = creator.create_plugin(name, fields, trt.TensorRTPhase.BUILD)
        layer = network.add_plugin_v3(list(t.values()), [], plugin)
        return [layer.get_output(i) for i in range(layer.num_outputs)]
    return define


def compare(name, inputs, *, graphs, rtol=1e-5, atol=1e-5, **values):
    define = plugin_network(name, **values)
    by_gpu, by_cpu = run_on_both(define, inputs)
    for gpu, cpu in zip(by_gpu, by_cpu):
        assert isinstance(gpu, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(gpu), cpu, rtol=rtol, atol=atol)
    engine = build_gpu_engine(define, inputs)
    tactic = next(t for _, kind, t in engine.layer_tactics if "plugin" in t)
    assert tactic == ("gpu.plugin" if graphs else "gpu.plugin_host_synchronizing")
    assert engine.create_execution_context().use_cuda_graphs is graphs


def test_group_normalization_on_the_gpu():
    compare("GroupNormalizationPlugin",
            {"x": RNG.standard_normal((2, 6, 4, 5)).astype(np.float32),
             "scale": RNG.standard_normal(6).astype(np.float32),
             "bias": RNG.standard_normal(6).astype(np.float32)},
            graphs=True, num_groups=3, eps=1e-5, atol=1e-4)


@pytest.mark.parametrize("causal,heads", [(0, 2), (1, 4)])
def test_multi_head_attention_on_the_gpu(causal, heads):
    q, k, v = (RNG.standard_normal((2, 5, 8)).astype(np.float32) for _ in range(3))
    compare("MultiHeadAttention", {"q": q, "k": k, "v": v}, graphs=True, num_heads=heads,
            causal=causal, atol=1e-4)


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("padding_mode", [0, 1, 2])
def test_grid_sample_on_the_gpu(mode, padding_mode):
    x = RNG.standard_normal((2, 3, 6, 7)).astype(np.float32)
    grid = RNG.uniform(-1.2, 1.2, (2, 4, 5, 2)).astype(np.float32)
    compare("GridSample_TRT", {"x": x, "grid": grid}, graphs=True, mode=mode,
            padding_mode=padding_mode, align_corners=mode % 2, atol=1e-4)


def test_deform_conv_on_the_gpu():
    """DeformConv_TRT on CuPy arrays (the same array code as on the CPU): two offset groups,
    two groups, a mask and a bias."""
    x = RNG.standard_normal((2, 4, 7, 6)).astype(np.float32)
    w = RNG.standard_normal((6, 2, 3, 3)).astype(np.float32)
    offset = (RNG.standard_normal((2, 2 * 9 * 2, 5, 4)) * 1.5).astype(np.float32)
    bias = RNG.standard_normal(6).astype(np.float32)
    mask = RNG.uniform(0, 1, (2, 2 * 9, 5, 4)).astype(np.float32)
    compare("DeformConv_TRT", {"x": x, "w": w, "offset": offset, "b": bias, "mask": mask},
            graphs=True, strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], group=2,
            offset_group=2, has_bias=1, has_mask=1, atol=1e-4)


@pytest.mark.parametrize("mode", [0, 1])
def test_roi_align_on_the_gpu_reads_regions_on_the_host(mode):
    rois = np.array([[0, 0, 9, 9], [2.5, 1.5, 11, 7.2], [-2, -1, 3, 4]], np.float32)
    compare("ROIAlign_TRT", {"x": RNG.standard_normal((2, 3, 10, 12)).astype(np.float32),
                             "rois": rois, "batch_indices": np.array([0, 1, 1], np.int32)},
            graphs=False, mode=mode, output_height=3, output_width=4, sampling_ratio=2,
            spatial_scale=0.5)


def test_efficient_nms_on_the_gpu():
    xy = RNG.uniform(0, 50, (2, 30, 2))
    boxes = np.concatenate([xy, xy + RNG.uniform(5, 20, (2, 30, 2))], -1).astype(np.float32)
    scores = RNG.uniform(0, 1, (2, 30, 3)).astype(np.float32)
    compare("EfficientNMS_TRT", {"boxes": boxes, "scores": scores}, graphs=False,
            score_threshold=0.4, iou_threshold=0.3, max_output_boxes=10)


def test_onnx_non_max_suppression_on_the_gpu():
    boxes = RNG.uniform(0, 40, (1, 20, 4)).astype(np.float32)
    scores = RNG.uniform(0, 1, (1, 2, 20)).astype(np.float32)
    compare("NonMaxSuppression_TRT", {"boxes": boxes, "scores": scores}, graphs=False,
            max_output_boxes_per_class=5, iou_threshold=0.4)


@pytest.mark.parametrize("variant", [
    dict(score_activation=1, class_agnostic=1, box_coding=1, background_class=0),
    dict(score_activation=0, class_agnostic=0, box_coding=0, background_class=-1)])
def test_efficient_nms_computes_on_device_arrays(variant):
    from engine.plugins.library.nms import EfficientNMSPlugin, efficient_nms

    assert not getattr(EfficientNMSPlugin, "enqueue_takes_host_arrays", False)
    xy = RNG.uniform(0, 50, (2, 40, 3, 2))
    boxes = np.concatenate([xy, xy + RNG.uniform(5, 20, (2, 40, 3, 2))], -1).astype(np.float32)
    scores = RNG.standard_normal((2, 40, 3)).astype(np.float32)
    settings = dict(score_threshold=0.1, iou_threshold=0.25, max_output_boxes=12, **variant)
    on_device = efficient_nms(cupy.asarray(boxes), cupy.asarray(scores), **settings)
    on_host = efficient_nms(boxes, scores, **settings)
    for gpu, cpu in zip(on_device, on_host):
        assert isinstance(gpu, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(gpu), cpu, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("center_point_box,threshold", [(0, None), (1, 0.3)])
def test_onnx_nms_computes_on_device_arrays(center_point_box, threshold):
    from engine.plugins.library.onnx_nms import NonMaxSuppressionPlugin, onnx_nms

    assert not getattr(NonMaxSuppressionPlugin, "enqueue_takes_host_arrays", False)
    boxes = RNG.uniform(0, 40, (2, 25, 4)).astype(np.float32)
    scores = RNG.uniform(0, 1, (2, 3, 25)).astype(np.float32)
    settings = dict(max_output_boxes_per_class=6, iou_threshold=0.2,
                    score_threshold=threshold, center_point_box=center_point_box)
    on_device = onnx_nms(cupy.asarray(boxes), cupy.asarray(scores), **settings)
    on_host = onnx_nms(boxes, scores, **settings)
    for gpu, cpu in zip(on_device, on_host):
        assert isinstance(gpu, cupy.ndarray)
        np.testing.assert_array_equal(cupy.asnumpy(gpu), cpu)


def test_two_contexts_on_the_gpu_have_their_own_plugin_instances():
    inputs = {"x": RNG.standard_normal((2, 6, 4, 5)).astype(np.float32),
              "scale": np.ones(6, np.float32), "bias": np.zeros(6, np.float32)}
    engine = build_gpu_engine(plugin_network("GroupNormalizationPlugin", num_groups=2),
                              inputs)
    first, second = engine.create_execution_context(), engine.create_execution_context()
    a, b = first.infer(inputs)["out0"], second.infer(inputs)["out0"]
    cupy.testing.assert_allclose(a, b)
    layer = next(lay for lay, _ in engine._steps if lay.layer_type == trt.LayerType.PLUGIN_V3)
    instances = {id(layer._per_context[c].plugin) for c in (first, second)}
    assert len(instances) == 2


def test_determinant_on_the_gpu():
    """Determinant_TRT on CuPy arrays (cupy.linalg.det) against the CPU (numpy.linalg.det)."""
    x = RNG.standard_normal((3, 2, 4, 4)).astype(np.float32)
    by_gpu, by_cpu = run_on_both(plugin_network("Determinant_TRT"), {"x": x})
    np.testing.assert_allclose(cupy.asnumpy(by_gpu[0]), by_cpu[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(by_cpu[0], np.linalg.det(x.astype(np.float64)), rtol=1e-5)
