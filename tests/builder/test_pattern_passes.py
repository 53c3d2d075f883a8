"""Pointwise fusion, shuffle elimination and the recognitions (GELU, LayerNorm, RMSNorm,
attention), each against the same network built without passes."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine as trt
from tests.builder.support import (
    assert_same,
    draw,
    layer_names,
    layer_types,
    run_optimized_and_plain,
)

E, U = trt.ElementWiseOperation, trt.UnaryOperation
rng = np.random.default_rng(2)


def _scalar(network, value, rank):
    return network.add_constant((1,) * rank, np.full((1,) * rank, value, np.float32)).get_output(0)


def _ew(network, a, b, op, name=None):
    layer = network.add_elementwise(a, b, op)
    if name:
        layer.name = name
    return layer.get_output(0)


def _x(shape):
    return {"x": rng.standard_normal(shape).astype(np.float32)}


def test_pointwise_chain_becomes_one_layer(monkeypatch):
    def define(network, t):
        x = t["x"]
        a = network.add_unary(_ew(network, x, _scalar(network, 2.0, 2), E.PROD, "mul"), U.ABS)
        a.name = "abs"
        s = network.add_unary(a.get_output(0), U.SQRT)
        s.name = "sqrt"
        act = network.add_activation(_ew(network, s.get_output(0), x, E.SUB, "sub"),
                                     trt.ActivationType.TANH)
        act.name = "tanh"
        return [act.get_output(0)]

    engine, got, want = run_optimized_and_plain(monkeypatch, define, _x((4, 7)))
    assert_same(got, want)
    assert layer_types(engine) == ["FUSED_POINTWISE"]
    assert layer_names(engine) == ["mul + abs + sqrt + sub + tanh"]


def test_pointwise_chain_stops_at_a_shared_tensor(monkeypatch):
    def define(network, t):
        shared = network.add_unary(t["x"], U.EXP).get_output(0)
        neg = network.add_unary(network.add_unary(shared, U.NEG).get_output(0), U.ABS)
        return [neg.get_output(0), shared]

    engine, got, want = run_optimized_and_plain(monkeypatch, define, _x((3, 3)))
    assert_same(got, want)
    assert sorted(layer_types(engine)) == ["FUSED_POINTWISE", "UNARY"]


def test_transpose_pair_cancels_and_reshapes_merge(monkeypatch):
    def define(network, t):
        first = network.add_shuffle(t["x"])
        first.first_transpose = (0, 2, 1)
        back = network.add_shuffle(first.get_output(0))
        back.first_transpose = (0, 2, 1)
        relu = network.add_activation(back.get_output(0), trt.ActivationType.RELU)
        flat = network.add_shuffle(relu.get_output(0))
        flat.reshape_dims = (2, 12)
        again = network.add_shuffle(flat.get_output(0))
        again.reshape_dims = (4, 6)
        again.second_transpose = (1, 0)
        return [again.get_output(0)]

    engine, got, want = run_optimized_and_plain(monkeypatch, define, _x((2, 3, 4)))
    assert_same(got, want)
    assert layer_types(engine) == ["ACTIVATION", "SHUFFLE"]


def test_identity_shuffle_is_removed(monkeypatch):
    def define(network, t):
        same = network.add_shuffle(t["x"])
        same.reshape_dims = (2, 3)
        return [network.add_unary(same.get_output(0), U.EXP).get_output(0)]

    engine, got, want = run_optimized_and_plain(monkeypatch, define, _x((2, 3)))
    assert_same(got, want)
    assert layer_types(engine) == ["UNARY"]


def _gelu_erf(network, x):
    div = _ew(network, x, _scalar(network, math.sqrt(2.0), 2), E.DIV)
    erf = network.add_unary(div, U.ERF).get_output(0)
    add = _ew(network, erf, _scalar(network, 1.0, 2), E.SUM)
    return _ew(network, _ew(network, x, add, E.PROD), _scalar(network, 0.5, 2), E.PROD)


def _gelu_tanh(network, x):
    cube = _ew(network, x, _scalar(network, 3.0, 2), E.POW)
    inner = _ew(network, x, _ew(network, cube, _scalar(network, 0.044715, 2), E.PROD), E.SUM)
    scaled = _ew(network, inner, _scalar(network, math.sqrt(2 / math.pi), 2), E.PROD)
    tanh = network.add_activation(scaled, trt.ActivationType.TANH).get_output(0)
    add = _ew(network, _scalar(network, 1.0, 2), tanh, E.SUM)
    half_x = _ew(network, x, _scalar(network, 0.5, 2), E.PROD)
    return _ew(network, add, half_x, E.PROD)


@pytest.mark.parametrize("form", [_gelu_erf, _gelu_tanh])
def test_gelu_is_recognized(monkeypatch, form):
    engine, got, want = run_optimized_and_plain(
        monkeypatch, lambda network, t: [form(network, t["x"])], _x((5, 16)))
    assert_same(got, want)
    assert layer_types(engine) == ["ACTIVATION"]


def _mean(network, x, axes):
    return network.add_reduce(x, trt.ReduceOperation.AVG, axes, True).get_output(0)


def _layer_norm(network, x, hidden, affine=True):
    mean = _mean(network, x, 1 << 2)
    centered = _ew(network, x, mean, E.SUB)
    var = _mean(network, _ew(network, centered, _scalar(network, 2.0, 3), E.POW), 1 << 2)
    std = network.add_unary(_ew(network, var, _scalar(network, 1e-5, 3), E.SUM), U.SQRT)
    out = _ew(network, centered, std.get_output(0), E.DIV)
    if affine:
        gamma = network.add_constant((1, 1, hidden), draw((1, 1, hidden))).get_output(0)
        beta = network.add_constant((1, 1, hidden), draw((1, 1, hidden))).get_output(0)
        out = _ew(network, _ew(network, out, gamma, E.PROD), beta, E.SUM)
    return out


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_becomes_a_normalization_layer(monkeypatch, affine):
    engine, got, want = run_optimized_and_plain(
        monkeypatch, lambda network, t: [_layer_norm(network, t["x"], 16, affine)],
        _x((2, 5, 16)))
    assert_same(got, want)
    assert layer_types(engine) == ["NORMALIZATION"]


def test_rms_norm_becomes_a_fused_layer(monkeypatch):
    def define(network, t):
        x = t["x"]
        var = _mean(network, _ew(network, x, x, E.PROD), 1 << 2)
        root = network.add_unary(_ew(network, var, _scalar(network, 1e-6, 3), E.SUM), U.SQRT)
        recip = network.add_unary(root.get_output(0), U.RECIP).get_output(0)
        gamma = network.add_constant((1, 1, 8), draw((1, 1, 8))).get_output(0)
        return [_ew(network, gamma, _ew(network, x, recip, E.PROD), E.PROD)]

    engine, got, want = run_optimized_and_plain(monkeypatch, define, _x((2, 3, 8)))
    assert_same(got, want)
    assert layer_types(engine) == ["FUSED_RMS_NORMALIZATION"]


@pytest.mark.parametrize("masked", [True, False])
def test_attention_becomes_one_layer(monkeypatch, masked):
    def define(network, t):
        scores = network.add_matrix_multiply(t["q"], trt.MatrixOperation.NONE, t["k"],
                                             trt.MatrixOperation.TRANSPOSE)
        scores.name = "qk"
        scaled = _ew(network, scores.get_output(0), _scalar(network, math.sqrt(8), 4), E.DIV,
                     "scale")
        if masked:
            scaled = _ew(network, scaled, t["mask"], E.SUM, "mask")
        softmax = network.add_softmax(scaled)
        softmax.axes = 1 << 3
        softmax.name = "softmax"
        out = network.add_matrix_multiply(softmax.get_output(0), trt.MatrixOperation.NONE,
                                          t["v"], trt.MatrixOperation.NONE)
        out.name = "pv"
        return [out.get_output(0)]

    inputs = {n: rng.standard_normal((1, 2, 6, 8)).astype(np.float32) for n in "qkv"}
    if masked:
        inputs["mask"] = np.where(np.tril(np.ones((1, 1, 6, 6))) > 0, 0, -1e9).astype(np.float32)
    engine, got, want = run_optimized_and_plain(monkeypatch, define, inputs)
    assert_same(got, want)
    assert layer_types(engine) == ["FUSED_ATTENTION"]
    assert layer_names(engine) == ["qk + scale + " + ("mask + " if masked else "")
                                   + "softmax + pv"]
