"""Builder and builder configuration: flags, profiles, and failures with their reasons."""

import numpy as np
import pytest

import engine as trt
from engine.builder.config import UNIMPLEMENTED_FLAGS
from tests.support import CollectingLogger


def simple_network(builder, shape=(2, 3)):
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, shape)
    network.mark_output(network.add_identity(x).get_output(0))
    return network


def cpu_config(builder):
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    return config


def test_defaults_follow_tensorrt():
    config = trt.Builder(trt.Logger()).create_builder_config()
    assert config.get_flag(trt.BuilderFlag.TF32)
    assert not config.get_flag(trt.BuilderFlag.FP16)
    assert config.avg_timing_iterations == 1
    assert config.builder_optimization_level == 3
    assert config.profiling_verbosity == trt.ProfilingVerbosity.LAYER_NAMES_ONLY
    assert config.default_device_type == trt.DeviceType.CPU  # no GPU on this machine


def test_flags_set_and_clear():
    config = trt.Builder(trt.Logger()).create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    assert config.get_flag(trt.BuilderFlag.FP16)
    assert config.flags & (1 << int(trt.BuilderFlag.FP16))
    config.clear_flag(trt.BuilderFlag.FP16)
    assert not config.get_flag(trt.BuilderFlag.FP16)


@pytest.mark.parametrize("flag", sorted(UNIMPLEMENTED_FLAGS))
def test_unimplemented_flags_are_refused_not_ignored(flag):
    config = trt.Builder(trt.Logger()).create_builder_config()
    with pytest.raises(trt.UnsupportedError, match=f"BuilderFlag.{flag.name} is not implemented"):
        config.set_flag(flag)
    assert not config.get_flag(flag)


def test_every_tensorrt_builder_flag_exists():
    names = {"FP16", "BF16", "INT8", "FP8", "INT4", "DEBUG", "GPU_FALLBACK", "REFIT",
             "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS", "SAFETY_SCOPE",
             "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
             "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME",
             "ERROR_ON_TIMING_CACHE_MISS", "DISABLE_COMPILATION_CACHE", "WEIGHTLESS",
             "STRIP_PLAN", "REFIT_IDENTICAL", "WEIGHT_STREAMING", "REFIT_INDIVIDUAL",
             "STRICT_NANS", "MONITOR_MEMORY"}
    assert names <= set(trt.BuilderFlag.__members__)


def test_memory_pool_limit():
    config = trt.Builder(trt.Logger()).create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 20)
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 1 << 20
    with pytest.raises(ValueError):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, -1)


def test_no_outputs_fails_with_the_reason_logged():
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    network.add_input("x", trt.float32, (1,))
    assert builder.build_serialized_network(network, cpu_config(builder)) is None
    assert "network has no outputs" in logger.errors()[0]
    assert not builder.is_network_supported(network, cpu_config(builder))


def test_dynamic_input_without_profile_names_the_input():
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = simple_network(builder, (-1, 3))
    assert builder.build_serialized_network(network, cpu_config(builder)) is None
    message = logger.errors()[0]
    assert "'x' (-1, 3)" in message and "create_optimization_profile" in message


def test_profile_that_does_not_fit_the_input_is_refused():
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = simple_network(builder, (-1, 3))
    config = cpu_config(builder)
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 4), (2, 4), (3, 4))
    config.add_optimization_profile(profile)
    assert builder.build_serialized_network(network, config) is None
    assert "does not fit the declared shape (-1, 3)" in logger.errors()[0]


def test_profile_ordering_is_checked():
    profile = trt.Builder(trt.Logger()).create_optimization_profile()
    with pytest.raises(ValueError, match="min <= opt <= max"):
        profile.set_shape("x", (4, 3), (2, 3), (8, 3))
    config = trt.Builder(trt.Logger()).create_builder_config()
    assert config.add_optimization_profile(profile) == -1  # empty: invalid


def test_gpu_target_without_a_gpu_fails_clearly():
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.GPU
    assert builder.build_serialized_network(simple_network(builder), config) is None
    assert "no CUDA device" in logger.errors()[0]


def test_dead_layers_are_not_in_the_engine():
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (2,))
    network.add_identity(x)  # unused
    network.add_constant((2,), np.ones(2, np.float32))  # unused
    network.mark_output(network.add_identity(x).get_output(0))
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(
        builder.build_serialized_network(network, cpu_config(builder)))
    assert engine.num_layers == 1


def test_building_does_not_modify_the_network():
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (2,))
    network.add_identity(x)
    network.mark_output(network.add_identity(x).get_output(0))
    assert builder.build_serialized_network(network, cpu_config(builder)) is not None
    assert network.num_layers == 2
