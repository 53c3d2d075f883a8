"""The quantized convolution with its epilogue (residual add, activation) and the next layer's
INT8 quantization in one layer: where the builder fuses it, where it must not, and its
outputs against the same network built without passes (Q/DQ run as written)."""

from __future__ import annotations

import json
from collections import Counter

import ml_dtypes
import numpy as np
import pytest

import engine as trt
from engine.builder import pipeline
from engine.builder.passes.quantize_fuse_epilogue import fuse_quantized_convolution_epilogue
from engine.kernels.cpu.shape_quantize import quantize
from engine.kernels.registry import tactics_for
from engine.network.layer import LayerType
from engine.network.layers.quantized import (
    IFusedQuantizedConvolutionLayer,
    IQuantizedConvolutionLayer,
    codes_as_weights,
)
from tests.quantization.networks import constant, per_channel_scale, qdq
from tests.support import build_engine

RNG = np.random.default_rng(11)
X = RNG.standard_normal((2, 8, 9, 9)).astype(np.float32)
R = RNG.standard_normal((2, 8, 9, 9)).astype(np.float32)
W1 = (RNG.standard_normal((8, 8, 3, 3)) * 0.2).astype(np.float32)
B1 = (RNG.standard_normal(8) * 0.1).astype(np.float32)
W2 = (RNG.standard_normal((4, 8, 3, 3)) * 0.2).astype(np.float32)
B2 = (RNG.standard_normal(4) * 0.1).astype(np.float32)
SX, SA, SR = np.float32(0.03), np.float32(0.05), np.float32(0.02)


LARGEST = {trt.int8: 127, trt.fp8: 448}


def quantized_conv(net, x_dq, w, b, code=trt.int8):
    """A convolution of a dequantized input with per-channel Q/DQ weights (3x3, padding 1)."""
    conv = net.add_convolution_nd(x_dq, w.shape[0], (3, 3), trt.Weights(), trt.Weights(b))
    conv.set_input(1, qdq(net, constant(net, w), per_channel_scale(w, 0, LARGEST[code]), code,
                          axis=0))
    conv.padding_nd = (1, 1)
    return conv.get_output(0)


def residual_block(*, residual="input", a_scale=SA, a_axis=-1, a_is_output=False,
                   code=trt.int8):
    """x -> Q/DQ -> conv1 -> + residual -> ReLU (a) -> Q/DQ (a_dq) -> conv2 (y), every Q/DQ
    to ``code`` (INT8, or FP8 with the scales spread over 448 instead of 127).

    Outputs ``y`` and ``a_dq`` (the codes the next convolution reads, times their scale),
    and ``a`` itself when ``a_is_output``. ``residual``: "input" (same shape), "quantized"
    (the input through Q/DQ) or "broadcast" (a per-channel constant)."""
    spread = np.float32(127 / LARGEST[code])

    def define(net, t):
        h = quantized_conv(net, qdq(net, t["x"], SX * spread, code), W1, B1, code)
        other = {"input": lambda: t["r"],
                 "quantized": lambda: qdq(net, t["r"], SR * spread, code),
                 "broadcast": lambda: constant(net, R[:1, :, :1, :1])}[residual]()
        s = net.add_elementwise(h, other, trt.ElementWiseOperation.SUM).get_output(0)
        a = net.add_activation(s, trt.ActivationType.RELU).get_output(0)
        a_dq = qdq(net, a, a_scale * spread, code, axis=a_axis)
        return [quantized_conv(net, a_dq, W2, B2, code), a_dq] + ([a] if a_is_output else [])
    return define


def build(define, inputs, monkeypatch, passes="all", **kwargs):
    """The CPU engine: with every pass, without the new one ("before"), or without any."""
    with monkeypatch.context() as patch:
        if passes == "before":
            patch.setattr(pipeline, "PASSES", [p for p in pipeline.PASSES
                                               if p is not fuse_quantized_convolution_epilogue])
        elif passes == "none":
            patch.setattr(pipeline, "PASSES", [])
        return build_engine(define, inputs, **kwargs)


def run(engine, inputs):
    return engine.create_execution_context().infer(dict(inputs))


def fused_layers(engine):
    return [la for la in engine._network._layers
            if la.layer_type == LayerType.FUSED_QUANTIZED_CONVOLUTION]


def kinds(engine):
    return Counter(la.layer_type.name for la in engine._network._layers
                   if la.layer_type != LayerType.CONSTANT)


def assert_within_one_step(got, want, scale, most_differing=0.01):
    """Codes (times ``scale``) equal but for a few one-step differences: the fused layer
    quantizes its float32 result, the plain network the result rounded through its layers."""
    steps = np.rint((got.astype(np.float64) - want.astype(np.float64)) / scale)
    assert np.abs(steps).max() <= 1
    assert np.count_nonzero(steps) <= most_differing * steps.size


# -- where the pass fires ----------------------------------------------------------------------
def test_residual_relu_and_next_quantization_fuse_into_the_convolution(monkeypatch):
    inputs = {"x": X, "r": R}
    engine = build(residual_block(), inputs, monkeypatch)
    assert kinds(engine) == Counter({"QUANTIZE": 1, "FUSED_QUANTIZED_CONVOLUTION": 1,
                                     "QUANTIZED_CONVOLUTION": 1, "DEQUANTIZE": 1})
    (fused,) = fused_layers(engine)
    assert len(fused.name.split(" + ")) == 4  # conv, add, relu, quantize
    assert fused.activation == trt.ActivationType.RELU and fused.output_scale == float(SA)
    assert fused._inputs[1].name == "r" and fused._outputs[0].dtype == trt.int8

    got = run(engine, inputs)
    before = run(build(residual_block(), inputs, monkeypatch, passes="before"), inputs)
    plain = run(build(residual_block(), inputs, monkeypatch, passes="none"), inputs)
    # Against the codes quantized from the unfused float32 layers: here equal, as the float32
    # epilogue rounds like the separate layers but for the product's last bit.
    assert_within_one_step(got["out1"], before["out1"], SA, most_differing=0.0)
    np.testing.assert_array_equal(got["out0"], before["out0"])
    # Against the Q/DQ network run as written (a float32 convolution of dequantized values):
    # equal codes but where its float sums round across a half step.
    assert_within_one_step(got["out1"], plain["out1"], SA)
    np.testing.assert_allclose(got["out0"], plain["out0"], rtol=1e-3, atol=1e-3)


def test_a_quantized_residual_is_read_as_int8_codes(monkeypatch):
    """A residual branch through Q/DQ: the fused layer reads the codes and their scale (no
    dequantize layer left for it), and adds what the dequantize layer would have given."""
    inputs = {"x": X, "r": R}
    define = residual_block(residual="quantized")
    engine = build(define, inputs, monkeypatch)
    assert kinds(engine) == Counter({"QUANTIZE": 2, "FUSED_QUANTIZED_CONVOLUTION": 1,
                                     "QUANTIZED_CONVOLUTION": 1, "DEQUANTIZE": 1})
    (fused,) = fused_layers(engine)
    assert fused.residual_scale == float(SR) and fused.output_scale == float(SA)
    assert fused._inputs[1].dtype == trt.int8 and len(fused.name.split(" + ")) == 4

    got = run(engine, inputs)
    before = run(build(define, inputs, monkeypatch, passes="before"), inputs)
    np.testing.assert_array_equal(got["out0"], before["out0"])
    assert_within_one_step(got["out1"], before["out1"], SA, most_differing=0.0)
    again = trt.Runtime(trt.Logger()).deserialize_cuda_engine(engine.serialize())
    assert fused_layers(again)[0].residual_scale == float(SR)


def test_an_fp8_block_fuses_reading_and_writing_fp8_codes(monkeypatch):
    """The same block in FP8 Q/DQ: one fused layer reads the FP8 residual codes and writes
    the next layer's FP8 codes (``output_codes``), as the separate layers would, but for a
    few codes one FP8 step away (the fused float32 epilogue rounds once)."""
    inputs = {"x": X, "r": R}
    define = residual_block(residual="quantized", code=trt.fp8)
    engine = build(define, inputs, monkeypatch)
    assert kinds(engine) == Counter({"QUANTIZE": 2, "FUSED_QUANTIZED_CONVOLUTION": 1,
                                     "QUANTIZED_CONVOLUTION": 1, "DEQUANTIZE": 1})
    (fused,) = fused_layers(engine)
    assert fused.output_codes == trt.fp8 and fused._outputs[0].dtype == trt.fp8
    assert fused._inputs[1].dtype == trt.fp8 and fused.residual_scale > 0

    got = run(engine, inputs)
    before = run(build(define, inputs, monkeypatch, passes="before"), inputs)
    scale = np.float32(SA * 127 / 448)
    codes = [(o["out1"] / scale).astype(ml_dtypes.float8_e4m3fn).view(np.uint8).astype(int)
             for o in (got, before)]
    steps = np.abs(codes[0] - codes[1])  # ReLU'd: non-negative codes, ordered as patterns
    assert steps.max() <= 1 and np.count_nonzero(steps) <= 0.01 * steps.size
    np.testing.assert_allclose(got["out0"], before["out0"], rtol=0.15, atol=0.05)
    again = trt.Runtime(trt.Logger()).deserialize_cuda_engine(engine.serialize())
    assert fused_layers(again)[0].output_codes == trt.fp8


def quantized_resnet(monkeypatch, passes, residuals, size):
    """benchmarks/quantization_bench.py's quantized ResNet-50 at batch 1 on the CPU target
    (scales 16/127; residual inputs through Q/DQ too with ``residuals``), built with every
    pass ("all") or without the epilogue pass ("before")."""
    from benchmarks.quantization_bench import ResNetBuilder

    with monkeypatch.context() as patch:
        if passes == "before":
            patch.setattr(pipeline, "PASSES", [
                p for p in pipeline.PASSES if p is not fuse_quantized_convolution_epilogue])
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(
            1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        scales = [16 / 127] * (53 + (16 if residuals else 0))
        ResNetBuilder(network, quantized=True, scales=scales,
                      quantize_residuals=residuals).define(1, size)
        config = builder.create_builder_config()
        config.default_device_type = trt.DeviceType.CPU
        plan = builder.build_serialized_network(network, config)
        return trt.Runtime(logger).deserialize_cuda_engine(plan)


def test_resnet_blocks_fuse_and_requantize_only_where_the_result_stays_int8(monkeypatch):
    """benchmarks/quantization_bench.py's ResNet-50 layout, strongly typed in HALF: 53
    convolutions, 4 of them shortcuts read as the residual of the block's last one."""
    engine = quantized_resnet(monkeypatch, "all", residuals=False, size=96)
    before = quantized_resnet(monkeypatch, "before", residuals=False, size=96)
    fused = fused_layers(engine)
    # Per block: conv1 and conv2 with their ReLU and the next convolution's quantization;
    # conv3 with the residual and ReLU, requantized only at the end of stages 1-3 (both
    # readers quantize: the next stage's shortcut and conv1), float where the next block
    # reads it as its residual too. The stem writes INT8 too: the pooling output's quantize
    # layer moves ahead of the max pooling (quantize_through_max_pool).
    assert len(fused) == 49
    assert sum(la.output_scale > 0 for la in fused) == 2 * 16 + 3 + 1
    assert sum(len(la._inputs) == 2 for la in fused) == 16
    kept = kinds(engine)
    # quantize layers: the input and the 12 block outputs that are also the next block's
    # residual
    assert kept["QUANTIZED_CONVOLUTION"] == 4 and kept["QUANTIZE"] == 13
    assert "ACTIVATION" not in kept and "ELEMENTWISE" not in kept
    assert engine.get_tensor_dtype("y") == before.get_tensor_dtype("y") == trt.float16

    x = np.random.default_rng(1).standard_normal((1, 3, 96, 96)).astype(np.float16)
    got = run(engine, {"x": x})["y"].astype(np.float64)
    want = run(before, {"x": x})["y"].astype(np.float64)
    # The unfused network rounds every epilogue step to HALF before quantizing, the fused
    # one quantizes its float32 result: codes a step apart, through 53 layers.
    assert np.linalg.norm(got - want) <= 2e-2 * np.linalg.norm(want)


# -- where it must not -------------------------------------------------------------------------
def test_a_per_channel_quantize_is_not_absorbed(monkeypatch):
    scale = np.linspace(0.03, 0.06, 8).astype(np.float32)
    inputs = {"x": X, "r": R}
    define = residual_block(a_scale=scale, a_axis=1)
    engine = build(define, inputs, monkeypatch)
    (fused,) = fused_layers(engine)
    assert fused.output_scale == 0.0 and len(fused._inputs) == 2
    assert fused._outputs[0].dtype == trt.float32 and kinds(engine)["QUANTIZE"] == 2
    got, plain = run(engine, inputs), run(build(define, inputs, monkeypatch, "none"), inputs)
    np.testing.assert_allclose(got["out1"], plain["out1"], rtol=1e-5, atol=1e-5)


def test_a_second_reader_of_the_float_result_keeps_it_float(monkeypatch):
    inputs = {"x": X, "r": R}
    define = residual_block(a_is_output=True)
    engine = build(define, inputs, monkeypatch)
    (fused,) = fused_layers(engine)
    assert fused.output_scale == 0.0 and fused.activation == trt.ActivationType.RELU
    assert len(fused._inputs) == 2 and kinds(engine)["QUANTIZE"] == 2
    plain = build(define, inputs, monkeypatch, "none")
    for name in ("out0", "out1", "out2"):
        assert engine.get_tensor_dtype(name) == plain.get_tensor_dtype(name)
    got, want = run(engine, inputs), run(plain, inputs)
    np.testing.assert_allclose(got["out2"], want["out2"], rtol=1e-5, atol=1e-5)
    assert_within_one_step(got["out1"], want["out1"], SA)


def test_a_broadcast_sum_is_not_taken_as_a_residual(monkeypatch):
    engine = build(residual_block(residual="broadcast"), {"x": X}, monkeypatch)
    assert not fused_layers(engine)
    assert kinds(engine)["QUANTIZED_CONVOLUTION"] == 2


# -- the plan and the inspector ----------------------------------------------------------------
def test_plan_round_trip_keeps_the_fused_layer(monkeypatch):
    inputs = {"x": X, "r": R}
    engine = build(residual_block(), inputs, monkeypatch,
                   config_hook=lambda c: setattr(c, "profiling_verbosity",
                                                 trt.ProfilingVerbosity.DETAILED))
    again = trt.Runtime(trt.Logger()).deserialize_cuda_engine(engine.serialize())
    (a,), (b,) = fused_layers(engine), fused_layers(again)
    assert a.attributes().keys() == b.attributes().keys()
    for name in ("output_scale", "activation", "alpha", "beta", "input_scale", "output_type"):
        assert getattr(a, name) == getattr(b, name)
    np.testing.assert_array_equal(a.kernel_scale.numpy(), b.kernel_scale.numpy())
    for name, value in run(engine, inputs).items():
        np.testing.assert_array_equal(run(again, inputs)[name], value)
    layers = json.loads(again.create_engine_inspector().get_engine_information(
        trt.LayerInformationFormat.JSON))["Layers"]
    (shown,) = [la for la in layers if la["LayerType"] == "FUSED_QUANTIZED_CONVOLUTION"]
    assert shown["Outputs"][0]["Format/Datatype"] == "Row major linear Int8"
    assert shown["TacticName"] == "cpu.fused_quantized_convolution"


# -- the CPU kernel ----------------------------------------------------------------------------
def fused_layer(x_shape, w_codes, *, input_scale=1.0, kernel_scale=1.0, bias=None,
                residual_shape=None, activation=None, output_scale=0.0,
                residual_type=trt.float32, residual_scale=0.0):
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.int8, x_shape)
    conv = IQuantizedConvolutionLayer(net, x, w_codes.shape[0], w_codes.shape[2:],
                                      codes_as_weights(w_codes, trt.int8),
                                      trt.Weights(np.zeros(0, np.float32) if bias is None
                                                  else bias))
    conv.input_scale = input_scale
    conv.kernel_scale = trt.Weights(np.asarray(kernel_scale, np.float32))
    residual = None if residual_shape is None else net.add_input("r", residual_type,
                                                                 residual_shape)
    return IFusedQuantizedConvolutionLayer.from_quantized_convolution(
        conv, residual, activation, output_scale=output_scale, residual_scale=residual_scale)


def run_cpu(layer, *arrays):
    (tactic,) = tactics_for("cpu", LayerType.FUSED_QUANTIZED_CONVOLUTION)
    return tactic.run(layer, list(arrays))[0]


def test_requantization_rounds_half_to_even_and_saturates_as_the_quantize_layer():
    codes = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 16, 16)
    identity = np.ones((1, 1, 1, 1), np.int8)
    halves = run_cpu(fused_layer(codes.shape, identity, output_scale=2.0), codes)
    assert halves.dtype == np.int8
    np.testing.assert_array_equal(halves.ravel()[[127, 128, 129, 130, 131]], [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(halves, np.rint(codes / 2.0))  # every code is a tie or exact
    doubled = run_cpu(fused_layer(codes.shape, identity, output_scale=0.5), codes)
    np.testing.assert_array_equal(doubled, np.clip(codes.astype(np.int32) * 2, -128, 127))

    net = trt.Builder(trt.Logger()).create_network(0)
    q = net.add_quantize(net.add_input("v", trt.float32, codes.shape), constant(net, 0.5),
                         trt.int8)
    (same,) = quantize(q, [codes.astype(np.float32), np.float32(0.5)])
    np.testing.assert_array_equal(doubled, same)


def test_an_int8_residual_is_dequantized_to_the_output_type_before_the_sum():
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, (1, 3, 4, 4)).astype(np.int8)
    w = rng.integers(-128, 128, (2, 3, 1, 1)).astype(np.int8)
    codes = rng.integers(-128, 128, (1, 2, 4, 4)).astype(np.int8)
    layer = fused_layer(x.shape, w, input_scale=0.01, kernel_scale=0.02,
                        residual_shape=codes.shape, residual_type=trt.int8, residual_scale=0.37)
    got = run_cpu(layer, x, codes)
    sums = np.einsum("bchw,kc->bkhw", x.astype(np.int64), w[:, :, 0, 0].astype(np.int64))
    residual = codes.astype(np.float32) * np.float32(0.37)
    np.testing.assert_array_equal(got, sums.astype(np.float32) * np.float32(0.01 * 0.02)
                                  + residual)
    layer.residual_scale = 0.0  # the codes are then refused as a float residual
    with pytest.raises(trt.NetworkError, match="residual"):
        layer.infer([layer._network._info(t) for t in layer._inputs])


def test_a_float_residual_with_a_residual_scale_is_refused():
    layer = fused_layer((1, 2, 4, 4), np.ones((2, 2, 1, 1), np.int8),
                        residual_shape=(1, 2, 4, 4), residual_scale=0.5)
    layer.name = "conv9"
    with pytest.raises(trt.NetworkError, match="conv9.*residual.*must be INT8 or FP8 codes"):
        layer.infer([layer._network._info(t) for t in layer._inputs])


def test_epilogue_is_the_float32_sum_of_its_parts():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (2, 5, 7, 7)).astype(np.int8)
    w = rng.integers(-128, 128, (6, 5, 3, 3)).astype(np.int8)
    scale = rng.uniform(0.5, 2, 6).astype(np.float32) * 1e-3
    bias = rng.standard_normal(6).astype(np.float32)
    residual = rng.standard_normal((2, 6, 5, 5)).astype(np.float32)
    layer = fused_layer(x.shape, w, input_scale=0.02, kernel_scale=scale, bias=bias,
                        residual_shape=residual.shape, activation=trt.ActivationType.RELU)
    got = run_cpu(layer, x, residual)
    sums = np.einsum("bchw,kc->bkhw", np.lib.stride_tricks.sliding_window_view(
        x.astype(np.int64), (3, 3), axis=(2, 3)).reshape(2, 5, 5, 5, 9).transpose(
        0, 1, 4, 2, 3).reshape(2, 45, 5, 5), w.reshape(6, 45).astype(np.int64))
    factor = (0.02 * scale.astype(np.float64)).astype(np.float32)[:, None, None]
    want = np.maximum(sums.astype(np.float32) * factor + bias[:, None, None] + residual, 0)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("output_scale", [0.0, 0.01])
def test_fused_layer_refuses_a_mismatched_residual_with_its_name(output_scale):
    layer = fused_layer((1, 2, 4, 4), np.ones((3, 2, 1, 1), np.int8),
                        residual_shape=(1, 2, 4, 4), output_scale=output_scale)
    layer.name = "conv7"
    with pytest.raises(trt.NetworkError, match="conv7.*residual"):
        layer.infer([layer._network._info(t) for t in layer._inputs])


def test_resnet_blocks_with_quantized_residuals_stay_int8(monkeypatch):
    """NVIDIA's QAT placement (the residual input quantized too): every block output is
    INT8 codes written by its last convolution, read as the next block's input codes and,
    with their scale, as its residual; only the network input and the pooling output are
    quantized by quantize layers. Outputs against the network without the epilogue pass."""
    engine = quantized_resnet(monkeypatch, "all", residuals=True, size=64)
    before = quantized_resnet(monkeypatch, "before", residuals=True, size=64)
    fused = fused_layers(engine)
    with_residual = [la for la in fused if len(la._inputs) == 2]
    assert len(with_residual) == 16
    assert all(la.residual_scale == float(np.float32(np.float16(16 / 127))) and
               la._inputs[1].dtype == trt.int8 for la in with_residual)
    # every convolution but the last block's (the global average pool reads it) writes INT8
    # codes, the stem's read by the max pooling, which runs on them
    assert sum(la.output_scale > 0 for la in fused) == 53 - 1
    kept = kinds(engine)
    assert "DEQUANTIZE" not in kept and "ELEMENTWISE" not in kept
    assert kept["QUANTIZE"] == 1  # the network input
    (pool,) = [la for la in engine._network._layers if la.layer_type == LayerType.POOLING]
    assert engine._network._info(pool._inputs[0]).dtype == trt.int8

    x = np.random.default_rng(2).standard_normal((1, 3, 64, 64)).astype(np.float16)
    got = run(engine, {"x": x})["y"].astype(np.float64)
    want = run(before, {"x": x})["y"].astype(np.float64)
    # As above, codes a step apart where the unfused network rounds through HALF first; with
    # the residuals quantized too, twice the quantization points (2.3% here; one block is
    # checked exactly in test_a_quantized_residual_is_read_as_int8_codes).
    assert np.linalg.norm(got - want) <= 4e-2 * np.linalg.norm(want)
