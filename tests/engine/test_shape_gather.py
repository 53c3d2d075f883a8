"""Gather (DEFAULT, ELEMENT, ND), Scatter (ELEMENT, ND), OneHot and NonZero against onnx's
ReferenceEvaluator (Gather, GatherElements, GatherND, ScatterElements, ScatterND, OneHot,
NonZero) and NumPy."""

import numpy as np
import pytest

import engine as trt
from tests.engine.test_shape_layers import ALL_DTYPES, constant, new_network, onnx_reference, sample
from tests.support import build_engine, run_network


def _gather(mode, axis=0, elementwise=0):
    def define(net, t):
        layer = net.add_gather_v2(t["data"], t["indices"], mode)
        layer.axis = axis
        layer.num_elementwise_dims = elementwise
        return [layer.get_output(0)]
    return define


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_gather_default_matches_onnx_with_negative_indices(axis, index_dtype):
    data = sample((3, 4, 5))
    indices = np.array([[1, 0, -1], [0, -2, 2]], index_dtype)
    (y,) = run_network(_gather(trt.GatherMode.DEFAULT, axis), {"data": data, "indices": indices})
    np.testing.assert_array_equal(y, onnx_reference("Gather", [data, indices], axis=axis))


def test_add_gather_takes_the_axis():
    data, indices = sample((3, 4)), np.array([3, 0], np.int32)
    (y,) = run_network(lambda n, t: [n.add_gather(t["data"], t["indices"], 1).get_output(0)],
                       {"data": data, "indices": indices})
    np.testing.assert_array_equal(y, data[:, [3, 0]])


def test_gather_default_with_one_elementwise_dim_pairs_batches():
    data = sample((2, 3, 4))
    indices = np.array([[2, 0], [1, 1]], np.int32)
    (y,) = run_network(_gather(trt.GatherMode.DEFAULT, 2, 1), {"data": data, "indices": indices})
    expected = np.stack([data[b][:, indices[b]] for b in range(2)])
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("axis", [0, 1])
def test_gather_element_matches_gather_elements(axis):
    data = sample((3, 4))
    if axis == 0:
        indices = np.array([[2, -1, 0, 1], [0, 1, 2, -3]], np.int64)
    else:
        indices = np.array([[3, -1], [0, 1], [-4, 2]], np.int64)
    (y,) = run_network(_gather(trt.GatherMode.ELEMENT, axis), {"data": data, "indices": indices})
    np.testing.assert_array_equal(y, onnx_reference("GatherElements", [data, indices], axis=axis))


@pytest.mark.parametrize("batch_dims, indices", [
    (0, np.array([[1, 0, 2], [0, 2, -1]], np.int32)),
    (0, np.array([[1], [0]], np.int64)),
    (1, np.array([[[2, 1]], [[0, 3]]], np.int64)),
])
def test_gather_nd_matches_gather_nd(batch_dims, indices):
    data = sample((2, 3, 4, 5))
    (y,) = run_network(_gather(trt.GatherMode.ND, 0, batch_dims),
                       {"data": data, "indices": indices})
    expected = onnx_reference("GatherND", [data, indices.astype(np.int64)],
                              batch_dims=batch_dims)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_gather_carries_every_dtype(dtype):
    data = sample((4, 3), dtype)
    indices = np.array([3, 1, 1], np.int32)
    (y,) = run_network(_gather(trt.GatherMode.DEFAULT), {"data": data, "indices": indices})
    assert y.dtype == data.dtype
    np.testing.assert_array_equal(y.astype(np.float32), data[[3, 1, 1]].astype(np.float32))


def test_gather_with_dynamic_data():
    data, indices = sample((5, 4)), np.array([[0, 3]], np.int64)
    (y,) = run_network(_gather(trt.GatherMode.DEFAULT, 1), {"data": data, "indices": indices},
                       dynamic={"data": (-1, 4)})
    np.testing.assert_array_equal(y, data[:, [[0, 3]]])


def test_gather_refusals():
    net = new_network()
    data = net.add_input("data", trt.float32, (3, 4))
    floats = net.add_input("f", trt.float32, (2,))
    with pytest.raises(trt.NetworkError, match=r"GATHER\): indices must be INT32 or INT64"):
        _ = net.add_gather(data, floats, 0).get_output(0).shape
    known = constant(net, np.array([0, 4], np.int32))
    with pytest.raises(trt.NetworkError, match="index 4 is out of range for an axis of size 4"):
        _ = net.add_gather(data, known, 1).get_output(0).shape
    with pytest.raises(trt.NetworkError, match="axis 2 is out of range"):
        _ = net.add_gather(data, known, 2).get_output(0).shape
    element = net.add_gather_v2(data, constant(net, np.array([0, 1], np.int32)),
                                trt.GatherMode.ELEMENT)
    with pytest.raises(trt.NetworkError, match="ELEMENT mode needs indices of the data's rank"):
        _ = element.get_output(0).shape
    nd = net.add_gather_v2(data, net.add_input("i", trt.int32, (2, 3)), trt.GatherMode.ND)
    with pytest.raises(trt.NetworkError, match="index depth 3 do not fit"):
        _ = nd.get_output(0).shape


def test_gather_out_of_range_at_run_time_names_the_layer():
    data = sample((3, 4))
    engine = build_engine(_gather(trt.GatherMode.DEFAULT),
                          {"data": data, "indices": np.array([0], np.int32)})
    context = engine.create_execution_context()
    with pytest.raises(trt.ExecutionError, match=r"GATHER\) failed: .*index 3 is out of range"):
        context.infer({"data": data, "indices": np.array([3], np.int32)})


@pytest.mark.parametrize("axis", [0, 1])
def test_scatter_element_matches_scatter_elements(axis):
    data = sample((3, 4))
    if axis == 1:
        indices = np.array([[3, 0, -2, 1], [1, 2, 0, 3]], np.int64)
    else:
        indices = np.array([[1, 0, 2, -3], [2, 1, 0, 1]], np.int64)
    updates = -sample((2, 4), seed=3) - 10

    def define(net, t):
        layer = net.add_scatter(t["data"], t["indices"], t["updates"], trt.ScatterMode.ELEMENT)
        layer.axis = axis
        return [layer.get_output(0)]

    (y,) = run_network(define, {"data": data, "indices": indices, "updates": updates})
    expected = onnx_reference("ScatterElements", [data, indices, updates], axis=axis)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("indices, updates_shape", [
    (np.array([[0, 2, 1], [1, 0, 3]], np.int32), (2, 5)),
    (np.array([[1], [0]], np.int64), (2, 3, 4, 5)),
    (np.array([[0, 1, 2, -1]], np.int64), (1,)),
])
def test_scatter_nd_matches_scatter_nd(indices, updates_shape):
    data = sample((2, 3, 4, 5))
    updates = sample(updates_shape, seed=4) + 100

    def define(net, t):
        return [net.add_scatter(t["data"], t["indices"], t["updates"], trt.ScatterMode.ND)
                .get_output(0)]

    (y,) = run_network(define, {"data": data, "indices": indices, "updates": updates})
    positive = np.where(indices < 0, indices + np.array(data.shape[:indices.shape[-1]]), indices)
    expected = onnx_reference("ScatterND", [data, positive.astype(np.int64), updates])
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("dtype", [np.bool_, np.int64, np.float16])
def test_scatter_keeps_the_data_type(dtype):
    data = sample((4,), dtype)
    updates = np.ones((2,), dtype)
    indices = np.array([[3], [0]], np.int32)
    (y,) = run_network(lambda n, t: [n.add_scatter(t["d"], t["i"], t["u"], trt.ScatterMode.ND)
                                     .get_output(0)], {"d": data, "i": indices, "u": updates})
    expected = data.copy()
    expected[[3, 0]] = updates
    assert y.dtype == data.dtype
    np.testing.assert_array_equal(y, expected)


_ONNX_REDUCTIONS = {trt.ScatterReduction.SUM: "add", trt.ScatterReduction.PROD: "mul",
                    trt.ScatterReduction.MAX: "max", trt.ScatterReduction.MIN: "min"}


@pytest.mark.parametrize("reduction", list(_ONNX_REDUCTIONS))
@pytest.mark.parametrize("mode", [trt.ScatterMode.ELEMENT, trt.ScatterMode.ND])
def test_scatter_reductions_fold_repeated_indices_like_onnx(reduction, mode):
    data = sample((3, 4))
    if mode == trt.ScatterMode.ELEMENT:
        indices = np.array([[1, 0, 2, 2], [1, 1, 0, -1]], np.int64)  # repeats in columns 0..3
        updates = sample((2, 4), seed=5) * 3
        op, attrs = "ScatterElements", {"axis": 0}
    else:
        indices = np.array([[1], [1], [0]], np.int64)  # row 1 twice
        updates = sample((3, 4), seed=5) * 3
        op, attrs = "ScatterND", {}

    def define(net, t):
        layer = net.add_scatter(t["data"], t["indices"], t["updates"], mode)
        layer.reduction = reduction
        return [layer.get_output(0)]

    (y,) = run_network(define, {"data": data, "indices": indices, "updates": updates})
    positive = np.where(indices < 0, indices + 3, indices)
    expected = onnx_reference(op, [data, positive, updates],
                              reduction=_ONNX_REDUCTIONS[reduction], **attrs)
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_scatter_reduction_refuses_bool_data():
    net = new_network()
    data = net.add_input("d", trt.bool, (3,))
    layer = net.add_scatter(data, net.add_input("i", trt.int32, (1, 1)),
                            net.add_input("u", trt.bool, (1,)), trt.ScatterMode.ND)
    layer.reduction = trt.ScatterReduction.MAX
    with pytest.raises(trt.NetworkError, match="reduction MAX of BOOL data"):
        _ = layer.get_output(0).shape


def test_scatter_refusals():
    net = new_network()
    data = net.add_input("d", trt.float32, (3, 4))
    indices = net.add_input("i", trt.int32, (2, 4))
    with pytest.raises(trt.NetworkError, match="updates have type INT32"):
        _ = net.add_scatter(data, indices, indices, trt.ScatterMode.ELEMENT).get_output(0).shape
    updates = net.add_input("u", trt.float32, (2, 3))
    with pytest.raises(trt.NetworkError, match="indices shape .* and updates shape .* differ"):
        _ = net.add_scatter(data, indices, updates, trt.ScatterMode.ELEMENT).get_output(0).shape
    nd_indices = net.add_input("n", trt.int32, (2, 1))
    with pytest.raises(trt.NetworkError, match=r"ND mode needs updates of shape \(2, 4\)"):
        _ = net.add_scatter(data, nd_indices, updates, trt.ScatterMode.ND).get_output(0).shape


@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("value_dtype", [np.float32, np.int32, np.int64, np.float16])
def test_one_hot_matches_onnx(axis, value_dtype):
    indices = np.array([[0, 1, 2], [3, -1, -5]], np.int32)
    values = np.array([-2, 5], value_dtype)
    depth = np.array(4, np.int32)

    def define(net, t):
        return [net.add_one_hot(t["indices"], t["values"], constant(net, depth), axis)
                .get_output(0)]

    (y,) = run_network(define, {"indices": indices, "values": values})
    expected = onnx_reference("OneHot", [indices.astype(np.int64), depth.astype(np.int64),
                                         values], axis=axis)
    assert y.dtype == values.dtype
    np.testing.assert_array_equal(y, expected)


def test_one_hot_refusals():
    net = new_network()
    indices = net.add_input("i", trt.int32, (3,))
    values = net.add_input("v", trt.float32, (3,))
    depth = constant(net, np.array(4, np.int32))
    with pytest.raises(trt.NetworkError, match=r"ONE_HOT\): values must be a 2-element"):
        net.add_one_hot(indices, values, depth, -1)
    pair = net.add_input("p", trt.float32, (2,))
    with pytest.raises(trt.NetworkError, match=r"axis 2 is out of range \[-2, 1\]"):
        net.add_one_hot(indices, pair, depth, 2)
    with pytest.raises(trt.NetworkError, match="depth must not be negative"):
        net.add_one_hot(indices, pair, constant(net, np.array(-1, np.int32)), 0)


@pytest.mark.parametrize("dtype", [np.float32, np.bool_, np.int32, np.float16])
def test_non_zero_matches_onnx(dtype):
    x = (sample((3, 4, 5), np.float32, seed=5) > 2).astype(dtype) * np.array(1, dtype)
    (y,) = run_network(lambda n, t: [n.add_non_zero(t["x"]).get_output(0)], {"x": x})
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, onnx_reference("NonZero", [x]))


def test_non_zero_shape_is_data_dependent_unless_the_value_is_known():
    net = new_network()
    x = net.add_input("x", trt.float32, (2, 3))
    assert tuple(net.add_non_zero(x).get_output(0).shape) == (2, -1)
    known = constant(net, np.array([[0, 1], [1, 1]], np.float32))
    assert tuple(net.add_non_zero(known).get_output(0).shape) == (2, 3)


def test_non_zero_feeds_gather_nd_through_a_transpose():
    x = np.zeros((3, 4), np.float32)
    x[0, 1], x[2, 3], x[1, 0] = 1, 2, 3

    def define(net, t):
        coords = net.add_non_zero(t["x"]).get_output(0)
        transposed = net.add_shuffle(coords)
        transposed.first_transpose = (1, 0)
        return [net.add_gather_v2(t["x"], transposed.get_output(0), trt.GatherMode.ND)
                .get_output(0)]

    (y,) = run_network(define, {"x": x})
    np.testing.assert_array_equal(y, x[np.nonzero(x)])
