"""Elementwise and select layers against NumPy written here."""

import ml_dtypes
import numpy as np
import pytest

import engine as trt
from tests.support import run_network

EW = trt.ElementWiseOperation
rng = np.random.default_rng(7)


def run_elementwise(a, b, op, **kwargs):
    (out,) = run_network(lambda net, t: [net.add_elementwise(t["a"], t["b"], op).get_output(0)],
                         {"a": a, "b": b}, **kwargs)
    return out


def trunc_div(a, b):
    return (np.abs(a) // np.abs(b)) * np.sign(a) * np.sign(b)


FLOAT_REFERENCE = {
    EW.SUM: np.add, EW.PROD: np.multiply, EW.MAX: np.maximum, EW.MIN: np.minimum,
    EW.SUB: np.subtract, EW.DIV: np.divide, EW.POW: np.power,
    EW.FLOOR_DIV: lambda a, b: np.floor(a / b),
    EW.EQUAL: np.equal, EW.GREATER: np.greater, EW.LESS: np.less,
}


@pytest.mark.parametrize("op", list(FLOAT_REFERENCE))
def test_float_operations_broadcast_and_match_numpy(op):
    a = rng.uniform(0.5, 3.0, (2, 3, 4)).astype(np.float32)
    b = rng.uniform(0.5, 3.0, (1, 3, 1)).astype(np.float32)
    a[0, 0, 0] = b[0, 0, 0]  # one equal pair, so EQUAL has a True
    out = run_elementwise(a, b, op)
    expected = FLOAT_REFERENCE[op](a, b)
    assert out.shape == (2, 3, 4)
    if op in (EW.EQUAL, EW.GREATER, EW.LESS):
        assert out.dtype == np.bool_
        np.testing.assert_array_equal(out, expected)
    else:
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("op", [EW.SUM, EW.PROD, EW.MAX, EW.MIN, EW.SUB, EW.DIV, EW.FLOOR_DIV,
                                EW.EQUAL, EW.GREATER, EW.LESS])
def test_integer_operations_are_exact_and_stay_integer(op, dtype):
    a = np.array([[-7, -6, 7, 6, 0, 9]], dtype)
    b = np.array([[2], [-2], [3]], dtype)
    reference = {
        EW.SUM: a + b, EW.PROD: a * b, EW.MAX: np.maximum(a, b), EW.MIN: np.minimum(a, b),
        EW.SUB: a - b, EW.DIV: trunc_div(a, b), EW.FLOOR_DIV: a // b,
        EW.EQUAL: a == b, EW.GREATER: a > b, EW.LESS: a < b,
    }[op]
    out = run_elementwise(a, b, op)
    assert out.dtype == reference.dtype
    np.testing.assert_array_equal(out, reference)


def test_integer_div_truncates_and_floor_div_floors():
    a = np.array([-7, 7, -7, 7], np.int64)
    b = np.array([2, -2, -2, 2], np.int64)
    np.testing.assert_array_equal(run_elementwise(a, b, EW.DIV), [-3, -3, 3, 3])
    np.testing.assert_array_equal(run_elementwise(a, b, EW.FLOOR_DIV), [-4, -4, 3, 3])


def test_int64_arithmetic_is_exact_beyond_float_precision():
    a = np.array([2 ** 62 + 1, -(2 ** 53) - 1], np.int64)
    b = np.array([3, 1], np.int64)
    np.testing.assert_array_equal(run_elementwise(a, b, EW.SUM), a + b)
    np.testing.assert_array_equal(run_elementwise(a, b, EW.DIV), trunc_div(a, b))


@pytest.mark.parametrize("op, reference", [(EW.AND, np.logical_and), (EW.OR, np.logical_or),
                                           (EW.XOR, np.logical_xor)])
def test_logical_operations_on_bool(op, reference):
    a = np.array([[True, False, True, False]])
    b = np.array([[True], [False]])
    out = run_elementwise(a, b, op)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, reference(a, b))


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("op", [EW.SUM, EW.PROD, EW.DIV, EW.POW, EW.MAX])
def test_narrow_floats_compute_then_round_to_their_type(op, dtype):
    a = rng.uniform(0.5, 2.0, (3, 4)).astype(dtype)
    b = rng.uniform(0.5, 2.0, (3, 4)).astype(dtype)
    out = run_elementwise(a, b, op)
    assert out.dtype == np.dtype(dtype)
    expected = FLOAT_REFERENCE[op](a.astype(np.float32), b.astype(np.float32)).astype(dtype)
    np.testing.assert_array_equal(out, expected)


def test_int8_is_computed_as_quantized_values_that_saturate():
    a = np.array([100, -100, 7, 3], np.int8)
    b = np.array([100, -100, 2, 2], np.int8)
    np.testing.assert_array_equal(run_elementwise(a, b, EW.SUM), [127, -128, 9, 5])
    np.testing.assert_array_equal(run_elementwise(a, b, EW.DIV), [1, 1, 4, 2])  # 3.5, 1.5 -> even


def test_dynamic_shapes_broadcast_at_run_time():
    a = rng.standard_normal((5, 3)).astype(np.float32)
    b = rng.standard_normal((1, 3)).astype(np.float32)

    def define(net, t):
        out = net.add_elementwise(t["a"], t["b"], EW.SUB).get_output(0)
        assert tuple(out.shape) == (-1, 3)
        return [out]

    (out,) = run_network(define, {"a": a, "b": b}, dynamic={"a": (-1, 3)})
    np.testing.assert_allclose(out, a - b)


def test_dynamic_dimension_meeting_one_stays_unknown():
    net = trt.Builder(trt.Logger()).create_network(0)
    a = net.add_input("a", trt.float32, (-1, 1))
    b = net.add_input("b", trt.float32, (1, -1))
    assert tuple(net.add_elementwise(a, b, EW.SUM).get_output(0).shape) == (-1, -1)


@pytest.mark.parametrize("shapes, dtypes, op, message", [
    (((2, 3), (3,)), (trt.float32, trt.float32), EW.SUM, "same rank"),
    (((2, 3), (2, 4)), (trt.float32, trt.float32), EW.SUM, "dimension 1 cannot broadcast"),
    (((2,), (2,)), (trt.float32, trt.int32), EW.SUM, "input 0 has type FLOAT but input 1 has "
                                                     "type INT32"),
    (((2,), (2,)), (trt.float32, trt.float32), EW.AND, "AND accepts BOOL"),
    (((2,), (2,)), (trt.bool, trt.bool), EW.SUM, "input 0 has type BOOL; SUM accepts"),
    (((2,), (2,)), (trt.int32, trt.int32), EW.POW, "POW accepts"),
    (((2,), (2,)), (trt.bool, trt.bool), EW.EQUAL, "EQUAL accepts"),
])
def test_refusals_name_the_layer_and_the_problem(shapes, dtypes, op, message):
    net = trt.Builder(trt.Logger()).create_network(0)
    a = net.add_input("a", dtypes[0], shapes[0])
    b = net.add_input("b", dtypes[1], shapes[1])
    with pytest.raises(trt.NetworkError, match=r"ELEMENTWISE.*" + message):
        net.add_elementwise(a, b, op)
    assert net.num_layers == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.int64, np.bool_])
def test_select_picks_then_or_else_with_broadcasting(dtype):
    condition = np.array([[True], [False], [True]])
    then_values = (np.arange(12).reshape(3, 4) % 2).astype(dtype)
    else_values = np.ones((1, 4), dtype)

    def define(net, t):
        return [net.add_select(t["c"], t["t"], t["e"]).get_output(0)]

    (out,) = run_network(define, {"c": condition, "t": then_values, "e": else_values})
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, np.where(condition, then_values, else_values))


def test_select_with_dynamic_condition():
    condition = rng.standard_normal((4, 2)) > 0
    a = rng.standard_normal((4, 2)).astype(np.float32)
    b = rng.standard_normal((4, 2)).astype(np.float32)
    (out,) = run_network(lambda net, t: [net.add_select(t["c"], t["a"], t["b"]).get_output(0)],
                         {"c": condition, "a": a, "b": b}, dynamic={"c": (-1, 2), "a": (-1, 2)})
    np.testing.assert_array_equal(out, np.where(condition, a, b))


def test_select_refuses_a_non_bool_condition_and_mixed_branches():
    net = trt.Builder(trt.Logger()).create_network(0)
    c = net.add_input("c", trt.float32, (2,))
    a = net.add_input("a", trt.float32, (2,))
    b = net.add_input("b", trt.int32, (2,))
    with pytest.raises(trt.NetworkError, match=r"SELECT.*condition has type FLOAT; it must be "
                                               r"BOOL"):
        net.add_select(c, a, a)
    cond = net.add_input("cond", trt.bool, (2,))
    with pytest.raises(trt.NetworkError, match=r"then_input has type FLOAT but else_input has "
                                               r"type INT32"):
        net.add_select(cond, a, b)
