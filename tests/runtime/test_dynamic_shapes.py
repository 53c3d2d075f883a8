"""Several optimization profiles, shape-tensor inputs, and output allocators for
data-dependent shapes, on the pointer path."""

import numpy as np
import pytest

import engine as trt
from engine.plan.format import read_plan
from tests.support import CollectingLogger


def build(define, config_hook):
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    define(network)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    config_hook(builder, config)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors()
    return plan, trt.Runtime(logger).deserialize_cuda_engine(plan), logger


WEIGHTS = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)


def matmul_network(network):
    x = network.add_input("x", trt.float32, (-1, 4))
    w = network.add_constant((4, 6), WEIGHTS).get_output(0)
    y = network.add_matrix_multiply(x, trt.MatrixOperation.NONE, w,
                                    trt.MatrixOperation.NONE).get_output(0)
    y.name = "y"
    network.mark_output(y)


def conv_network(network):
    x = network.add_input("x", trt.float32, (-1, 2, 6, 6))
    kernel = np.ones((3, 2, 3, 3), np.float32)
    y = network.add_convolution_nd(x, 3, (3, 3), kernel).get_output(0)
    y.name = "y"
    network.mark_output(y)


def two_profiles(builder, config):
    for lo, opt, hi in (((1, 4), (2, 4), (4, 4)), ((8, 4), (64, 4), (128, 4))):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", lo, opt, hi)
        config.add_optimization_profile(profile)


def run_pointer_path(context, x):
    assert context.set_input_shape("x", x.shape)
    y = np.zeros(tuple(context.get_tensor_shape("y")), np.float32)
    context.set_tensor_address("x", x.ctypes.data)
    context.set_tensor_address("y", y.ctypes.data)
    assert context.execute_async_v3(0)
    return y


def test_each_context_runs_in_its_own_profile():
    plan, engine, logger = build(matmul_network, two_profiles)
    assert engine.num_optimization_profiles == 2
    assert engine.get_tensor_profile_shape("x", 1) == [(8, 4), (64, 4), (128, 4)]
    header = read_plan(plan).header
    assert len(header["profile_tactics"]) == 2
    assert all(len(t) == len(header["tactics"]) for t in header["profile_tactics"])
    rng = np.random.default_rng(0)
    small, large = engine.create_execution_context(), engine.create_execution_context()
    assert large.set_optimization_profile_async(1, 0) and large.active_optimization_profile == 1
    x_small = rng.standard_normal((3, 4)).astype(np.float32)
    x_large = rng.standard_normal((100, 4)).astype(np.float32)
    np.testing.assert_allclose(run_pointer_path(small, x_small), x_small @ WEIGHTS, rtol=1e-5)
    np.testing.assert_allclose(run_pointer_path(large, x_large), x_large @ WEIGHTS, rtol=1e-5)
    np.testing.assert_allclose(large.infer({"x": x_large})["y"], x_large @ WEIGHTS, rtol=1e-5)
    # shapes are checked against the active profile
    assert not small.set_input_shape("x", (100, 4))
    assert "outside optimization profile 0: min (1, 4), max (4, 4)" in logger.errors()[-1]
    assert not large.set_input_shape("x", (3, 4))
    assert "outside optimization profile 1: min (8, 4), max (128, 4)" in logger.errors()[-1]
    assert not small.set_optimization_profile_async(2, 0)
    # a shape set under one profile is checked again when the profile changes
    assert small.set_input_shape("x", (3, 4))
    small.set_optimization_profile_async(1, 0)
    assert not small.execute_async_v3(0)
    assert "outside optimization profile 1" in logger.errors()[-1]


def test_tactics_are_timed_at_the_opt_shape_of_each_profile():
    def timed_entries(profile_hook):
        caches = []

        def hook(builder, config):
            profile_hook(builder, config)
            cache = config.create_timing_cache(b"")
            assert config.set_timing_cache(cache, False)
            caches.append(cache)

        build(conv_network, hook)
        return len(caches[0]._entries)

    def profiles(*opts):
        def hook(builder, config):
            for opt in opts:
                profile = builder.create_optimization_profile()
                profile.set_shape("x", (1, 2, 6, 6), (opt, 2, 6, 6), (8, 2, 6, 6))
                config.add_optimization_profile(profile)
        return hook

    # a convolution has several CPU tactics: timed once at each distinct opt shape
    one = timed_entries(profiles(2))
    assert one == 1
    assert timed_entries(profiles(2, 6)) == 2
    assert timed_entries(profiles(2, 2)) == 1  # the same opt: the timing cache answers


def reshape_network(network):
    x = network.add_input("x", trt.float32, (-1,))
    dims = network.add_input("dims", trt.int32, (2,))
    shuffle = network.add_shuffle(x)
    shuffle.set_input(1, dims)
    y = shuffle.get_output(0)
    y.name = "y"
    network.mark_output(y)


def shape_input_profile(builder, config):
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1,), (12,), (144,))
    profile.set_shape_input("dims", (1, 1), (3, 4), (12, 12))
    config.add_optimization_profile(profile)


def test_shape_tensor_input_on_the_host():
    plan, engine, logger = build(reshape_network, shape_input_profile)
    assert engine.is_shape_inference_io("dims")
    assert engine.get_tensor_location("dims") == trt.TensorLocation.HOST
    assert engine.get_tensor_profile_values(0, "dims") == [[1, 1], [3, 4], [12, 12]]
    context = engine.create_execution_context()
    x = np.arange(12, dtype=np.float32)
    dims = np.array([4, 3], np.int32)  # host memory, as TensorRT reads shape inputs
    context.set_input_shape("x", (12,))
    context.set_input_shape("dims", (2,))
    context.set_tensor_address("x", x.ctypes.data)
    context.set_tensor_address("dims", dims.ctypes.data)
    assert context.get_tensor_shape("y") == (4, 3)
    y = np.zeros((4, 3), np.float32)
    context.set_tensor_address("y", y.ctypes.data)
    assert context.execute_async_v3(0)
    np.testing.assert_array_equal(y, x.reshape(4, 3))
    dims[:] = [2, 6]  # new values, read at the next run
    assert context.get_tensor_shape("y") == (2, 6)
    y2 = np.zeros((2, 6), np.float32)
    context.set_tensor_address("y", y2.ctypes.data)
    assert context.execute_async_v3(0)
    np.testing.assert_array_equal(y2, x.reshape(2, 6))
    np.testing.assert_array_equal(context.infer({"x": x, "dims": np.array([6, 2], np.int32)})
                                  ["y"], x.reshape(6, 2))
    with pytest.raises(trt.ExecutionError, match=r"shape input 'dims': values \(24, 1\) are "
                                                 r"outside optimization profile 0"):
        context.infer({"x": x, "dims": np.array([24, 1], np.int32)})


def test_shape_input_values_must_fit_its_shape():
    def bad(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1,), (12,), (144,))
        profile.set_shape_input("dims", (1,), (3,), (12,))
        config.add_optimization_profile(profile)

    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    reshape_network(network)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    bad(builder, config)
    assert builder.build_serialized_network(network, config) is None
    assert "shape input 'dims': min values (1,) do not fit its shape (2,)" in logger.errors()[-1]


class RecordingAllocator(trt.IOutputAllocator):
    def __init__(self):
        trt.IOutputAllocator.__init__(self)
        self.buffers, self.shapes, self.requests = {}, {}, []

    def reallocate_output(self, tensor_name, memory, size, alignment):
        self.requests.append((tensor_name, size))
        buffer = np.zeros(max(size, 1), np.uint8)
        self.buffers[tensor_name] = buffer
        return buffer.ctypes.data

    def notify_shape(self, tensor_name, shape):
        self.shapes[tensor_name] = tuple(shape)


def nonzero_network(network):
    x = network.add_input("x", trt.float32, (3, 4))
    y = network.add_non_zero(x).get_output(0)
    y.name = "y"
    network.mark_output(y)


def test_data_dependent_output_through_an_output_allocator():
    _, engine, logger = build(nonzero_network, lambda b, c: None)
    context = engine.create_execution_context()
    x = np.array([[0, 1, 0, 2], [0, 0, 0, 0], [3, 0, 0, 4]], np.float32)
    context.set_tensor_address("x", x.ctypes.data)
    assert context.get_tensor_shape("y") == (2, -1)
    assert not context.execute_async_v3(0)
    assert "data-dependent shape: set an output allocator" in logger.errors()[-1]
    allocator = RecordingAllocator()
    assert context.set_output_allocator("y", allocator)
    assert context.get_output_allocator("y") is allocator
    assert context.execute_async_v3(0)
    expected = np.array(np.nonzero(x), np.int64)
    assert allocator.requests == [("y", expected.nbytes)]
    assert allocator.shapes == {"y": expected.shape}
    got = allocator.buffers["y"][:expected.nbytes].view(np.int64).reshape(expected.shape)
    np.testing.assert_array_equal(got, expected)
    assert context.get_tensor_address("y") == allocator.buffers["y"].ctypes.data
    assert not context.set_output_allocator("x", allocator)


class AsyncAllocator(RecordingAllocator):
    def reallocate_output_async(self, tensor_name, memory, size, alignment, stream):
        self.requests.append(("async", stream))
        return super().reallocate_output(tensor_name, memory, size, alignment)


def test_reallocate_output_async_is_preferred_when_implemented():
    _, engine, _ = build(nonzero_network, lambda b, c: None)
    context = engine.create_execution_context()
    x = np.eye(3, 4, dtype=np.float32)
    context.set_tensor_address("x", x.ctypes.data)
    allocator = AsyncAllocator()
    context.set_output_allocator("y", allocator)
    assert context.execute_async_v3(5)
    assert allocator.requests[0] == ("async", 5)
    assert allocator.shapes["y"] == (2, 3)
