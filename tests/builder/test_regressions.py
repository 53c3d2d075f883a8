"""Regressions found on onnx's light models, each checked against onnxruntime: every CPU
convolution tactic (grouped and depthwise included), pooling, and whole models with and
without the optimizer's passes."""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import engine as trt
from engine.builder import pipeline
from engine.kernels.registry import tactics_for
from engine.network.layer import LayerType, TensorInfo
from engine.network.layers.fused import IFusedConvolutionLayer
from engine.onnx import OnnxParser
from tests.builder.support import run_optimized_and_plain
from tests.support import gemm_rounds_rows_alike

ort = pytest.importorskip("onnxruntime")

LIGHT = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
rng = np.random.default_rng(0)


def _onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _single_node_model(node: onnx.NodeProto, x: np.ndarray, initializers: list) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


CONVOLUTIONS = [  # channels, maps, groups, kernel, stride, dilation, pads
    (8, 16, 1, 3, 1, 1, 1),
    (8, 16, 1, 1, 2, 1, 0),
    (8, 64, 1, 3, 2, 1, 1),  # more weights than columns: the parts split the maps
    (4, 6, 1, 5, 2, 1, 2),  # many taps per stride phase: the columns read phase copies
    (4, 6, 1, 5, 2, 3, 3),
    (8, 12, 4, 1, 1, 1, 0),  # grouped 1x1 (ShuffleNet)
    (12, 12, 12, 3, 1, 1, 1),  # depthwise (ShuffleNet)
    (12, 12, 12, 3, 2, 1, 1),
    (6, 6, 6, 3, 1, 2, 2),
    (6, 12, 3, 3, 2, 1, 1),
    (5, 7, 1, 3, 1, 2, 2),  # dilated, stride 1: the shifted-slices tactic applies
    (5, 7, 1, 2, 1, 1, 0),
    (6, 8, 1, 3, 2, 1, 5),  # padding wider than the kernel: some output rows read only zeros
]


@pytest.mark.parametrize("channels,maps,groups,kernel,stride,dilation,pads", CONVOLUTIONS)
def test_every_cpu_convolution_tactic_matches_onnxruntime(channels, maps, groups, kernel,
                                                          stride, dilation, pads):
    x = rng.standard_normal((2, channels, 11, 9)).astype(np.float32)
    w = rng.standard_normal((maps, channels // groups, kernel, kernel)).astype(np.float32)
    b = rng.standard_normal(maps).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=groups,
                            strides=[stride] * 2, dilations=[dilation] * 2, pads=[pads] * 4)
    (want,) = _onnxruntime(_single_node_model(node, x, [
        onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(b, "b")]), {"x": x})

    network = trt.Builder(trt.Logger()).create_network(0)
    layer = network.add_convolution_nd(network.add_input("x", trt.float32, x.shape), maps,
                                       (kernel, kernel), w, b)
    layer.num_groups, layer.stride_nd = groups, (stride, stride)
    layer.dilation_nd, layer.padding_nd = (dilation, dilation), (pads, pads)
    infos = [TensorInfo(x.shape, trt.float32)]
    tactics = [t for t in tactics_for("cpu", LayerType.CONVOLUTION) if t.accepts(layer, infos)]
    names = [t.name for t in tactics]
    if groups == channels == maps:
        assert "cpu.convolution_depthwise_taps" in names
    if groups == 1 and stride == 1:
        assert "cpu.convolution_shifted_gemm" in names
    assert len(tactics) >= 2
    for tactic in tactics:
        (got,) = tactic.run(layer, [x])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=tactic.name)


def _in_two_parts(extent: int, *_: float) -> list[tuple[int, int]]:
    return [(0, extent // 2), (extent // 2, extent)] if extent > 1 else [(0, extent)]


@pytest.mark.parametrize("in_parts", [False, True], ids=["whole", "in-parts"])
@pytest.mark.parametrize("channels,maps,groups,kernel,stride,dilation,pads", CONVOLUTIONS)
def test_every_fused_convolution_tactic_adds_the_residual_and_activation(
        monkeypatch, in_parts, channels, maps, groups, kernel, stride, dilation, pads):
    from engine.kernels.cpu import fused_conv, fused_conv_channels_last

    if in_parts:  # each part then finishes its own block, the GEMM adding to bias + residual
        monkeypatch.setattr(fused_conv, "split", _in_two_parts)
        monkeypatch.setattr(fused_conv_channels_last, "split", _in_two_parts)
        monkeypatch.setattr(fused_conv, "PREFILL_MIN_ELEMENTS", 0)
    x = rng.standard_normal((2, channels, 11, 9)).astype(np.float32)
    w = rng.standard_normal((maps, channels // groups, kernel, kernel)).astype(np.float32)
    b = rng.standard_normal(maps).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=groups,
                            strides=[stride] * 2, dilations=[dilation] * 2, pads=[pads] * 4)
    (conv,) = _onnxruntime(_single_node_model(node, x, [
        onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(b, "b")]), {"x": x})
    residual = rng.standard_normal(conv.shape).astype(np.float32)
    summed = conv.astype(np.float64) + residual
    leaky = np.where(summed >= 0, summed, 0.1 * summed)
    activations = [(trt.ActivationType.RELU, 0.0, np.maximum(summed, 0)),
                   (trt.ActivationType.LEAKY_RELU, 0.1, leaky)]

    network = trt.Builder(trt.Logger()).create_network(0)
    plain = network.add_convolution_nd(network.add_input("x", trt.float32, x.shape), maps,
                                       (kernel, kernel), w, b)
    plain.num_groups, plain.stride_nd = groups, (stride, stride)
    plain.dilation_nd, plain.padding_nd = (dilation, dilation), (pads, pads)
    skip = network.add_input("residual", trt.float32, conv.shape)
    infos = [TensorInfo(x.shape, trt.float32), None, None, TensorInfo(conv.shape, trt.float32)]
    for activation, alpha, want in activations:
        layer = IFusedConvolutionLayer.from_convolution(plain, skip, activation, alpha)
        tactics = [t for t in tactics_for("cpu", LayerType.FUSED_CONVOLUTION)
                   if t.accepts(layer, infos)]
        assert len(tactics) >= 2
        for tactic in tactics:
            (got,) = tactic.run(layer, [x, None, None, residual])
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4,
                                       err_msg=f"{tactic.name} {activation.name}")


def test_maps_equal_in_exact_arithmetic_are_equal_whatever_part_computes_them(monkeypatch):
    from engine.kernels.cpu import fused_conv

    if not gemm_rounds_rows_alike():
        pytest.skip("NumPy's BLAS rounds equal rows of a product differently")
    # Parts of 60 and 61 maps with the size above which the bias is written before the
    # product between them: the GEMM adds to it once per slice of the inner dimension.
    monkeypatch.setattr(fused_conv, "split", lambda extent, *_: [(0, 60), (60, extent)])
    monkeypatch.setattr(fused_conv, "PREFILL_MIN_ELEMENTS", 61 * 13 * 13)
    x = rng.random((1, 512, 13, 13), dtype=np.float32) * 100
    w = np.full((121, 512, 1, 1), 0.02, np.float32)
    b = np.full(121, 0.5, np.float32)
    network = trt.Builder(trt.Logger()).create_network(0)
    layer = network.add_convolution_nd(network.add_input("x", trt.float32, x.shape), 121,
                                       (1, 1), w, b)
    (tactic,) = [t for t in tactics_for("cpu", LayerType.CONVOLUTION)
                 if t.name == "cpu.convolution_direct_gemm"]
    (got,) = tactic.run(layer, [x])
    assert (got == got[:, :1]).all()


@pytest.mark.parametrize("op,attributes", [
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2]}),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]}),
    ("AveragePool", {"kernel_shape": [2, 3], "strides": [2, 1], "pads": [0, 1, 1, 0],
                     "count_include_pad": 1}),
])
def test_pooling_matches_onnxruntime(op, attributes):
    x = rng.standard_normal((1, 4, 10, 9)).astype(np.float32)
    model = _single_node_model(helper.make_node(op, ["x"], ["y"], **attributes), x, [])
    (want,) = _onnxruntime(model, {"x": x})
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    assert OnnxParser(network, logger).parse(model.SerializeToString())
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    engine = trt.Runtime(logger).deserialize_cuda_engine(
        builder.build_serialized_network(network, config))
    (got,) = engine.create_execution_context().infer({"x": x}).values()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _logits_model(name: str) -> tuple[onnx.ModelProto, str, str]:
    """The light model with its softmax's input added as a graph output (the softmax of these
    models' logits is ill-conditioned: their weights are constants, so all 1000 logits are
    equal in exact arithmetic and a last-ulp difference makes the softmax one-hot)."""
    model = onnx.load(str(LIGHT / f"light_{name}.onnx"))
    softmax = [n for n in model.graph.node if n.op_type == "Softmax"][-1]
    model.graph.output.append(helper.make_empty_tensor_value_info(softmax.input[0]))
    initializers = {i.name for i in model.graph.initializer}
    data = next(i.name for i in model.graph.input if i.name not in initializers)
    return model, data, softmax.input[0]


@pytest.mark.parametrize("name", ["squeezenet", "shufflenet"])
def test_light_model_logits_match_onnxruntime_with_and_without_passes(monkeypatch, name):
    model, data, logits = _logits_model(name)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    want = dict(zip([o.name for o in model.graph.output], _onnxruntime(model, {data: x})))
    for passes in (True, False):
        engine = _build_onnx(monkeypatch, model, passes)
        got = engine.create_execution_context().infer({data: x})
        error = np.abs(got[logits].astype(np.float64) - want[logits]).max()
        assert error <= 1e-5 * np.abs(want[logits]).max(), (name, passes, error)


def _build_onnx(monkeypatch: pytest.MonkeyPatch, model: onnx.ModelProto, passes: bool
                ) -> trt.ICudaEngine:
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    assert OnnxParser(network, logger).parse(model.SerializeToString())
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    with monkeypatch.context() as patch:
        if not passes:
            patch.setattr(pipeline, "PASSES", [])
        plan = builder.build_serialized_network(network, config)
    return trt.Runtime(logger).deserialize_cuda_engine(plan)


def test_fused_pointwise_chain_reuses_only_its_own_intermediates(monkeypatch):
    x = rng.standard_normal((1, 6, 5, 5)).astype(np.float32)
    scale = rng.uniform(0.5, 2, (1, 6, 1, 1)).astype(np.float32)
    shift = rng.standard_normal((1, 6, 1, 1)).astype(np.float32)

    def define(network, tensors):
        def constant(value):
            return network.add_constant(value.shape, value).get_output(0)

        t = tensors["x"]
        scaled = network.add_elementwise(t, constant(scale), trt.ElementWiseOperation.PROD)
        shifted = network.add_elementwise(scaled.get_output(0), constant(shift),
                                          trt.ElementWiseOperation.SUM)
        relu = network.add_activation(shifted.get_output(0), trt.ActivationType.RELU)
        squared = network.add_elementwise(relu.get_output(0), relu.get_output(0),
                                          trt.ElementWiseOperation.PROD)
        return [network.add_elementwise(squared.get_output(0), t,
                                        trt.ElementWiseOperation.SUB).get_output(0)]

    feeds = {"x": x.copy()}
    engine, optimized, plain = run_optimized_and_plain(monkeypatch, define, feeds)
    assert {kind for _, kind, _ in engine.layer_tactics if kind != "CONSTANT"} == \
        {"FUSED_POINTWISE"}
    want = np.maximum(x * scale + shift, 0) ** 2 - x
    np.testing.assert_allclose(optimized["out0"], want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(plain["out0"], want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(feeds["x"], x)  # the input is read, never written


def test_a_cpu_run_uses_one_blas_thread_and_restores_the_count():
    from engine.kernels.cpu import blas_threads

    setter = blas_threads._SET_LOCAL_THREADS
    if setter is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS with per-thread thread counts")
    before = setter(3)  # setting returns the count it replaces
    a = rng.standard_normal((96, 96)).astype(np.float32)
    with blas_threads.one_blas_thread():
        assert setter(1) == 1
        product = a @ a
    assert setter(before) == 3
    np.testing.assert_allclose(product, a.astype(np.float64) @ a, rtol=1e-4, atol=1e-4)


def _product_in_parts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` with the rows of ``a`` cut into one part per core, as the convolutions do."""
    from engine.kernels.cpu.blas_threads import run_parts, split

    out = np.empty((a.shape[0], b.shape[1]), np.float32)

    def rows(start: int, stop: int) -> None:
        np.matmul(a[start:stop], b, out=out[start:stop])
    run_parts(rows, split(a.shape[0], 2.0 * a.size * b.shape[1]))
    return out


def test_run_parts_runs_every_part_once_and_raises_what_a_part_raised():
    from engine.kernels.cpu.blas_threads import run_parts

    done: list[int] = []
    for _ in range(50):  # the worker takes some offers, others are called off
        run_parts(lambda start, stop: done.extend(range(start, stop)), [(0, 3), (3, 8)])
    assert sorted(done) == sorted(list(range(8)) * 50)

    def fails(start: int, stop: int) -> None:
        if start:
            raise ValueError(f"part {start}")

    for _ in range(20):
        with pytest.raises(ValueError, match="part 3"):
            run_parts(fails, [(0, 3), (3, 8)])


@pytest.mark.parametrize("view", ["whole", "columns", "transposed", "transposed block",
                                  "every other column"])
def test_matmul_accumulate_adds_the_product_in_place(view):
    from engine.kernels.cpu.blas_threads import matmul_accumulate

    a = rng.standard_normal((37, 50)).astype(np.float32)
    b = rng.standard_normal((50, 90)).astype(np.float32)
    out = rng.standard_normal((37, 120)).astype(np.float32)
    first, last = (5, 65) if view == "columns" else (0, 90)
    if view == "columns":  # a block of another array's columns, as a part's block is
        b = b[:, 10:70]
    elif view == "transposed":  # the GEMM reads the transpose of a row-major matrix
        b = np.asfortranarray(b)
    elif view == "transposed block":  # as the channels-last convolution's columns are read
        wider = rng.standard_normal((100, 64)).astype(np.float32)
        b = wider[4:94, 3:53].T
    elif view == "every other column":  # no unit stride either way: NumPy computes it
        b = rng.standard_normal((50, 180)).astype(np.float32)[:, ::2]
    target = out[:, first:last]
    want = target.astype(np.float64) + a.astype(np.float64) @ b
    before = out.copy()
    matmul_accumulate(a, b, target)
    np.testing.assert_allclose(target, want, rtol=1e-4, atol=1e-4)
    outside = np.ones(out.shape, bool)
    outside[:, first:last] = False
    np.testing.assert_array_equal(out[outside], before[outside])  # nothing else written


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")  # Python 3.12+
def test_parallel_products_work_in_a_forked_child():
    import multiprocessing

    a = rng.standard_normal((200, 300)).astype(np.float32)
    b = rng.standard_normal((300, 400)).astype(np.float32)
    _product_in_parts(a, b)  # the parent's pool has started its threads
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(_product_in_parts, (a, b)).get(timeout=60)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)
