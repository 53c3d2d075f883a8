"""Grid sample, non-maximum suppression and reverse sequence (2027-01, written without a GPU) in
whole networks on the GPU target against the CPU target: CUDA graphs for the first and last,
none for NMS (its greedy pass and its output's length are on the host), whose data-dependent
output comes through ``infer`` and an output allocator; ONNX NonMaxSuppression (the layer and
the rows regrouped by class) on the GPU. tests/gpu/test_kernels.py compares the kernels on
their own cases."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import engine as trt
from engine.kernels.backends import gpu_available
from tests.gpu.gpu_support import DeviceAllocator, build_gpu_engine, run_on_both

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not gpu_available(), reason="needs a GPU")

RNG = np.random.default_rng(11)


def boxes_and_scores(batches, count, classes):
    xy = RNG.uniform(0, 40, (batches, count, 2))
    boxes = np.concatenate([xy, xy + RNG.uniform(3, 12, (batches, count, 2))], -1)
    return boxes.astype(np.float32), RNG.uniform(0, 1, (batches, count, classes)).astype(
        np.float32)


def _warp_and_reverse(net, t):
    """A grid sample (cubic, reflected) then its rows reversed per image by lengths."""
    sample = net.add_grid_sample(t["x"], t["grid"])
    sample.interpolation_mode = trt.InterpolationMode.CUBIC
    sample.sample_mode = trt.SampleMode.REFLECT
    reverse = net.add_reverse_sequence(sample.get_output(0), t["lens"])
    reverse.batch_axis, reverse.sequence_axis = 0, 2
    return [reverse.get_output(0)]


def test_grid_sample_and_reverse_sequence_run_in_a_cuda_graph():
    inputs = {"x": RNG.standard_normal((2, 3, 8, 9)).astype(np.float32),
              "grid": RNG.uniform(-1.2, 1.2, (2, 5, 6, 2)).astype(np.float32),
              "lens": np.array([5, 2], np.int32)}
    (got,), (want,) = run_on_both(_warp_and_reverse, inputs)
    np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-5, atol=1e-5)
    engine = build_gpu_engine(_warp_and_reverse, inputs)
    assert engine.create_execution_context().use_cuda_graphs


def _nms(net, t):
    limit = net.add_constant((), np.array(4, np.int32)).get_output(0)
    layer = net.add_nms(t["boxes"], t["scores"], limit)
    layer.set_input(3, net.add_constant((), np.array(0.3, np.float32)).get_output(0))
    return [layer.get_output(0), layer.get_output(1)]


def test_nms_output_through_infer_and_an_output_allocator():
    boxes, scores = boxes_and_scores(2, 40, 3)
    inputs = {"boxes": boxes, "scores": scores}
    (selected, count), (want, want_count) = run_on_both(_nms, inputs)
    np.testing.assert_array_equal(cupy.asnumpy(selected), want)
    assert int(count) == int(want_count) == len(want)

    engine = build_gpu_engine(_nms, inputs)
    assert not engine.create_execution_context().use_cuda_graphs

    context = engine.create_execution_context()
    device = {name: cupy.asarray(array) for name, array in inputs.items()}
    for name, array in device.items():
        context.set_tensor_address(name, array.data.ptr)
    device_count = cupy.zeros((), cupy.int32)
    context.set_tensor_address("out1", device_count.data.ptr)
    allocator = DeviceAllocator()
    assert context.set_output_allocator("out0", allocator)
    assert context.execute_async_v3(0)
    cupy.cuda.Stream.null.synchronize()
    assert allocator.shape == want.shape
    rows = allocator.buffer[:want.nbytes].view(cupy.int32).reshape(want.shape)
    np.testing.assert_array_equal(cupy.asnumpy(rows), want)
    assert int(device_count) == len(want)


def test_onnx_non_max_suppression_on_the_gpu_matches_the_reference():
    from onnx.reference import ReferenceEvaluator

    boxes, scores = boxes_and_scores(2, 30, 3)
    scores = scores.transpose(0, 2, 1).copy()  # ONNX: [batch, class, box]
    node = helper.make_node("NonMaxSuppression", ["b", "s", "m", "i"], ["y"])
    model = helper.make_model(helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("b", TensorProto.FLOAT, boxes.shape),
                      helper.make_tensor_value_info("s", TensorProto.FLOAT, scores.shape)],
        [helper.make_tensor_value_info("y", TensorProto.INT64, None)],
        [helper.make_tensor("m", TensorProto.INT64, [1], [5]),
         helper.make_tensor("i", TensorProto.FLOAT, [1], [0.25])]),
        opset_imports=[helper.make_opsetid("", 11)])
    want = ReferenceEvaluator(model).run(None, {"b": boxes, "s": scores})[0]

    logger = trt.Logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    assert trt.OnnxParser(network, logger).parse(model.SerializeToString())
    assert trt.LayerType.NMS in {layer.layer_type for layer in network}
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.GPU
    engine = trt.Runtime(logger).deserialize_cuda_engine(
        builder.build_serialized_network(network, config))
    got = engine.create_execution_context().infer({"b": boxes, "s": scores})["y"]
    np.testing.assert_array_equal(cupy.asnumpy(got), want)
