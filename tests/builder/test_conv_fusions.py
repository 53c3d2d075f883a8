"""Scale folding, conv + bias + activation and residual-add fusion: each compared with the
same network built without passes, plus the layers that result."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from engine.network.scaled_weights import RowScaledArray
from tests.builder.support import (
    assert_same,
    draw,
    layer_names,
    layer_types,
    run_optimized_and_plain,
)
from tests.support import build_engine

rng = np.random.default_rng(0)


def _conv(network, x, maps, name, kernel=3, bias=True):
    channels = x.shape[1]
    w = draw((maps, channels, kernel, kernel))
    b = draw((maps,)) if bias else None
    layer = network.add_convolution_nd(x, maps, (kernel, kernel), w, b)
    layer.padding_nd = (kernel // 2, kernel // 2)
    layer.name = name
    return layer.get_output(0)


def _const(network, value, name):
    layer = network.add_constant(value.shape, value)
    layer.name = name
    return layer.get_output(0)


def _batch_norm(network, y, maps, prefix):
    scale = draw((1, maps, 1, 1), 0.5, 2)
    shift = draw((1, maps, 1, 1))
    mul = network.add_elementwise(y, _const(network, scale, prefix + "_s"),
                                  trt.ElementWiseOperation.PROD)
    mul.name = prefix + "_mul"
    add = network.add_elementwise(_const(network, shift, prefix + "_b"), mul.get_output(0),
                                  trt.ElementWiseOperation.SUM)
    add.name = prefix + "_add"
    return add.get_output(0)


def test_batch_norm_folds_and_relu_fuses(monkeypatch):
    def define(network, t):
        y = _batch_norm(network, _conv(network, t["x"], 6, "conv1"), 6, "bn1")
        relu = network.add_activation(y, trt.ActivationType.RELU)
        relu.name = "relu1"
        return [relu.get_output(0)]

    engine, got, want = run_optimized_and_plain(
        monkeypatch, define, {"x": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)})
    assert_same(got, want)
    assert layer_types(engine) == ["FUSED_CONVOLUTION"]
    assert layer_names(engine) == ["conv1 + relu1"]


def test_scale_layer_and_division_fold_without_activation(monkeypatch):
    def define(network, t):
        y = _conv(network, t["x"], 4, "conv1", bias=False)
        scale = network.add_scale(y, trt.ScaleMode.CHANNEL,
                                  shift=draw((4,)),
                                  scale=draw((4,), 0.5, 2))
        divisor = _const(network, np.full((1, 4, 1, 1), 3.0, np.float32), "three")
        div = network.add_elementwise(scale.get_output(0), divisor,
                                      trt.ElementWiseOperation.DIV)
        return [div.get_output(0)]

    engine, got, want = run_optimized_and_plain(
        monkeypatch, define, {"x": rng.standard_normal((1, 3, 5, 5)).astype(np.float32)})
    assert_same(got, want)
    assert layer_types(engine) == ["CONVOLUTION"]


def test_non_channel_constant_is_not_folded(monkeypatch):
    def define(network, t):
        y = _conv(network, t["x"], 4, "conv1")
        spatial = _const(network, draw((1, 1, 5, 5)), "c")
        return [network.add_elementwise(y, spatial, trt.ElementWiseOperation.PROD)
                .get_output(0)]

    engine, got, want = run_optimized_and_plain(
        monkeypatch, define, {"x": rng.standard_normal((1, 3, 5, 5)).astype(np.float32)})
    assert_same(got, want)
    assert layer_types(engine) == ["CONVOLUTION", "ELEMENTWISE"]


def test_residual_add_and_relu_fuse_into_the_second_convolution(monkeypatch):
    def define(network, t):
        a = _conv(network, t["x"], 4, "conv1", kernel=1)
        b = _batch_norm(network, _conv(network, t["x"], 4, "conv2"), 4, "bn2")
        add = network.add_elementwise(a, b, trt.ElementWiseOperation.SUM)
        add.name = "add1"
        relu = network.add_activation(add.get_output(0), trt.ActivationType.RELU)
        relu.name = "relu1"
        return [relu.get_output(0)]

    engine, got, want = run_optimized_and_plain(
        monkeypatch, define, {"x": rng.standard_normal((2, 3, 6, 6)).astype(np.float32)})
    assert_same(got, want)
    assert layer_types(engine) == ["CONVOLUTION", "FUSED_CONVOLUTION"]
    assert "conv2 + add1 + relu1" in layer_names(engine)


def test_convolution_output_read_twice_is_not_fused(monkeypatch):
    def define(network, t):
        y = _conv(network, t["x"], 4, "conv1")
        relu = network.add_activation(y, trt.ActivationType.RELU)
        return [relu.get_output(0), y]

    engine, got, want = run_optimized_and_plain(
        monkeypatch, define, {"x": rng.standard_normal((1, 3, 5, 5)).astype(np.float32)})
    assert_same(got, want)
    assert sorted(layer_types(engine)) == ["ACTIVATION", "CONVOLUTION"]


@pytest.mark.parametrize("activation", [trt.ActivationType.SIGMOID,
                                        trt.ActivationType.LEAKY_RELU])
def test_matmul_bias_activation_and_scale_fuse(monkeypatch, activation):
    def define(network, t):
        w, bias = draw((1, 8, 5)), draw((1, 1, 5))
        mm = network.add_matrix_multiply(t["x"], trt.MatrixOperation.NONE,
                                         _const(network, w, "w"), trt.MatrixOperation.NONE)
        mm.name = "gemm"
        alpha = network.add_elementwise(mm.get_output(0), _const(
            network, np.full((1, 1, 1), 0.5, np.float32), "alpha"), trt.ElementWiseOperation.PROD)
        add = network.add_elementwise(alpha.get_output(0), _const(network, bias, "bias"),
                                      trt.ElementWiseOperation.SUM)
        add.name = "bias_add"
        act = network.add_activation(add.get_output(0), activation)
        act.alpha = 0.1
        act.name = "act"
        return [act.get_output(0)]

    engine, got, want = run_optimized_and_plain(
        monkeypatch, define, {"x": rng.standard_normal((3, 4, 8)).astype(np.float32)})
    assert_same(got, want)
    assert layer_types(engine) == ["FUSED_MATRIX_MULTIPLY"]
    assert layer_names(engine) == ["gemm + bias_add + act"]


def test_fusion_needs_a_backend_tactic(monkeypatch):
    from engine.builder.passes.context import PassContext
    from engine.builder.passes.conv_bias_act import fuse_conv_bias_act

    network = trt.Builder(trt.Logger()).create_network(0)
    x = network.add_input("x", trt.float32, (1, 3, 5, 5))
    relu = network.add_activation(_conv(network, x, 4, "conv1"), trt.ActivationType.RELU)
    network.mark_output(relu.get_output(0))
    assert not fuse_conv_bias_act(network, PassContext(backend="no-such-backend"))
    assert network.num_layers == 2
    assert fuse_conv_bias_act(network, PassContext(backend="cpu"))
    assert [layer.name for layer in network] == ["conv1 + (Unnamed Layer* 1) [Activation]"]


def test_matmul_bias_and_residual_fuse_as_a_transformer_sublayer(monkeypatch):
    """x + (h @ w + bias), then ReLU: the residual add and the activation join the product
    and its bias; a product whose output is read twice keeps its own layer."""
    def define(network, t):
        w1, b1 = draw((1, 8, 8)), draw((1, 1, 8))
        w2 = draw((1, 8, 8))
        h = network.add_matrix_multiply(t["x"], trt.MatrixOperation.NONE,
                                        _const(network, w1, "w1"), trt.MatrixOperation.NONE)
        h.name = "proj"
        biased = network.add_elementwise(h.get_output(0), _const(network, b1, "b1"),
                                         trt.ElementWiseOperation.SUM)
        biased.name = "bias"
        add = network.add_elementwise(t["x"], biased.get_output(0),
                                      trt.ElementWiseOperation.SUM)
        add.name = "residual"
        relu = network.add_activation(add.get_output(0), trt.ActivationType.RELU)
        relu.name = "relu"
        # a second product, read by the residual add and as an output: not fused
        g = network.add_matrix_multiply(relu.get_output(0), trt.MatrixOperation.NONE,
                                        _const(network, w2, "w2"), trt.MatrixOperation.NONE)
        g.name = "second"
        add2 = network.add_elementwise(g.get_output(0), relu.get_output(0),
                                       trt.ElementWiseOperation.SUM)
        return [add2.get_output(0), g.get_output(0)]

    engine, got, want = run_optimized_and_plain(
        monkeypatch, define, {"x": rng.standard_normal((2, 3, 8)).astype(np.float32)})
    assert_same(got, want)
    assert "proj + bias + residual + relu" in layer_names(engine)
    assert sorted(layer_types(engine)) == ["ELEMENTWISE", "FUSED_MATRIX_MULTIPLY",
                                           "MATRIX_MULTIPLY"]


def test_folded_kernel_is_computed_into_the_plan_on_a_warm_rebuild(monkeypatch):
    """Two scales folded into one kernel: each applied in turn in float32, as folding them
    one at a time would; a rebuild with a warm timing cache computes the kernel only into the
    plan, and writes the same plan."""
    w = draw((4, 3, 3, 3))
    s1 = draw((4,), 0.5, 2)

    def define(network, t):
        conv = network.add_convolution_nd(t["x"], 4, (3, 3), w, None)
        conv.name = "conv1"
        scale = network.add_scale(conv.get_output(0), trt.ScaleMode.CHANNEL, scale=s1)
        divisor = _const(network, np.full((1, 4, 1, 1), 3.0, np.float32), "three")
        return [network.add_elementwise(scale.get_output(0), divisor,
                                        trt.ElementWiseOperation.DIV).get_output(0)]

    cache = trt.Builder(trt.Logger()).create_builder_config().create_timing_cache(b"")
    x = {"x": rng.standard_normal((1, 3, 6, 6)).astype(np.float32)}
    cold = build_engine(define, x, config_hook=lambda c: c.set_timing_cache(cache, False))

    def refuse(*args, **kwargs):
        raise AssertionError("a folded kernel was computed outside the plan")

    monkeypatch.setattr(RowScaledArray, "__array__", refuse)
    warm = build_engine(define, x, config_hook=lambda c: c.set_timing_cache(cache, False))
    assert bytes(warm.serialize()) == bytes(cold.serialize())
    (conv,) = [layer for layer in warm._network._layers if layer.name == "conv1"]
    want = w * s1.reshape(4, 1, 1, 1) * np.float32(1 / 3.0)
    np.testing.assert_array_equal(conv.kernel.numpy(), want)


@pytest.mark.parametrize("rows,transposed,bias,residual,activation", [
    ((2, 64), False, True, True, trt.ActivationType.GELU_ERF),
    ((1, 300), True, True, False, trt.ActivationType.RELU),
    ((3, 5, 7), False, False, True, None),
    ((257,), True, False, False, trt.ActivationType.TANH),
])
def test_fused_matmul_row_parts_equal_the_whole_product(rows, transposed, bias, residual,
                                                        activation):
    """``cpu.fused_matrix_multiply_rows`` (parts of rows on the CPU pool, each with its own
    epilogue) against NumPy: the product of all rows, then bias, residual, activation."""
    import math

    from engine.kernels.registry import tactics_for
    from engine.network.layer import LayerType, TensorInfo
    from engine.network.layers.fused import IFusedMatrixMultiplyLayer

    inner, columns = 48, 40
    x = rng.standard_normal(rows + (inner,)).astype(np.float32)
    w = rng.standard_normal((columns, inner) if transposed else (inner, columns)).astype(
        np.float32)
    b = rng.standard_normal((1, columns)).astype(np.float32)
    r = rng.standard_normal(rows + (columns,)).astype(np.float32)
    network = trt.Builder(trt.Logger()).create_network(0)
    tensors = [network.add_input(n, trt.float32, a.shape) for n, a in
               (("x", x), ("w", w), ("b", b), ("r", r))]
    op1 = trt.MatrixOperation.TRANSPOSE if transposed else trt.MatrixOperation.NONE
    layer = IFusedMatrixMultiplyLayer(network, tensors[0], trt.MatrixOperation.NONE,
                                      tensors[1], op1, tensors[2] if bias else None)
    if residual:
        if not bias:
            layer._inputs.append(None)
        layer._inputs.append(tensors[3])
    layer.activation = activation
    inputs = [x, w] + ([b] if bias else [None] if residual else []) + ([r] if residual else [])
    want = x.astype(np.float64) @ (w.T if transposed else w).astype(np.float64)
    if bias:
        want = want + b
    if residual:
        want = want + r
    if activation == trt.ActivationType.GELU_ERF:
        want = 0.5 * want * (1 + np.vectorize(math.erf)(want / math.sqrt(2)))
    elif activation == trt.ActivationType.RELU:
        want = np.maximum(want, 0)
    elif activation == trt.ActivationType.TANH:
        want = np.tanh(want)
    (tactic,) = [t for t in tactics_for("cpu", LayerType.FUSED_MATRIX_MULTIPLY)
                 if t.name == "cpu.fused_matrix_multiply_rows"]
    infos = [None if a is None else TensorInfo(a.shape, trt.float32) for a in inputs]
    assert tactic.accepts(layer, infos)
    (got,) = tactic.run(layer, inputs)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    if residual:  # a residual broadcast along the rows is left to the other tactic
        infos[3] = TensorInfo((1,) * (len(rows) - 1) + (1, columns), trt.float32)
        assert not tactic.accepts(layer, infos)
