"""Implicit INT8: calibrators, the calibration cache, ranges set by the user, and the rules on
which layers run in INT8; against NumPy written here."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from engine.quantization import read_calibration_cache, write_calibration_cache
from engine.quantization.ranges import HISTOGRAM_BINS, entropy_amax, quantile_amax
from tests.quantization.networks import calibrator_for
from tests.support import CollectingLogger

RNG = np.random.default_rng(3)
W = RNG.standard_normal((16, 4)).astype(np.float32)
BATCHES = [RNG.standard_normal((8, 16)).astype(np.float32) * (i + 1) for i in range(4)]


def fake_quantize(x, scale):
    return np.clip(np.rint(x / scale), -128, 127) * scale


def expected_int8(x, amax):
    """What implicit INT8 computes: the input at amax / 127, the weights per output column."""
    w_scale = np.abs(W).max(axis=0) / 127
    w_codes = np.clip(np.rint(W / w_scale), -127, 127)
    return fake_quantize(x, np.float32(amax / 127)) @ (w_codes * w_scale)


def build(calibrator=None, dynamic_range=None, flags=(trt.BuilderFlag.INT8,), precision=None,
          explicit=False):
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    x = net.add_input("x", trt.float32, (8, 16))
    if dynamic_range is not None:
        assert x.set_dynamic_range(-dynamic_range, dynamic_range)
    source = x
    if explicit:
        s = net.add_constant((), trt.Weights(np.array(0.05, np.float32))).get_output(0)
        q = net.add_quantize(x, s, trt.int8).get_output(0)
        source = net.add_dequantize(q, s, trt.float32).get_output(0)
    w = net.add_constant(W.shape, trt.Weights(W)).get_output(0)
    mm = net.add_matrix_multiply(source, trt.MatrixOperation.NONE, w, trt.MatrixOperation.NONE)
    mm.name = "mm"
    if precision is not None:
        mm.precision = precision
    out = mm.get_output(0)
    out.name = "y"
    net.mark_output(out)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    for flag in flags:
        config.set_flag(flag)
    config.int8_calibrator = calibrator
    plan = builder.build_serialized_network(net, config)
    assert plan is not None, logger.errors()
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    types = [layer.layer_type.name for layer in engine._network._layers]
    return engine, types, logger


def infer(engine, x):
    return engine.create_execution_context().infer({"x": x})["y"]


def test_cache_text_is_tensorrts_format():
    text = write_calibration_cache(trt.CalibrationAlgoType.ENTROPY_CALIBRATION_2,
                                   {"x": 0.5, "conv 1: out": 1.0})
    header, first, second = text.decode().splitlines()
    assert header.startswith("TRT-") and header.endswith("-EntropyCalibration2")
    assert first == "x: 3f000000" and second == "conv 1: out: 3f800000"
    assert read_calibration_cache(text) == (trt.CalibrationAlgoType.ENTROPY_CALIBRATION_2,
                                            {"x": 0.5, "conv 1: out": 1.0})


@pytest.mark.parametrize("text,match", [
    (b"x: 3f000000\n", "header"),
    (b"TRT-0100-Guesswork\nx: 3f000000\n", "unknown algorithm"),
    (b"TRT-0100-MinMaxCalibration\nx: 3f00\n", "line 2"),
    (b"TRT-0100-MinMaxCalibration\nx: zzzzzzzz\n", "not hexadecimal"),
])
def test_malformed_cache_is_refused_saying_why(text, match):
    with pytest.raises(trt.BuildError, match=match):
        read_calibration_cache(text)


def test_minmax_calibration_scales_the_input_by_its_largest_magnitude():
    calibrator = calibrator_for(trt.IInt8MinMaxCalibrator, BATCHES)
    engine, types, _ = build(calibrator)
    assert "QUANTIZED_MATRIX_MULTIPLY" in types and "MATRIX_MULTIPLY" not in types
    algorithm, scales = read_calibration_cache(calibrator.written)
    assert algorithm == trt.CalibrationAlgoType.MINMAX_CALIBRATION
    amax = max(float(np.abs(b).max()) for b in BATCHES)
    assert scales["x"] == pytest.approx(amax / 127, rel=1e-6)
    x = BATCHES[0]
    np.testing.assert_allclose(infer(engine, x), expected_int8(x, amax), rtol=1e-5, atol=1e-5)


def test_cache_is_reused_across_builds_without_batches():
    first = calibrator_for(trt.IInt8EntropyCalibrator2, BATCHES)
    engine1, _, _ = build(first)
    again = calibrator_for(trt.IInt8EntropyCalibrator2, [], cache=first.written)
    engine2, types, logger = build(again)
    assert again.batches_given == 0 and "QUANTIZED_MATRIX_MULTIPLY" in types
    assert any("read from the calibration cache" in m for _, m in logger.messages)
    np.testing.assert_array_equal(infer(engine1, BATCHES[1]), infer(engine2, BATCHES[1]))


def test_cache_of_another_algorithm_is_recalibrated():
    minmax = calibrator_for(trt.IInt8MinMaxCalibrator, BATCHES)
    build(minmax)
    legacy = calibrator_for(trt.IInt8LegacyCalibrator, BATCHES, cache=minmax.written)
    _, _, logger = build(legacy)
    assert legacy.batches_given == len(BATCHES)
    assert read_calibration_cache(legacy.written)[0] == trt.CalibrationAlgoType.LEGACY_CALIBRATION
    assert any("calibrating again" in m for _, m in logger.messages)


def test_set_dynamic_range_is_used_and_overrides_calibration():
    calibrator = calibrator_for(trt.IInt8MinMaxCalibrator, BATCHES)
    engine, types, _ = build(calibrator, dynamic_range=2.0)
    assert "QUANTIZED_MATRIX_MULTIPLY" in types and calibrator.batches_given == 0
    x = BATCHES[2]
    np.testing.assert_allclose(infer(engine, x), expected_int8(x, 2.0), rtol=1e-5, atol=1e-5)


def test_without_range_or_calibrator_the_layer_stays_fp32_with_a_warning():
    engine, types, logger = build()
    assert "MATRIX_MULTIPLY" in types and "QUANTIZED_MATRIX_MULTIPLY" not in types
    assert any(s == trt.Logger.WARNING and "no dynamic range" in m and "'mm'" in m
               for s, m in logger.messages)
    np.testing.assert_allclose(infer(engine, BATCHES[0]), BATCHES[0] @ W, rtol=1e-5)


def test_a_layer_with_fp32_precision_stays_fp32():
    engine, types, _ = build(dynamic_range=2.0, precision=trt.float32)
    assert "QUANTIZED_MATRIX_MULTIPLY" not in types


def test_explicit_qdq_networks_ignore_the_calibrator():
    calibrator = calibrator_for(trt.IInt8EntropyCalibrator2, BATCHES)
    engine, types, _ = build(calibrator, explicit=True)
    # Explicit mode: only what the Q/DQ layers say is quantized (here the input, not the
    # weights), and the calibrator is never asked for batches.
    assert calibrator.batches_given == 0
    assert types == ["CONSTANT", "QUANTIZE", "DEQUANTIZE", "CONSTANT", "MATRIX_MULTIPLY"]
    x = BATCHES[0]
    np.testing.assert_allclose(infer(engine, x), fake_quantize(x, np.float32(0.05)) @ W,
                               rtol=1e-5, atol=1e-5)


def test_without_int8_flag_ranges_change_nothing():
    engine, types, _ = build(dynamic_range=2.0, flags=())
    assert "QUANTIZED_MATRIX_MULTIPLY" not in types


def test_quantization_flags_are_accepted_and_fp4_is_still_refused():
    config = trt.Builder(trt.Logger()).create_builder_config()
    for flag in (trt.BuilderFlag.INT8, trt.BuilderFlag.FP8, trt.BuilderFlag.INT4):
        config.set_flag(flag)
        assert config.get_flag(flag)
    with pytest.raises(trt.UnsupportedError, match="FP4"):
        config.set_flag(trt.BuilderFlag.FP4)


def test_calibrator_interfaces():
    assert [trt.CalibrationAlgoType(v).name for v in range(4)] == [
        "LEGACY_CALIBRATION", "ENTROPY_CALIBRATION", "ENTROPY_CALIBRATION_2",
        "MINMAX_CALIBRATION"]
    legacy = calibrator_for(trt.IInt8LegacyCalibrator, BATCHES)
    legacy.quantile = 0.99
    assert legacy.get_quantile() == 0.99 and legacy.get_regression_cutoff() == 1.0
    assert calibrator_for(trt.IInt8EntropyCalibrator, BATCHES).get_algorithm() == \
        trt.CalibrationAlgoType.ENTROPY_CALIBRATION
    with pytest.raises(NotImplementedError):
        trt.IInt8Calibrator().get_batch(["x"])


def test_calibrator_giving_no_batches_fails_the_build_clearly():
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    x = net.add_input("x", trt.float32, (8, 16))
    w = net.add_constant(W.shape, trt.Weights(W)).get_output(0)
    net.mark_output(net.add_matrix_multiply(x, trt.MatrixOperation.NONE, w,
                                            trt.MatrixOperation.NONE).get_output(0))
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    config.set_flag(trt.BuilderFlag.INT8)
    config.int8_calibrator = calibrator_for(trt.IInt8MinMaxCalibrator, [])
    assert builder.build_serialized_network(net, config) is None
    assert any("gave no batches" in m for m in logger.errors())


def test_entropy_threshold_clips_rare_outliers_and_quantile_finds_the_median():
    values = np.abs(np.concatenate([RNG.standard_normal(200_000), [60.0, -55.0, 58.0]]))
    amax = float(values.max())
    hist, _ = np.histogram(values, bins=HISTOGRAM_BINS, range=(0, amax))
    threshold = entropy_amax(hist, amax)
    assert 2.5 < threshold < 12  # well inside the range, covering the Gaussian's body
    width = amax / HISTOGRAM_BINS
    assert abs(quantile_amax(hist, amax, 0.5) - np.median(values)) <= 2 * width
