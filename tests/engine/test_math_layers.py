"""The math family as a whole: its public names, its layers' attributes surviving the plan,
and shape-tensor arithmetic folded exactly while the network is defined."""

import numpy as np
import pytest

import engine as trt
from engine.network.serialize import decode_network, encode_network
from tests.support import build_engine, run_network

MATH_NAMES = {
    "ActivationType", "CumulativeOperation", "ElementWiseOperation", "IActivationLayer",
    "ICastLayer", "ICumulativeLayer", "IEinsumLayer", "IElementWiseLayer",
    "IMatrixMultiplyLayer", "IParametricReLULayer", "IReduceLayer", "ISelectLayer",
    "ISoftMaxLayer", "ITopKLayer", "IUnaryLayer", "MatrixOperation", "ReduceOperation",
    "TopKOperation", "UnaryOperation",
}


def test_public_names_are_exported_from_engine():
    assert MATH_NAMES <= set(trt.__all__)
    for name in MATH_NAMES:
        assert getattr(trt, name).__name__ == name


def test_enum_values_are_tensorrts():
    assert trt.ElementWiseOperation.LESS == 13 and trt.ElementWiseOperation.FLOOR_DIV == 7
    assert trt.UnaryOperation.ISNAN == 24 and trt.UnaryOperation.NOT == 20
    assert trt.ActivationType.GELU_TANH == 13 and trt.ActivationType.CLIP == 8
    assert trt.MatrixOperation.VECTOR == 2 and trt.ReduceOperation.AVG == 4
    assert trt.TopKOperation.MIN == 1 and trt.CumulativeOperation.SUM == 0


def build_one_of_each(net):
    x = net.add_input("x", trt.float32, (2, 3, 4))
    axis = net.add_constant((), np.array(1, np.int32)).get_output(0)
    act = net.add_activation(x, trt.ActivationType.SELU)
    act.alpha, act.beta = 1.5, 2.5
    softmax = net.add_softmax(x)
    softmax.axes = 4
    return [
        net.add_elementwise(x, x, trt.ElementWiseOperation.POW),
        act,
        net.add_unary(x, trt.UnaryOperation.ERF),
        net.add_cast(x, trt.bfloat16),
        net.add_reduce(x, trt.ReduceOperation.AVG, 6, True),
        softmax,
        net.add_topk(x, trt.TopKOperation.MIN, 2, 2),
        net.add_cumulative(x, axis, trt.CumulativeOperation.SUM, True, False),
        net.add_matrix_multiply(x, trt.MatrixOperation.TRANSPOSE, x, trt.MatrixOperation.NONE),
        net.add_einsum([x], "abc->cab"),
    ]


def test_attributes_survive_encoding_and_decoding():
    net = trt.Builder(trt.Logger()).create_network(0)
    layers = build_one_of_each(net)
    record, arrays = encode_network(net)
    clone, _ = decode_network(record, arrays)
    by_name = {layer.name: layer for layer in clone}
    for layer in layers:
        copy = by_name[layer.name]
        assert type(copy) is type(layer)
        assert copy.attributes() == layer.attributes()
        assert [tuple(o.shape) for o in copy._outputs] == [tuple(o.shape) for o in layer._outputs]
    activation = by_name[layers[1].name]
    assert activation.type == trt.ActivationType.SELU
    assert activation.layer_type == trt.LayerType.ACTIVATION


def test_a_network_of_every_math_layer_builds_into_a_plan():
    def define(net, t):
        x = t["x"]
        axis = net.add_constant((), np.array(-1, np.int64)).get_output(0)
        return [
            net.add_unary(x, trt.UnaryOperation.EXP).get_output(0),
            net.add_cumulative(x, axis, trt.CumulativeOperation.SUM, False, True).get_output(0),
            net.add_topk(x, trt.TopKOperation.MAX, 1, 4).get_output(1),
        ]

    engine = build_engine(define, {"x": np.ones((2, 3, 4), np.float32)})
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    assert engine.get_tensor_dtype("out2") == trt.int32
    assert tuple(engine.get_tensor_shape("out2")) == (2, 3, 1)
    assert names[0] == "x"


def int64_constant(net, values):
    values = np.asarray(values, np.int64)
    return net.add_constant(values.shape, values).get_output(0)


def test_shape_arithmetic_is_folded_exactly_and_sets_static_shapes():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (-1, 12))
    # k = (14 FLOOR_DIV 4) - (-7 DIV 2) = 3 - (-3) = 6, all in INT64 shape arithmetic
    quotient = net.add_elementwise(int64_constant(net, 14), int64_constant(net, 4),
                                   trt.ElementWiseOperation.FLOOR_DIV).get_output(0)
    truncated = net.add_elementwise(int64_constant(net, -7), int64_constant(net, 2),
                                    trt.ElementWiseOperation.DIV).get_output(0)
    k = net.add_elementwise(quotient, truncated, trt.ElementWiseOperation.SUB).get_output(0)
    assert k.dtype == trt.int64
    topk = net.add_topk(x, trt.TopKOperation.MAX, 1, 2)
    topk.set_input(1, k)
    assert tuple(topk.get_output(0).shape) == (-1, 6)


def test_integer_math_on_constants_runs_exactly():
    big = np.array([2 ** 40 + 3, -(2 ** 40) - 3], np.int64)

    def define(net, t):
        c = net.add_constant((2,), big).get_output(0)
        two = net.add_constant((2,), np.array([2, 2], np.int64)).get_output(0)
        halved = net.add_elementwise(c, two, trt.ElementWiseOperation.DIV).get_output(0)
        total = net.add_reduce(halved, trt.ReduceOperation.SUM, 1, False).get_output(0)
        return [halved, total, net.add_identity(t["x"]).get_output(0)]

    halved, total, _ = run_network(define, {"x": np.zeros(1, np.float32)})
    np.testing.assert_array_equal(halved, [2 ** 39 + 1, -(2 ** 39) - 1])
    assert halved.dtype == np.int64 and total == 0


def test_changing_an_attribute_reinfers_downstream_shapes():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (2, 3, 4))
    reduce = net.add_reduce(x, trt.ReduceOperation.SUM, 1, False)
    out = net.add_activation(reduce.get_output(0), trt.ActivationType.RELU).get_output(0)
    assert tuple(out.shape) == (3, 4)
    reduce.keep_dims = True
    assert tuple(out.shape) == (1, 3, 4)
    reduce.axes = 0b110
    assert tuple(out.shape) == (2, 1, 1)


def test_errors_name_the_layer_given_by_the_user():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (2, 3))
    layer = net.add_reduce(x, trt.ReduceOperation.SUM, 1, True)
    layer.name = "row_sum"
    layer.axes = 8
    with pytest.raises(trt.NetworkError, match=r"layer 'row_sum' \(REDUCE\): axes mask"):
        _ = layer.get_output(0).shape
