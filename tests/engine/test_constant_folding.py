"""Constant folding: computed once at build time, numerically identical to running unfolded."""

import numpy as np

import engine as trt
from engine.builder.passes.constant_folding import fold_constants
from engine.network.serialize import clone_network
from tests.support import CollectingLogger


def build(define, shape=(2, 4), dynamic=None):
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, dynamic or shape)
    y = define(network, x)
    y.name = "y"
    network.mark_output(y)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    if dynamic:
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, shape[1]), shape, (8, shape[1]))
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors()
    return network, trt.Runtime(logger).deserialize_cuda_engine(plan)


def weight_chain(network, x):
    """x + exp(w) * 2, where exp(w) * 2 is all-constant."""
    w = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    c = network.add_constant((2, 4), w).get_output(0)
    e = network.add_unary(c, trt.UnaryOperation.EXP).get_output(0)
    two = network.add_constant((1, 1), np.array([[2]], np.float32)).get_output(0)
    scaled = network.add_elementwise(e, two, trt.ElementWiseOperation.PROD).get_output(0)
    return network.add_elementwise(x, scaled, trt.ElementWiseOperation.SUM).get_output(0)


def test_constant_subgraph_is_folded_and_matches():
    network, engine = build(weight_chain)
    assert network.num_layers == 5  # the user's network is not modified
    types = [t for _, t, _ in engine.layer_tactics]
    assert types.count("UNARY") == 0 and types.count("ELEMENTWISE") == 1
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    w = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    y = engine.create_execution_context().infer({"x": x})["y"]
    np.testing.assert_allclose(y, x + np.exp(w) * 2, rtol=1e-6)


def test_pass_reports_whether_it_changed_the_network():
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (2, 4))
    network.mark_output(weight_chain(network, x))
    clone = clone_network(network)
    assert fold_constants(clone) is True
    assert fold_constants(clone) is False


def test_shape_arithmetic_on_static_input_folds_to_constants():
    def reshape_by_shape(network, x):
        shape = network.add_shape(x).get_output(0)  # [2, 4] known at build time
        flat = network.add_shuffle(x)
        flat.set_input(1, network.add_reduce(
            shape, trt.ReduceOperation.PROD, 1, True).get_output(0))
        return flat.get_output(0)

    _, engine = build(reshape_by_shape)
    assert [t for _, t, _ in engine.layer_tactics] == ["CONSTANT", "SHUFFLE"]
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(engine.create_execution_context().infer({"x": x})["y"],
                                  x.reshape(8))


def test_shape_arithmetic_on_dynamic_input_is_kept_and_correct():
    def reshape_by_shape(network, x):
        shape = network.add_shape(x).get_output(0)
        flat = network.add_shuffle(x)
        flat.set_input(1, network.add_reduce(
            shape, trt.ReduceOperation.PROD, 1, True).get_output(0))
        return flat.get_output(0)

    _, engine = build(reshape_by_shape, shape=(3, 4), dynamic=(-1, 4))
    assert "SHAPE" in [t for _, t, _ in engine.layer_tactics]
    context = engine.create_execution_context()
    for batch in (1, 5):
        x = np.arange(batch * 4, dtype=np.float32).reshape(batch, 4)
        np.testing.assert_array_equal(context.infer({"x": x})["y"], x.reshape(-1))
