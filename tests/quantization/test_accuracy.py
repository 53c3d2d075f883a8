"""Accuracy of quantized builds of a CNN trained (at test time, in NumPy) on scikit-learn's
digits: INT8 calibrated and INT8 Q/DQ within 1 point of FP32, INT4 weights and FP8 within 2.

    .venv/bin/python -m pytest -q -s tests/quantization/test_accuracy.py -p no:cacheprovider
"""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from tests.quantization.digits import accuracy, digits, forward, trained_cnn
from tests.quantization.networks import (
    activation_amax,
    build,
    calibrator_for,
    define_cnn,
    forward_conv,
    fp8_cnn,
    int4_weights,
    layer_types,
    per_channel_scale,
    qdq,
    run,
)

CALIBRATORS = [trt.IInt8EntropyCalibrator2, trt.IInt8EntropyCalibrator,
               trt.IInt8MinMaxCalibrator, trt.IInt8LegacyCalibrator]


@pytest.fixture(scope="module")
def fp32() -> float:
    model, data = trained_cnn(), digits()
    engine, _ = build(define_cnn(model))
    logits = run(engine, data.test_x)
    np.testing.assert_allclose(logits, forward(model, data.test_x), rtol=1e-4, atol=1e-4)
    score = accuracy(logits, data.test_y)
    print(f"\nFP32: {score:.2f}% on {len(data.test_y)} test digits")
    assert score > 95
    return score


@pytest.mark.parametrize("base", CALIBRATORS, ids=lambda c: c.__name__)
def test_int8_calibrated_within_one_point(fp32, base):
    model, data = trained_cnn(), digits()
    batches = [np.ascontiguousarray(data.train_x[i:i + 100]) for i in range(0, 1400, 100)]
    calibrator = calibrator_for(base, batches)
    engine, _ = build(define_cnn(model), flags=[trt.BuilderFlag.INT8], calibrator=calibrator)
    types = layer_types(engine)
    # Each with its ReLU; the first also with the second's input quantization.
    assert types.count("FUSED_QUANTIZED_CONVOLUTION") == 2
    assert types.count("QUANTIZED_MATRIX_MULTIPLY") == 1
    assert calibrator.batches_given == 14 and calibrator.written.startswith(b"TRT-")
    logits = run(engine, data.test_x)
    assert not np.allclose(logits, forward(model, data.test_x), atol=1e-4)  # really quantized
    score = accuracy(logits, data.test_y)
    print(f"\nINT8 calibrated ({base.__name__}): {score:.2f}% (FP32 {fp32:.2f}%)")
    assert score >= fp32 - 1


def int8_qdq_network(model):
    amax = iter(activation_amax())

    def activation(net, x):
        return qdq(net, x, np.float32(next(amax) / 127), trt.int8)

    def weights(net, w, kind):
        axis = 0 if kind == "conv" else 1
        c = net.add_constant(w.shape, trt.Weights(w)).get_output(0)
        return qdq(net, c, per_channel_scale(w, axis, 127), trt.int8, axis=axis)

    return define_cnn(model, activation, weights)


def test_int8_qdq_within_one_point_and_equal_to_numpy_fake_quantization(fp32):
    model, data = trained_cnn(), digits()
    engine, _ = build(int8_qdq_network(model))
    types = layer_types(engine)
    assert "CONVOLUTION" not in types and "MATRIX_MULTIPLY" not in types
    assert "DEQUANTIZE" not in types  # every dequantize was folded into a quantized layer
    logits = run(engine, data.test_x)

    def fake(x, scale):
        return np.clip(np.rint(x / scale), -128, 127) * scale

    sx, s1, s2 = (a / 127 for a in activation_amax())
    ws = [per_channel_scale(w, a, 127) for w, a in ((model.w1, 0), (model.w2, 0), (model.w3, 1))]
    w1 = fake(model.w1, ws[0][:, None, None, None])
    w2 = fake(model.w2, ws[1][:, None, None, None])
    w3 = fake(model.w3, ws[2][None, :])
    h1 = np.maximum(forward_conv(fake(data.test_x, sx), w1, model.b1, 1), 0)
    h2 = np.maximum(forward_conv(fake(h1, s1), w2, model.b2, 2), 0)
    expected = fake(h2.reshape(len(h2), -1), s2) @ w3 + model.b3
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    score = accuracy(logits, data.test_y)
    print(f"\nINT8 Q/DQ: {score:.2f}% (FP32 {fp32:.2f}%)")
    assert score >= fp32 - 1


def test_int4_block_weights_within_two_points(fp32):
    model, data = trained_cnn(), digits()
    engine, _ = build(define_cnn(model, None, int4_weights), flags=[trt.BuilderFlag.INT4])
    types = layer_types(engine)
    assert types.count("QUANTIZED_CONVOLUTION") == 2
    assert types.count("QUANTIZED_MATRIX_MULTIPLY") == 1
    score = accuracy(run(engine, data.test_x), data.test_y)
    print(f"\nINT4 weights (per channel / blocks of 32): {score:.2f}% (FP32 {fp32:.2f}%)")
    assert score >= fp32 - 2


def test_fp8_qdq_within_two_points(fp32):
    model, data = trained_cnn(), digits()
    engine, _ = build(fp8_cnn(model), flags=[trt.BuilderFlag.FP8])
    types = layer_types(engine)
    # Both convolutions on FP8 codes with their ReLU fused (the first also with the second
    # one's FP8 quantization).
    assert types.count("FUSED_QUANTIZED_CONVOLUTION") == 2
    logits = run(engine, data.test_x)
    assert not np.allclose(logits, forward(model, data.test_x), atol=1e-4)
    score = accuracy(logits, data.test_y)
    print(f"\nFP8 Q/DQ: {score:.2f}% (FP32 {fp32:.2f}%)")
    assert score >= fp32 - 2
