"""The GPU target through TensorRT's call sequence: device pointers, external streams, CUDA
graphs, concurrent contexts, host-located I/O, and the refusal of foreign plans."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import engine as trt
from engine.plan.format import read_plan, write_plan
from tests.gpu.gpu_support import build_gpu_engine, run_on_both
from tests.support import CollectingLogger

cupy = pytest.importorskip("cupy")

RNG = np.random.default_rng(7)
BIAS = RNG.standard_normal((16, 32)).astype(np.float32)


def network_under_test(net: trt.INetworkDefinition, t: dict[str, trt.ITensor]):
    """The richest small network the GPU kernels present can run: x -> ... -> one output."""
    x = t["x"]
    if hasattr(net, "add_elementwise") and hasattr(net, "add_activation"):
        bias = net.add_constant((16, 32), BIAS).get_output(0)
        summed = net.add_elementwise(x, bias, trt.ElementWiseOperation.SUM).get_output(0)
        return [net.add_activation(summed, trt.ActivationType.RELU).get_output(0)]
    return [net.add_identity(net.add_identity(x).get_output(0)).get_output(0)]


def reference(x: np.ndarray) -> np.ndarray:
    if hasattr(trt, "ElementWiseOperation") and hasattr(trt, "ActivationType"):
        return np.maximum(x + BIAS, 0)
    return x


def make_input() -> np.ndarray:
    return RNG.standard_normal((16, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def engine() -> trt.ICudaEngine:
    return build_gpu_engine(network_under_test, {"x": make_input()})


def test_plan_records_the_device(engine):
    target = engine.target
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    assert target["compute_capability"] == f"{props['major']}.{props['minor']}"
    assert target["device_name"]
    assert all(tactic.startswith("gpu.") for _, _, tactic in engine.layer_tactics)


def test_default_device_type_is_the_gpu_here():
    config = trt.Builder(trt.Logger()).create_builder_config()
    assert config.default_device_type == trt.DeviceType.GPU


def test_tensorrt_call_sequence_with_device_pointers_on_a_cupy_stream(engine):
    context = engine.create_execution_context()
    stream = cupy.cuda.Stream(non_blocking=True)
    for _ in range(4):  # eager, capture, replays
        x = make_input()
        device_x = cupy.asarray(x)
        device_y = cupy.full((16, 32), np.nan, np.float32)  # poisoned: every element written
        assert context.set_input_shape("x", x.shape)
        assert context.set_tensor_address("x", device_x.data.ptr)
        assert context.set_tensor_address("out0", device_y.data.ptr)
        assert context.execute_async_v3(stream.ptr)
        stream.synchronize()
        np.testing.assert_allclose(cupy.asnumpy(device_y), reference(x), rtol=1e-6)


def test_execute_async_v3_does_not_wait_for_the_stream(engine):
    """The run is only enqueued: work queued before it on the stream still runs first."""
    context = engine.create_execution_context()
    stream = cupy.cuda.Stream(non_blocking=True)
    x = make_input()
    device_x = cupy.zeros((16, 32), np.float32)
    device_y = cupy.empty_like(device_x)
    context.set_tensor_address("x", device_x.data.ptr)
    context.set_tensor_address("out0", device_y.data.ptr)
    with stream:
        _sleep_on_stream(stream, 20_000_000)
        device_x.set(x, stream)  # lands after the sleep, before the run
        assert context.execute_async_v3(stream.ptr)
    stream.synchronize()
    np.testing.assert_allclose(cupy.asnumpy(device_y), reference(x), rtol=1e-6)


def _sleep_on_stream(stream, cycles: int) -> None:
    kernel = cupy.RawKernel(r"""
    extern "C" __global__ void spin(long long cycles) {
        long long start = clock64();
        while (clock64() - start < cycles) { }
    }""", "spin")
    kernel((1,), (1,), (np.int64(cycles),), stream=stream)


def test_pytorch_style_handle_and_default_stream(engine):
    context = engine.create_execution_context()
    x = make_input()
    device_x, device_y = cupy.asarray(x), cupy.empty((16, 32), np.float32)
    context.set_tensor_address("x", device_x.data.ptr)
    context.set_tensor_address("out0", device_y.data.ptr)
    for _ in range(3):
        assert context.execute_async_v3(0)
    cupy.cuda.Device().synchronize()
    np.testing.assert_allclose(cupy.asnumpy(device_y), reference(x), rtol=1e-6)


def test_infer_takes_numpy_or_cupy_and_returns_cupy(engine):
    context = engine.create_execution_context()
    x = make_input()
    for feed in (x, cupy.asarray(x), x, cupy.asarray(x)):
        out = context.infer({"x": feed})["out0"]
        assert isinstance(out, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(out), reference(x), rtol=1e-6)


def test_graph_replays_match_eager_runs(engine):
    eager = engine.create_execution_context()
    eager.use_cuda_graphs = False
    graphed = engine.create_execution_context()
    assert graphed.use_cuda_graphs
    results = []
    for _ in range(5):
        x = make_input()
        a = eager.infer({"x": x})["out0"]
        b = graphed.infer({"x": x})["out0"]
        results.append(b)
        np.testing.assert_array_equal(cupy.asnumpy(a), cupy.asnumpy(b))
    # Outputs handed out earlier are not overwritten by later replays.
    assert len({int(r.data.ptr) for r in results}) == len(results)
    assert graphed._execution._signatures and all(
        s.graph is not None for s in graphed._execution._signatures.values())


def test_two_contexts_on_two_streams_run_concurrently(engine):
    contexts = [engine.create_execution_context() for _ in range(2)]
    streams = [cupy.cuda.Stream(non_blocking=True) for _ in range(2)]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            context, stream = contexts[index], streams[index]
            for _ in range(20):
                x = make_input() + index
                device_x = cupy.asarray(x)
                device_y = cupy.full((16, 32), np.nan, np.float32)
                context.set_tensor_address("x", device_x.data.ptr)
                context.set_tensor_address("out0", device_y.data.ptr)
                assert context.execute_async_v3(stream.ptr)
                stream.synchronize()
                np.testing.assert_allclose(cupy.asnumpy(device_y), reference(x), rtol=1e-6)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_two_contexts_interleaved_on_two_streams_without_waiting(engine):
    contexts = [engine.create_execution_context() for _ in range(2)]
    streams = [cupy.cuda.Stream(non_blocking=True) for _ in range(2)]
    inputs = [make_input() for _ in range(2)]
    device = [(cupy.asarray(x), cupy.full((16, 32), np.nan, np.float32)) for x in inputs]
    for _ in range(3):
        for context, stream, (dx, dy) in zip(contexts, streams, device):
            context.set_tensor_address("x", dx.data.ptr)
            context.set_tensor_address("out0", dy.data.ptr)
            assert context.execute_async_v3(stream.ptr)
    for stream, x, (_, dy) in zip(streams, inputs, device):
        stream.synchronize()
        np.testing.assert_allclose(cupy.asnumpy(dy), reference(x), rtol=1e-6)


def test_host_located_io_is_staged_through_pinned_memory():
    def define(net, t):
        outputs = network_under_test(net, t)
        t["x"].location = trt.TensorLocation.HOST
        outputs[0].location = trt.TensorLocation.HOST
        return outputs

    engine = build_gpu_engine(define, {"x": make_input()})
    assert engine.get_tensor_location("x") == trt.TensorLocation.HOST
    context = engine.create_execution_context()
    stream = cupy.cuda.Stream(non_blocking=True)
    for _ in range(3):
        x = make_input()
        y = np.full((16, 32), np.nan, np.float32)
        context.set_tensor_address("x", x.ctypes.data)
        context.set_tensor_address("out0", y.ctypes.data)
        assert context.execute_async_v3(stream.ptr)
        stream.synchronize()
        np.testing.assert_allclose(y, reference(x), rtol=1e-6)


def test_plan_for_another_compute_capability_is_refused(engine):
    contents = read_plan(engine.serialize())
    header = dict(contents.header)
    header["target"] = dict(header["target"], compute_capability="1.0",
                            device_name="Imaginary GPU")
    plan = write_plan(header, contents.arrays)
    logger = CollectingLogger()
    assert trt.Runtime(logger).deserialize_cuda_engine(plan) is None
    message = logger.errors()[-1]
    assert "compute capability 1.0 (Imaginary GPU)" in message
    assert "rebuild the plan" in message
    with pytest.raises(trt.PlanError, match="compute capability 1.0"):
        trt.engine_from_plan(plan)


def test_plan_round_trip_keeps_the_gpu_target(engine):
    again = trt.Runtime(trt.Logger()).deserialize_cuda_engine(engine.serialize())
    x = make_input()
    out = again.create_execution_context().infer({"x": x})["out0"]
    np.testing.assert_allclose(cupy.asnumpy(out), reference(x), rtol=1e-6)


def test_gpu_matches_cpu_on_the_network_under_test():
    x = make_input()
    gpu, cpu = run_on_both(network_under_test, {"x": x})
    np.testing.assert_allclose(cupy.asnumpy(gpu[0]), cpu[0], rtol=1e-6)


def test_layer_without_a_gpu_kernel_fails_the_build_with_its_name():
    from engine.kernels.gpu import basic
    from engine.kernels.registry import get_tactic, kernel, unregister

    tactic = get_tactic("gpu", trt.LayerType.IDENTITY, "gpu.identity")
    unregister("gpu", trt.LayerType.IDENTITY, "gpu.identity")
    try:
        logger = CollectingLogger()
        builder = trt.Builder(logger)
        net = builder.create_network(0)
        x = net.add_input("x", trt.float32, (2,))
        layer = net.add_identity(x)
        layer.name = "copy"
        net.mark_output(layer.get_output(0))
        config = builder.create_builder_config()
        config.default_device_type = trt.DeviceType.GPU
        assert builder.build_serialized_network(net, config) is None
        assert "layer 'copy' (IDENTITY): no gpu tactic supports it" in logger.errors()[-1]
    finally:
        kernel(trt.LayerType.IDENTITY, backend="gpu", name=tactic.name,
               supports=tactic.supports, source=tactic.source)(basic.identity)


def test_engine_with_a_host_synchronizing_kernel_runs_without_graphs():
    if not hasattr(trt, "SampleMode"):
        pytest.skip("needs the slice layer")

    def define(net, t):
        layer = net.add_slice(t["x"], (-2, 0), (20, 32), (1, 1))
        layer.mode = trt.SampleMode.WRAP
        return [layer.get_output(0)]

    engine = build_gpu_engine(define, {"x": make_input()})
    assert ("gpu.slice_indexed" in {tactic for _, _, tactic in engine.layer_tactics})
    context = engine.create_execution_context()
    assert not context.use_cuda_graphs
    for _ in range(3):
        x = make_input()
        out = cupy.asnumpy(context.infer({"x": x})["out0"])
        np.testing.assert_array_equal(out, x[np.arange(-2, 18) % 16])


def test_fp16_convolution_network_matches_the_cpu_target():
    if not hasattr(trt, "PoolingType"):
        pytest.skip("needs the spatial layers")
    kernel = (RNG.standard_normal((8, 3, 3, 3)) / 5).astype(np.float16)
    bias = RNG.standard_normal(8).astype(np.float16)

    def define(net, t):
        conv = net.add_convolution_nd(t["x"], 8, (3, 3), kernel, bias)
        conv.padding_nd = (1, 1)
        relu = net.add_activation(conv.get_output(0), trt.ActivationType.RELU)
        pool = net.add_pooling_nd(relu.get_output(0), trt.PoolingType.MAX, (2, 2))
        pool.stride_nd = (2, 2)
        return [pool.get_output(0)]

    x = RNG.standard_normal((2, 3, 16, 16)).astype(np.float16)
    gpu, cpu = run_on_both(define, {"x": x})
    np.testing.assert_allclose(cupy.asnumpy(gpu[0]).astype(np.float32),
                               cpu[0].astype(np.float32), rtol=2e-2, atol=2e-2)


def test_a_transposed_view_feeds_a_matrix_product():
    """k^T as attention exports it (one shuffle, [B, S, H, D] -> [B, H, D, S]) reaches the
    product as a swapped view of rows copied whole; the product reads it with a transpose
    flag. Values as on the CPU."""
    rng = np.random.default_rng(5)
    inputs = {"q": rng.standard_normal((2, 3, 5, 8)).astype(np.float32),
              "k": rng.standard_normal((2, 5, 3, 8)).astype(np.float32)}

    def define(net, t):
        k_t = net.add_shuffle(t["k"])
        k_t.first_transpose = (0, 2, 3, 1)
        scores = net.add_matrix_multiply(t["q"], trt.MatrixOperation.NONE, k_t.get_output(0),
                                         trt.MatrixOperation.NONE)
        return [scores.get_output(0), k_t.get_output(0)]

    by_gpu, by_cpu = run_on_both(define, inputs)
    for got, want in zip(by_gpu, by_cpu):
        np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(by_cpu[0], inputs["q"] @ inputs["k"].transpose(0, 2, 3, 1),
                               rtol=1e-5, atol=1e-5)


def test_input_consumed_event_is_recorded_on_the_run_stream(engine):
    """The event is recorded in the run's stream order: not ready while a gate holds the
    stream, ready after (replays; the eager and capturing runs may wait on the stream)."""
    from engine.kernels.gpu.stream_gate import StreamGate

    context = engine.create_execution_context()
    event = cupy.cuda.Event(disable_timing=True)
    assert context.set_input_consumed_event(event.ptr)
    assert context.get_input_consumed_event() == event.ptr
    stream = cupy.cuda.Stream(non_blocking=True)
    x = make_input()
    dx, dy = cupy.asarray(x), cupy.empty((16, 32), cupy.float32)
    context.set_input_shape("x", x.shape)
    context.set_tensor_address("x", dx.data.ptr)
    context.set_tensor_address("out0", dy.data.ptr)
    for _ in range(2):  # eager, then captured (may wait on the stream: no gate)
        assert context.execute_async_v3(stream.ptr)
        stream.synchronize()
        assert event.done
    for _ in range(2):  # replayed: enqueued without waiting, the event behind the gate
        with stream:
            gate = StreamGate()
        assert context.execute_async_v3(stream.ptr)
        assert not event.done
        gate.open()
        stream.synchronize()
        assert event.done
        np.testing.assert_allclose(cupy.asnumpy(dy), reference(x), rtol=1e-6)
