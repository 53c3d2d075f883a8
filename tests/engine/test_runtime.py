"""Execution contexts: the TensorRT call sequence, shapes, errors, and concurrency."""

import threading

import numpy as np
import pytest

import engine as trt
from tests.support import CollectingLogger

WEIGHTS = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)


def dynamic_engine(logger=None):
    logger = logger or CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (-1, 4))
    y = network.add_identity(x).get_output(0)
    y.name = "y"
    network.mark_output(y)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 4), (8, 4), (16, 4))
    assert config.add_optimization_profile(profile) == 0
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors() if hasattr(logger, "errors") else None
    return trt.Runtime(logger).deserialize_cuda_engine(plan)


def test_io_queries():
    engine = dynamic_engine()
    assert engine.num_io_tensors == 2
    assert [engine.get_tensor_name(i) for i in range(2)] == ["x", "y"]
    assert engine.get_tensor_mode("x") == trt.TensorIOMode.INPUT
    assert engine.get_tensor_mode("y") == trt.TensorIOMode.OUTPUT
    assert engine.get_tensor_mode("nope") == trt.TensorIOMode.NONE
    assert engine.get_tensor_shape("x") == (-1, 4) and engine.get_tensor_shape("y") == (-1, 4)
    assert engine.get_tensor_dtype("y") == trt.float32
    assert engine.get_tensor_location("x") == trt.TensorLocation.DEVICE
    assert engine.num_optimization_profiles == 1
    assert engine.get_tensor_profile_shape("x", 0) == [(1, 4), (8, 4), (16, 4)]
    assert engine.num_layers == 1


def test_tensorrt_call_sequence_with_pointers():
    engine = dynamic_engine()
    context = engine.create_execution_context()
    assert not context.all_binding_shapes_specified
    assert context.infer_shapes() == ["x"]
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    assert context.set_input_shape("x", x.shape)
    assert context.all_binding_shapes_specified and context.infer_shapes() == []
    assert context.get_tensor_shape("y") == (5, 4)
    y = np.empty(tuple(context.get_tensor_shape("y")), np.float32)
    assert context.set_tensor_address("x", x.ctypes.data)
    assert context.set_tensor_address("y", y.ctypes.data)
    assert context.get_tensor_address("y") == y.ctypes.data
    assert context.execute_async_v3(0)
    np.testing.assert_array_equal(y, x)


def test_execute_v2_takes_bindings_in_io_order():
    engine = dynamic_engine()
    context = engine.create_execution_context()
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    y = np.zeros_like(x)
    context.set_input_shape("x", x.shape)
    assert context.execute_v2([x.ctypes.data, y.ctypes.data])
    np.testing.assert_array_equal(y, x)


def test_shape_outside_profile_is_refused_with_the_range():
    logger = CollectingLogger()
    context = dynamic_engine(logger).create_execution_context()
    assert not context.set_input_shape("x", (17, 4))
    assert "outside optimization profile 0: min (1, 4), max (16, 4)" in logger.errors()[-1]
    assert not context.set_input_shape("x", (2, 5))
    assert "does not match the engine's (-1, 4)" in logger.errors()[-1]
    assert not context.set_input_shape("q", (2, 4))
    assert "not an input" in logger.errors()[-1]


def test_missing_address_is_reported_not_crashed():
    logger = CollectingLogger()
    context = dynamic_engine(logger).create_execution_context()
    context.set_input_shape("x", (2, 4))
    assert not context.execute_async_v3(0)
    assert "no address set" in logger.errors()[-1]


def test_infer_errors_name_the_tensor():
    context = dynamic_engine().create_execution_context()
    with pytest.raises(trt.ExecutionError,
                       match=r"input 'x': dtype float64, the engine expects float32"):
        context.infer({"x": np.zeros((2, 4))})
    with pytest.raises(trt.ExecutionError, match=r"unknown inputs \['z'\]"):
        context.infer({"x": np.zeros((2, 4), np.float32), "z": np.zeros(1)})
    with pytest.raises(trt.ExecutionError, match="input 'x' is missing"):
        context.infer({})
    with pytest.raises(trt.ExecutionError, match="outside optimization profile"):
        context.infer({"x": np.zeros((20, 4), np.float32)})


def test_many_contexts_run_at_once_from_threads():
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (3, 4))
    network.mark_output(network.add_identity(x).get_output(0))
    c = network.add_constant((3, 4), WEIGHTS).get_output(0)
    network.mark_output(c)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(
        builder.build_serialized_network(network, config))
    names = [engine.get_tensor_name(i) for i in range(3)]
    failures = []
    barrier = threading.Barrier(8)

    def worker(seed):
        context = engine.create_execution_context()
        rng = np.random.default_rng(seed)
        barrier.wait()
        for _ in range(50):
            x = rng.standard_normal((3, 4)).astype(np.float32)
            outs = {n: np.empty((3, 4), np.float32) for n in names[1:]}
            context.set_tensor_address("x", x.ctypes.data)
            for n, arr in outs.items():
                context.set_tensor_address(n, arr.ctypes.data)
            if not context.execute_async_v3(0):
                failures.append("execute failed")
            if not (np.array_equal(outs[names[1]], x) and np.array_equal(outs[names[2]], WEIGHTS)):
                failures.append(f"thread {seed}: wrong result")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_device_memory_size_reports_the_activation_arena():
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (64, 64))
    t = x
    for _ in range(4):
        t = network.add_identity(t).get_output(0)
    network.mark_output(t)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(
        builder.build_serialized_network(network, config))
    # three intermediate 16 KiB tensors, at most two alive at once: the arena reuses memory
    assert engine.device_memory_size_v2 == 2 * 64 * 64 * 4
