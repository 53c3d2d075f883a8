"""Matrix multiply and einsum layers against NumPy and onnx's ReferenceEvaluator."""

import itertools

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import engine as trt
from tests.support import run_network

MO = trt.MatrixOperation
rng = np.random.default_rng(5)


def run_matmul(a, op0, b, op1, **kwargs):
    def define(net, t):
        layer = net.add_matrix_multiply(t["a"], op0, t["b"], op1)
        assert (layer.op0, layer.op1) == (op0, op1)
        return [layer.get_output(0)]

    (out,) = run_network(define, {"a": a, "b": b}, **kwargs)
    return out


def operand(op, batch, rows, cols, vector_length):
    """An array that ``op`` turns into batch x rows x cols (or a vector of ``vector_length``)."""
    if op == MO.VECTOR:
        return rng.standard_normal(batch + (vector_length,)).astype(np.float32)
    shape = batch + ((cols, rows) if op == MO.TRANSPOSE else (rows, cols))
    return rng.standard_normal(shape).astype(np.float32)


def as_matrix(x, op):
    if op == MO.TRANSPOSE:
        return np.swapaxes(x, -1, -2)
    return x


@pytest.mark.parametrize("op0, op1", list(itertools.product(MO, MO)))
def test_every_operation_pair_with_broadcast_batch(op0, op1):
    a = operand(op0, (2, 1), 3, 4, vector_length=4)
    b = operand(op1, (1, 5), 4, 6, vector_length=4)
    out = run_matmul(a, op0, b, op1)
    a_ref = as_matrix(a, op0)[..., None, :] if op0 == MO.VECTOR else as_matrix(a, op0)
    b_ref = as_matrix(b, op1)[..., :, None] if op1 == MO.VECTOR else as_matrix(b, op1)
    expected = np.matmul(a_ref.astype(np.float64), b_ref.astype(np.float64))
    if op1 == MO.VECTOR:
        expected = expected[..., 0]
    if op0 == MO.VECTOR:
        expected = expected[..., 0] if op1 == MO.VECTOR else expected[..., 0, :]
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_plain_matmul_matches_onnx_matmul():
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    b = rng.standard_normal((2, 4, 5)).astype(np.float32)
    node = helper.make_node("MatMul", ["a", "b"], ["c"])
    graph = helper.make_graph([node], "g", [
        helper.make_tensor_value_info("a", TensorProto.FLOAT, a.shape),
        helper.make_tensor_value_info("b", TensorProto.FLOAT, b.shape)],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)])
    (expected,) = ReferenceEvaluator(helper.make_model(graph)).run(None, {"a": a, "b": b})
    np.testing.assert_allclose(run_matmul(a, MO.NONE, b, MO.NONE), expected, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn])
def test_narrow_floats_accumulate_in_float32(dtype):
    a = rng.uniform(-1, 1, (3, 16)).astype(dtype)
    b = rng.uniform(-1, 1, (16, 2)).astype(dtype)
    out = run_matmul(a, MO.NONE, b, MO.NONE)
    assert out.dtype == np.dtype(dtype)
    expected = (a.astype(np.float32) @ b.astype(np.float32)).astype(dtype)
    np.testing.assert_array_equal(out, expected)


def test_dynamic_batch_and_rows():
    a = rng.standard_normal((4, 3, 5)).astype(np.float32)
    b = rng.standard_normal((1, 5, 2)).astype(np.float32)

    def define(net, t):
        out = net.add_matrix_multiply(t["a"], MO.NONE, t["b"], MO.NONE).get_output(0)
        assert tuple(out.shape) == (-1, -1, 2)
        return [out]

    (out,) = run_network(define, {"a": a, "b": b}, dynamic={"a": (-1, -1, 5)})
    np.testing.assert_allclose(out, a @ b, rtol=1e-5)


@pytest.mark.parametrize("shape0, op0, shape1, op1, message", [
    ((2, 3), MO.NONE, (4, 5), MO.NONE, "inner dimensions differ"),
    ((2, 3), MO.TRANSPOSE, (3, 5), MO.NONE, "inner dimensions differ"),
    ((3,), MO.NONE, (3, 5), MO.NONE, "input 0 has rank 1; with op0 = NONE it needs at least 2"),
    ((2, 2, 3), MO.NONE, (3, 5), MO.NONE, "has 1 batch dimensions but input 1"),
    ((2, 2, 3), MO.NONE, (3, 3, 5), MO.NONE, "batch dimensions: dimension 0 cannot broadcast"),
])
def test_matmul_refusals(shape0, op0, shape1, op1, message):
    net = trt.Builder(trt.Logger()).create_network(0)
    a = net.add_input("a", trt.float32, shape0)
    b = net.add_input("b", trt.float32, shape1)
    with pytest.raises(trt.NetworkError, match=r"MATRIX_MULTIPLY.*" + message):
        net.add_matrix_multiply(a, op0, b, op1)


def test_matmul_refuses_integers_and_mixed_types():
    net = trt.Builder(trt.Logger()).create_network(0)
    i = net.add_input("i", trt.int32, (2, 2))
    f = net.add_input("f", trt.float32, (2, 2))
    h = net.add_input("h", trt.float16, (2, 2))
    with pytest.raises(trt.NetworkError, match=r"input 0 has type INT32"):
        net.add_matrix_multiply(i, MO.NONE, i, MO.NONE)
    with pytest.raises(trt.NetworkError, match=r"input 0 has type FLOAT but input 1 has type HALF"):
        net.add_matrix_multiply(f, MO.NONE, h, MO.NONE)


def onnx_einsum(equation, inputs):
    names = [f"x{i}" for i in range(len(inputs))]
    node = helper.make_node("Einsum", names, ["y"], equation=equation)
    graph = helper.make_graph([node], "g", [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape)
        for n, a in zip(names, inputs)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    (out,) = ReferenceEvaluator(helper.make_model(graph)).run(None, dict(zip(names, inputs)))
    return out


@pytest.mark.parametrize("equation, shapes", [
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("ij", [(2, 3)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ik, kj -> ij", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]),
    (",i->i", [(), (3,)]),
])
def test_einsum_matches_onnx_einsum(equation, shapes):
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    names = [f"x{i}" for i in range(len(arrays))]

    def define(net, t):
        layer = net.add_einsum([t[n] for n in names], equation)
        assert layer.equation == equation
        return [layer.get_output(0)]

    (out,) = run_network(define, dict(zip(names, arrays)))
    expected = onnx_einsum(equation.replace(" ", ""), arrays)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_einsum_narrow_floats_with_dynamic_shape(dtype):
    a = rng.standard_normal((3, 4)).astype(dtype)
    b = rng.standard_normal((4, 2)).astype(dtype)

    def define(net, t):
        out = net.add_einsum([t["a"], t["b"]], "ij,jk->ik").get_output(0)
        assert tuple(out.shape) == (-1, 2)
        return [out]

    (out,) = run_network(define, {"a": a, "b": b}, dynamic={"a": (-1, 4)})
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, (a.astype(np.float32) @ b.astype(np.float32)).astype(dtype))


@pytest.mark.parametrize("equation, shapes, message", [
    ("ii->i", [(3, 3)], "repeat within the input term 'ii'"),
    ("...ij->ij", [(2, 3)], "ellipsis"),
    ("iJ->i", [(2, 3)], "lowercase letters"),
    ("ij->k", [(2, 3)], "appear in no input"),
    ("ij,jk->ik", [(2, 3)], "has 2 input term\\(s\\) but the layer has 1"),
    ("ijk->i", [(2, 3)], "names 3 dimensions but input 0 has rank 2"),
    ("ij,jk->ik", [(2, 3), (4, 5)], "subscript 'j' is 3 in one place and 4"),
    ("i,i,i->i", [(2,), (2,), (2,)], "one or two inputs"),
])
def test_einsum_refusals(equation, shapes, message):
    net = trt.Builder(trt.Logger()).create_network(0)
    tensors = [net.add_input(f"x{i}", trt.float32, s) for i, s in enumerate(shapes)]
    with pytest.raises(trt.NetworkError, match=r"EINSUM.*" + message):
        net.add_einsum(tensors, equation)


def test_einsum_refuses_integers():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.int32, (2, 3))
    with pytest.raises(trt.NetworkError, match=r"EINSUM.*input 0 has type INT32"):
        net.add_einsum([x], "ij->ji")
