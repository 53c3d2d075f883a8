"""Quantize layers computing the same codes of one tensor merge into one (the first); those
that differ in scale, axis or type, or whose output is a network output, stay."""

from __future__ import annotations

from collections import Counter

import numpy as np

import engine as trt
from engine.builder import pipeline
from engine.builder.passes.quantize_merge_duplicates import merge_duplicate_quantize
from engine.network.layer import LayerType
from tests.quantization.networks import constant, qdq
from tests.support import build_engine

RNG = np.random.default_rng(6)
X = RNG.standard_normal((2, 4, 6, 6)).astype(np.float32)
W = (RNG.standard_normal((4, 4, 1, 1)) * 0.3).astype(np.float32)


def two_readers(second_scale):
    """x quantized twice (scales 0.05 and ``second_scale``), each feeding a convolution."""
    def define(net, t):
        outs = []
        for scale in (0.05, second_scale):
            conv = net.add_convolution_nd(qdq(net, t["x"], np.float32(scale), trt.int8), 4,
                                          (1, 1), trt.Weights(), trt.Weights())
            conv.set_input(1, qdq(net, constant(net, W), np.float32(0.01), trt.int8))
            outs.append(conv.get_output(0))
        return outs
    return define


def quantize_layers(engine):
    return Counter(la.layer_type.name for la in engine._network._layers)["QUANTIZE"]


def test_equal_quantize_layers_of_one_tensor_merge(monkeypatch):
    engine = build_engine(two_readers(0.05), {"x": X})
    assert quantize_layers(engine) == 1
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "PASSES", [p for p in pipeline.PASSES
                                           if p is not merge_duplicate_quantize])
        unmerged = build_engine(two_readers(0.05), {"x": X})
    assert quantize_layers(unmerged) == 2
    got = engine.create_execution_context().infer({"x": X})
    want = unmerged.create_execution_context().infer({"x": X})
    for name in ("out0", "out1"):
        np.testing.assert_array_equal(got[name], want[name])
    np.testing.assert_array_equal(got["out0"], got["out1"])


def test_different_scales_stay_apart():
    engine = build_engine(two_readers(0.06), {"x": X})
    assert quantize_layers(engine) == 2


def test_a_quantize_output_that_is_a_network_output_keeps_its_layer():
    network = trt.Builder(trt.Logger()).create_network(0)
    x = network.add_input("x", trt.float32, (2, 3))
    scale = constant(network, np.float32(0.1))
    first = network.add_quantize(x, scale, trt.int8).get_output(0)
    second = network.add_quantize(x, scale, trt.int8).get_output(0)
    network.mark_output(first)
    network.mark_output(second)
    assert not merge_duplicate_quantize(network)
    assert sum(la.layer_type == LayerType.QUANTIZE for la in network._layers) == 2
