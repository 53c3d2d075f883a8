"""Tactic timing and the timing cache: the fastest tactic wins, a second build hits the cache."""

import time

import numpy as np
import pytest

import engine as trt
from engine.kernels.registry import kernel, unregister
from tests.support import CollectingLogger


@pytest.fixture
def slow_identity_tactic():
    """A second, slower identity tactic on the CPU, registered for the test only."""

    @kernel(trt.LayerType.IDENTITY, backend="cpu", name="cpu.identity_slow_for_test")
    def slow(layer, inputs):
        time.sleep(0.002)
        return [inputs[0].copy()]

    yield "cpu.identity_slow_for_test"
    unregister("cpu", trt.LayerType.IDENTITY, "cpu.identity_slow_for_test")


def build(config_hook=None):
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (4, 4))
    y = network.add_identity(network.add_identity(x).get_output(0)).get_output(0)
    network.mark_output(y)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    if config_hook:
        config_hook(config)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors()
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    timing = [m for _, m in logger.messages if m.startswith("tactic timing")]
    return engine, timing[0]


def test_fastest_tactic_is_chosen(slow_identity_tactic):
    engine, timing = build()
    assert [t for _, _, t in engine.layer_tactics] == ["cpu.identity", "cpu.identity"]
    assert timing.startswith("tactic timing: 1 layers timed, 1 taken from the timing cache")


def test_optimization_level_zero_takes_the_first_without_timing(slow_identity_tactic):
    def level0(config):
        config.builder_optimization_level = 0

    _, timing = build(level0)
    assert timing.startswith("tactic timing: 0 layers timed, 0 taken")


def test_second_build_hits_the_serialized_cache(slow_identity_tactic):
    cache_bytes = {}

    def first(config):
        cache = config.create_timing_cache(b"")
        assert config.set_timing_cache(cache, ignore_mismatch=False)
        cache_bytes["data"] = cache

    build(first)
    data = cache_bytes["data"].serialize()
    assert len(cache_bytes["data"]) == 1

    def second(config):
        assert config.set_timing_cache(config.create_timing_cache(data), ignore_mismatch=False)
        config.set_flag(trt.BuilderFlag.ERROR_ON_TIMING_CACHE_MISS)

    engine, timing = build(second)
    assert timing.startswith("tactic timing: 0 layers timed, 2 taken from the timing cache")
    x = np.ones((4, 4), np.float32)
    np.testing.assert_array_equal(engine.create_execution_context().infer({"x": x})[
        engine.get_tensor_name(1)], x)


def test_cache_miss_is_an_error_when_asked(slow_identity_tactic):
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    network.mark_output(network.add_identity(network.add_input("x", trt.float32, (2,)))
                        .get_output(0))
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    config.set_flag(trt.BuilderFlag.ERROR_ON_TIMING_CACHE_MISS)
    assert builder.build_serialized_network(network, config) is None
    assert "timing cache miss" in logger.errors()[0]


def test_cache_from_another_device_is_refused_unless_ignored():
    config = trt.Builder(trt.Logger()).create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    other = trt.ITimingCache(b'{"format":"pytrt-timing-cache","version":1,'
                             b'"device":"gpu:H100:9.0","entries":{}}')
    assert not config.set_timing_cache(other, ignore_mismatch=False)
    assert config.set_timing_cache(other, ignore_mismatch=True)


def test_combine_and_reset():
    a = trt.ITimingCache(b'{"format":"pytrt-timing-cache","version":1,"device":"cpu:x",'
                         b'"entries":{"k1":{"tactic":"t","ms":1.0}}}')
    b = trt.ITimingCache(b'{"format":"pytrt-timing-cache","version":1,"device":"cpu:x",'
                         b'"entries":{"k2":{"tactic":"u","ms":2.0}}}')
    assert a.combine(b, ignore_mismatch=False) and len(a) == 2
    assert a.reset() and len(a) == 0


def test_malformed_cache_is_refused():
    with pytest.raises(trt.BuildError, match="invalid serialized timing cache"):
        trt.ITimingCache(b"\x80\x04pickle?")


def _weakly_typed_fp16_build(config_hook):
    """A weakly typed network built with FP16 allowed: precision selection times each
    layer at FLOAT and HALF (and the casts between them) before tactic selection."""
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    rng = np.random.default_rng(0)
    x = network.add_input("x", trt.float32, (1, 8, 12, 12))
    conv = network.add_convolution_nd(x, 8, (3, 3), rng.standard_normal((8, 8, 3, 3)).astype(
        np.float32), rng.standard_normal(8).astype(np.float32))
    conv.padding_nd = (1, 1)
    relu = network.add_activation(conv.get_output(0), trt.ActivationType.RELU)
    pool = network.add_pooling_nd(relu.get_output(0), trt.PoolingType.MAX, (2, 2))
    network.mark_output(pool.get_output(0))
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    config.set_flag(trt.BuilderFlag.FP16)
    config_hook(config)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors()
    return [m for _, m in logger.messages if m.startswith("tactic timing")][0]


def test_precision_selection_times_through_the_cache(monkeypatch):
    """A cold build times each layer and precision once (tactic selection finds what
    precision selection timed); a rebuild from its cache times nothing at all."""
    from engine.builder import build as build_module

    cache = {}

    def cold(config):
        cache["cache"] = config.create_timing_cache(b"")
        assert config.set_timing_cache(cache["cache"], ignore_mismatch=False)

    timing = _weakly_typed_fp16_build(cold)
    timed = int(timing.split()[2])
    assert timed > 0 and "0 taken from the timing cache" not in timing, timing
    data = cache["cache"].serialize()

    def no_timing(*args, **kwargs):
        raise AssertionError("a build from a warm timing cache timed a layer")

    monkeypatch.setattr(build_module._TacticChooser, "time", no_timing)

    def warm(config):
        assert config.set_timing_cache(config.create_timing_cache(data), ignore_mismatch=False)

    timing = _weakly_typed_fp16_build(warm)
    assert timing.startswith("tactic timing: 0 layers timed"), timing


def test_every_tactic_source_is_on_by_default_and_can_be_turned_off():
    """A default configuration offers every tactic source to timing; set_tactic_sources
    narrows the set, and a build then uses only what is left."""
    config = trt.Builder(trt.Logger()).create_builder_config()
    sources = config.get_tactic_sources()
    assert all(sources >> int(s) & 1 for s in trt.TacticSource)
    assert config.set_tactic_sources(sources & ~(1 << int(trt.TacticSource.JIT_CONVOLUTIONS)))
    assert not config.get_tactic_sources() >> int(trt.TacticSource.JIT_CONVOLUTIONS) & 1
    assert config.get_tactic_sources() >> int(trt.TacticSource.CUBLAS_LT) & 1
