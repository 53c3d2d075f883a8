"""Reduce, softmax, top-k and cumulative layers against NumPy and onnx's ReferenceEvaluator."""

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import engine as trt
from tests.support import run_network

RO = trt.ReduceOperation
rng = np.random.default_rng(3)


def onnx_reference(op_type, inputs, outputs=1, **attributes):
    """Run one ONNX node on ``inputs`` with the ReferenceEvaluator."""
    names = [f"in{i}" for i in range(len(inputs))]
    out_names = [f"out{i}" for i in range(outputs)]
    node = helper.make_node(op_type, names, out_names, **attributes)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
         for n, a in zip(names, inputs)],
        [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in out_names])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))


NUMPY_REDUCTIONS = {RO.SUM: np.sum, RO.PROD: np.prod, RO.MAX: np.max, RO.MIN: np.min,
                    RO.AVG: np.mean}


@pytest.mark.parametrize("keep_dims", [True, False])
@pytest.mark.parametrize("axes", [0b0001, 0b0110, 0b1000, 0b1111])
@pytest.mark.parametrize("op", list(RO))
def test_reduce_float_matches_numpy(op, axes, keep_dims):
    x = rng.uniform(0.5, 1.5, (2, 3, 4, 5)).astype(np.float32)

    def define(net, t):
        return [net.add_reduce(t["x"], op, axes, keep_dims).get_output(0)]

    (out,) = run_network(define, {"x": x})
    axis_tuple = tuple(i for i in range(4) if axes >> i & 1)
    expected = NUMPY_REDUCTIONS[op](x.astype(np.float64), axis=axis_tuple, keepdims=keep_dims)
    assert out.dtype == np.float32 and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_reduce_integers_exactly(dtype):
    x = np.array([[7, -8, 3], [2 ** 20, -5, 1]], dtype)

    def define(net, t):
        return [net.add_reduce(t["x"], op, 0b10, False).get_output(0) for op in RO]

    total, product, largest, smallest, mean = run_network(define, {"x": x})
    for out in (total, product, largest, smallest, mean):
        assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(total, x.sum(axis=1))
    np.testing.assert_array_equal(product, x.prod(axis=1))
    np.testing.assert_array_equal(largest, x.max(axis=1))
    np.testing.assert_array_equal(smallest, x.min(axis=1))
    np.testing.assert_array_equal(mean, [0, (2 ** 20 - 4) // 3])  # 2/3 truncates to 0


def test_reduce_over_an_empty_volume_gives_the_documented_identities():
    x = np.zeros((0, 3), np.float32)

    def define(net, t):
        return [net.add_reduce(t["x"], op, 0b01, False).get_output(0) for op in RO]

    total, product, largest, smallest, mean = run_network(define, {"x": x})
    np.testing.assert_array_equal(total, [0, 0, 0])
    np.testing.assert_array_equal(product, [1, 1, 1])
    np.testing.assert_array_equal(largest, [-np.inf] * 3)
    np.testing.assert_array_equal(smallest, [np.inf] * 3)
    assert np.isnan(mean).all()


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_reduce_narrow_floats_accumulate_in_float32(dtype):
    x = rng.uniform(0, 1, (4, 64)).astype(dtype)
    (out,) = run_network(lambda net, t: [net.add_reduce(t["x"], RO.SUM, 2, True).get_output(0)],
                         {"x": x})
    assert out.dtype == np.dtype(dtype)
    expected = x.astype(np.float32).sum(axis=1, keepdims=True).astype(dtype)
    np.testing.assert_array_equal(out, expected)


def test_reduce_with_dynamic_shape():
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)

    def define(net, t):
        out = net.add_reduce(t["x"], RO.MAX, 0b010, False).get_output(0)
        assert tuple(out.shape) == (-1, 2)
        return [out]

    (out,) = run_network(define, {"x": x}, dynamic={"x": (-1, -1, 2)})
    np.testing.assert_array_equal(out, x.max(axis=1))


def test_reduce_refusals():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (2, 3))
    with pytest.raises(trt.NetworkError, match=r"REDUCE.*axes mask 0b100 names axes beyond rank 2"):
        net.add_reduce(x, RO.SUM, 0b100, True)
    b = net.add_input("b", trt.bool, (2,))
    with pytest.raises(trt.NetworkError, match=r"REDUCE.*input has type BOOL; SUM accepts"):
        net.add_reduce(b, RO.SUM, 1, True)


@pytest.mark.parametrize("shape, default_axis", [((5,), 0), ((2, 5), 0), ((2, 3, 4), 0),
                                                 ((2, 3, 4, 5), 1), ((1, 2, 3, 4, 5), 2)])
def test_softmax_default_axis_is_rank_minus_three(shape, default_axis):
    x = rng.standard_normal(shape).astype(np.float32)

    def define(net, t):
        layer = net.add_softmax(t["x"])
        assert layer.axes == 1 << default_axis
        return [layer.get_output(0)]

    (out,) = run_network(define, {"x": x})
    (expected,) = onnx_reference("Softmax", [x], axis=default_axis)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16])
def test_softmax_on_a_chosen_axis_with_dynamic_shape(dtype):
    x = (rng.standard_normal((3, 4, 6)) * 10).astype(dtype)

    def define(net, t):
        layer = net.add_softmax(t["x"])
        layer.axes = 1 << 2
        return [layer.get_output(0)]

    (out,) = run_network(define, {"x": x}, dynamic={"x": (-1, 4, 6)})
    (expected,) = onnx_reference("Softmax", [x.astype(np.float32)], axis=2)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out.astype(np.float32), expected, rtol=1e-2, atol=1e-3)


def test_softmax_refuses_several_axes_and_integers():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (2, 3))
    layer = net.add_softmax(x)
    layer.axes = 0b11
    with pytest.raises(trt.NetworkError, match=r"SOFTMAX.*must set exactly one bit"):
        _ = layer.get_output(0).shape
    i = net.add_input("i", trt.int32, (2, 3))
    with pytest.raises(trt.NetworkError, match=r"SOFTMAX.*input has type INT32"):
        net.add_softmax(i)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16, np.int32,
                                   np.int64])
@pytest.mark.parametrize("op", list(trt.TopKOperation))
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_topk_matches_onnx_topk(op, axis, dtype):
    x = rng.permutation(60).reshape(3, 4, 5).astype(dtype)  # distinct values

    def define(net, t):
        layer = net.add_topk(t["x"], op, 2, 1 << axis)
        assert (layer.op, layer.k, layer.axes) == (op, 2, 1 << axis)
        return [layer.get_output(0), layer.get_output(1)]

    values, indices = run_network(define, {"x": x})
    largest = int(op == trt.TopKOperation.MAX)
    ref_values, ref_indices = onnx_reference("TopK", [x.astype(np.float32),
                                                      np.array([2], np.int64)],
                                             outputs=2, axis=axis, largest=largest)
    assert values.dtype == np.dtype(dtype) and indices.dtype == np.int32
    np.testing.assert_array_equal(values.astype(np.float32), ref_values)
    np.testing.assert_array_equal(indices, ref_indices)


def test_topk_equal_values_keep_their_order():
    x = np.array([[1, 3, 3, 1, 2]], np.int32)
    values, indices = run_network(
        lambda net, t: list(map(net.add_topk(t["x"], trt.TopKOperation.MAX, 4, 2).get_output,
                                (0, 1))), {"x": x})
    np.testing.assert_array_equal(values, [[3, 3, 2, 1]])
    np.testing.assert_array_equal(indices, [[1, 2, 4, 0]])


def test_topk_with_k_from_a_shape_tensor():
    x = rng.standard_normal((2, 7)).astype(np.float32)

    def define(net, t):
        layer = net.add_topk(t["x"], trt.TopKOperation.MIN, 1, 2)
        k = net.add_constant((), np.array(3, np.int32)).get_output(0)
        layer.set_input(1, k)
        assert k.is_shape_tensor
        assert tuple(layer.get_output(0).shape) == (-1, 3)
        return [layer.get_output(0), layer.get_output(1)]

    values, indices = run_network(define, {"x": x}, dynamic={"x": (-1, 7)})
    order = np.argsort(x, axis=1)[:, :3]
    np.testing.assert_array_equal(indices, order)
    np.testing.assert_array_equal(values, np.take_along_axis(x, order, axis=1))


def test_topk_refusals():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (2, 5))
    with pytest.raises(trt.NetworkError, match=r"TOPK.*k is 6 but axis 1 has only 5 elements"):
        net.add_topk(x, trt.TopKOperation.MAX, 6, 2)
    with pytest.raises(trt.NetworkError, match=r"TOPK.*must set exactly one bit"):
        net.add_topk(x, trt.TopKOperation.MAX, 1, 3)
    with pytest.raises(trt.NetworkError, match=r"TOPK.*k is 0; it must be in \[1, 3840\]"):
        net.add_topk(x, trt.TopKOperation.MAX, 0, 1)
    layer = net.add_topk(x, trt.TopKOperation.MAX, 1, 1)
    with pytest.raises(trt.NetworkError, match=r"k input \(1\) must be a 0-D tensor"):
        layer.set_input(1, net.add_constant((1,), np.array([1], np.int32)).get_output(0))
        _ = layer.get_output(0).shape


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cumulative_sum_matches_onnx_cumsum(axis, reverse, exclusive, dtype):
    x = rng.integers(-5, 6, (3, 4)).astype(dtype)

    def define(net, t):
        axis_tensor = net.add_constant((), np.array(axis, np.int64)).get_output(0)
        layer = net.add_cumulative(t["x"], axis_tensor, trt.CumulativeOperation.SUM, exclusive,
                                   reverse)
        assert (layer.exclusive, layer.reverse) == (exclusive, reverse)
        return [layer.get_output(0)]

    (out,) = run_network(define, {"x": x}, dynamic={"x": (-1, 4)})
    (expected,) = onnx_reference("CumSum", [x, np.array(axis, np.int64)],
                                 exclusive=int(exclusive), reverse=int(reverse))
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, expected)


def test_cumulative_axis_must_be_a_constant_in_range():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (2, 3))
    runtime_axis = net.add_input("a", trt.int32, ())
    with pytest.raises(trt.NetworkError, match=r"CUMULATIVE.*axis input must be a build-time "
                                               r"constant"):
        net.add_cumulative(x, runtime_axis, trt.CumulativeOperation.SUM, False, False)
    far = net.add_constant((), np.array(2, np.int32)).get_output(0)
    with pytest.raises(trt.NetworkError, match=r"CUMULATIVE.*axis 2 is out of range for rank 2"):
        net.add_cumulative(x, far, trt.CumulativeOperation.SUM, False, False)
