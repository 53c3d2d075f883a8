"""Q(maxpool(x)) -> maxpool(Q(x)): the pooling runs on INT8 codes, the convolution before it
writes them, and the outputs are the same as without the move (max commutes with a monotonic
quantization); average pooling, a second reader or a per-channel scale leave it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import engine as trt
from engine.builder import pipeline
from engine.builder.passes.quantize_through_max_pool import quantize_through_max_pool
from engine.network.layer import LayerType
from tests.quantization.networks import constant, per_channel_scale, qdq
from tests.support import build_engine

RNG = np.random.default_rng(21)
X = RNG.standard_normal((2, 4, 12, 12)).astype(np.float32)
W1 = (RNG.standard_normal((8, 4, 3, 3)) * 0.3).astype(np.float32)
W2 = (RNG.standard_normal((6, 8, 1, 1)) * 0.3).astype(np.float32)
S = np.float32(0.02)


def network(kind=trt.PoolingType.MAX, second_reader=False, scale=S):
    def define(net, t):
        outs = []
        conv = net.add_convolution_nd(qdq(net, t["x"], np.float32(0.03), trt.int8), 8, (3, 3),
                                      trt.Weights(), trt.Weights())
        conv.set_input(1, qdq(net, constant(net, W1), per_channel_scale(W1, 0, 127), trt.int8,
                              axis=0))
        conv.padding_nd = (1, 1)
        pool = net.add_pooling_nd(conv.get_output(0), kind, (3, 3))
        pool.stride_nd, pool.padding_nd = (2, 2), (1, 1)
        pooled = pool.get_output(0)
        axis = 1 if np.ndim(scale) else -1
        head = net.add_convolution_nd(qdq(net, pooled, scale, trt.int8, axis=axis), 6, (1, 1),
                                      trt.Weights(), trt.Weights())
        head.set_input(1, qdq(net, constant(net, W2), per_channel_scale(W2, 0, 127), trt.int8,
                              axis=0))
        outs.append(head.get_output(0))
        if second_reader:
            outs.append(pooled)
        return outs
    return define


def build(define, monkeypatch, moved=True):
    with monkeypatch.context() as patch:
        if not moved:
            patch.setattr(pipeline, "PASSES", [p for p in pipeline.PASSES
                                               if p is not quantize_through_max_pool])
        return build_engine(define, {"x": X})


def pool_input_type(engine):
    (pool,) = [la for la in engine._network._layers if la.layer_type == LayerType.POOLING]
    return engine._network._info(pool._inputs[0]).dtype


def test_max_pooling_runs_on_codes_and_gives_the_same_outputs(monkeypatch):
    engine, before = build(network(), monkeypatch), build(network(), monkeypatch, moved=False)
    assert pool_input_type(engine) == trt.int8 and pool_input_type(before) == trt.float32
    kinds = Counter(la.layer_type.name for la in engine._network._layers)
    assert kinds["QUANTIZE"] == 1  # the network input's; the first convolution requantizes
    fused = [la for la in engine._network._layers
             if la.layer_type == LayerType.FUSED_QUANTIZED_CONVOLUTION]
    assert [float(la.output_scale) for la in fused] == [float(S)]
    got = engine.create_execution_context().infer({"x": X})["out0"]
    want = before.create_execution_context().infer({"x": X})["out0"]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("variant", ["average", "second reader", "per-channel scale"])
def test_the_quantize_layer_stays_after_the_pooling(variant, monkeypatch):
    define = {"average": lambda: network(kind=trt.PoolingType.AVERAGE),
              "second reader": lambda: network(second_reader=True),
              "per-channel scale": lambda: network(scale=np.linspace(0.01, 0.03, 8).astype(
                  np.float32))}[variant]()
    engine = build(define, monkeypatch)
    assert pool_input_type(engine) == trt.float32


def test_int8_pooling_other_than_max_is_refused_with_a_reason():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.int8, (1, 4, 8, 8))
    layer = net.add_pooling_nd(x, trt.PoolingType.AVERAGE, (2, 2))
    layer.name = "pool3"
    with pytest.raises(trt.NetworkError, match="pool3.*MAX pooling only"):
        layer.infer([net._info(x)])
    max_layer = net.add_pooling_nd(x, trt.PoolingType.MAX, (2, 2))
    assert max_layer.infer([net._info(x)])[0].dtype == trt.int8


def test_int32_max_pooling_is_exact_on_the_cpu():
    """Integer MAX pooling pools in the integer type (values beyond FLOAT's 2**24 stay exact)."""
    from tests.support import build_engine as build_plain

    x = (np.arange(2 * 3 * 6 * 6, dtype=np.int64).reshape(2, 3, 6, 6) * 99991 + 2 ** 30) \
        .astype(np.int32)

    def define(net, t):
        layer = net.add_pooling_nd(t["x"], trt.PoolingType.MAX, (2, 2))
        layer.stride_nd = (2, 2)
        return [layer.get_output(0)]

    got = build_plain(define, {"x": x}).create_execution_context().infer({"x": x})["out0"]
    want = x.reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)
