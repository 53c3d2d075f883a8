"""Activation, unary, parametric ReLU and cast layers against NumPy written here."""

import math

import ml_dtypes
import numpy as np
import pytest

import engine as trt
from tests.support import run_network

AT = trt.ActivationType
UO = trt.UnaryOperation
rng = np.random.default_rng(11)
erf = np.vectorize(math.erf)


def run_activation(x, kind, alpha=None, beta=None, **kwargs):
    def define(net, t):
        layer = net.add_activation(t["x"], kind)
        if alpha is not None:
            layer.alpha = alpha
        if beta is not None:
            layer.beta = beta
        return [layer.get_output(0)]

    (out,) = run_network(define, {"x": x}, **kwargs)
    return out


ACTIVATIONS = {  # (alpha, beta, formula written from TensorRT's documentation)
    AT.RELU: (None, None, lambda x, a, b: np.maximum(x, 0)),
    AT.SIGMOID: (None, None, lambda x, a, b: 1 / (1 + np.exp(-x))),
    AT.TANH: (None, None, lambda x, a, b: np.tanh(x)),
    AT.LEAKY_RELU: (0.1, None, lambda x, a, b: np.where(x >= 0, x, a * x)),
    AT.ELU: (0.7, None, lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1))),
    AT.SELU: (1.67, 1.05, lambda x, a, b: np.where(x > 0, b * x, b * (a * np.exp(x) - a))),
    AT.SOFTSIGN: (None, None, lambda x, a, b: x / (1 + np.abs(x))),
    AT.SOFTPLUS: (0.5, 2.0, lambda x, a, b: a * np.log(np.exp(b * x) + 1)),
    AT.CLIP: (-0.5, 0.75, lambda x, a, b: np.clip(x, a, b)),
    AT.HARD_SIGMOID: (0.2, 0.5, lambda x, a, b: np.clip(a * x + b, 0, 1)),
    AT.SCALED_TANH: (1.5, 0.5, lambda x, a, b: a * np.tanh(b * x)),
    AT.THRESHOLDED_RELU: (0.3, None, lambda x, a, b: np.where(x > a, x, 0)),
    AT.GELU_ERF: (None, None, lambda x, a, b: 0.5 * x * (1 + erf(x / np.sqrt(2)))),
    AT.GELU_TANH: (None, None, lambda x, a, b: 0.5 * x * (
        1 + np.tanh(np.sqrt(2 / np.pi) * (0.044715 * x ** 3 + x)))),
}


def test_every_activation_type_is_covered():
    assert set(ACTIVATIONS) == set(AT)


@pytest.mark.parametrize("kind", list(AT))
def test_activation_matches_documented_formula(kind):
    alpha, beta, formula = ACTIVATIONS[kind]
    x = np.concatenate([rng.uniform(-3, 3, 22), [0.0, 0.3]]).astype(np.float32).reshape(2, 3, 4)
    out = run_activation(x, kind, alpha, beta)
    # alpha and beta are float32 in TensorRT, so the reference uses their float32 values.
    a, b = (float(np.float32(v or 0.0)) for v in (alpha, beta))
    expected = formula(x.astype(np.float64), a, b)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=2e-6, atol=1e-6)


def test_activation_alpha_and_beta_default_to_zero_and_type_shadows_layer_type():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (2,))
    layer = net.add_activation(x, AT.CLIP)
    assert (layer.type, layer.alpha, layer.beta) == (AT.CLIP, 0.0, 0.0)
    assert layer.layer_type == trt.LayerType.ACTIVATION


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_activation_on_narrow_floats(dtype):
    x = rng.uniform(-3, 3, (4, 5)).astype(dtype)
    out = run_activation(x, AT.SIGMOID)
    assert out.dtype == np.dtype(dtype)
    expected = (1 / (1 + np.exp(-x.astype(np.float32)))).astype(dtype)
    np.testing.assert_array_equal(out, expected)


def test_activation_with_dynamic_shape():
    x = rng.standard_normal((3, 2, 5)).astype(np.float32)
    out = run_activation(x, AT.RELU, dynamic={"x": (-1, 2, -1)})
    np.testing.assert_array_equal(out, np.maximum(x, 0))


def test_activation_refuses_integers():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.int32, (2,))
    with pytest.raises(trt.NetworkError, match=r"ACTIVATION.*input has type INT32; RELU accepts"):
        net.add_activation(x, AT.RELU)


def run_unary(x, op, **kwargs):
    (out,) = run_network(lambda net, t: [net.add_unary(t["x"], op).get_output(0)], {"x": x},
                         **kwargs)
    return out


UNARY = {  # (reference, low, high): inputs drawn inside the function's domain
    UO.EXP: (np.exp, -3, 3), UO.LOG: (np.log, 0.1, 5), UO.SQRT: (np.sqrt, 0, 5),
    UO.RECIP: (lambda x: 1 / x, 0.5, 4), UO.ABS: (np.abs, -3, 3), UO.NEG: (np.negative, -3, 3),
    UO.SIN: (np.sin, -3, 3), UO.COS: (np.cos, -3, 3), UO.TAN: (np.tan, -1.2, 1.2),
    UO.SINH: (np.sinh, -3, 3), UO.COSH: (np.cosh, -3, 3), UO.ASIN: (np.arcsin, -0.99, 0.99),
    UO.ACOS: (np.arccos, -0.99, 0.99), UO.ATAN: (np.arctan, -5, 5),
    UO.ASINH: (np.arcsinh, -5, 5), UO.ACOSH: (np.arccosh, 1, 5),
    UO.ATANH: (np.arctanh, -0.99, 0.99), UO.CEIL: (np.ceil, -5, 5),
    UO.FLOOR: (np.floor, -5, 5), UO.ERF: (erf, -3, 3), UO.SIGN: (np.sign, -3, 3),
    UO.ROUND: (np.round, -5, 5),
}


def test_every_unary_operation_is_covered():
    assert set(UNARY) | {UO.NOT, UO.ISINF, UO.ISNAN} == set(UO)


@pytest.mark.parametrize("op", list(UNARY))
def test_unary_on_float_matches_numpy(op):
    reference, low, high = UNARY[op]
    x = rng.uniform(low, high, (3, 4)).astype(np.float32)
    out = run_unary(x, op)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, reference(x.astype(np.float64)), rtol=2e-6, atol=1e-7)


def test_round_goes_to_even_on_ties():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4], np.float32)
    np.testing.assert_array_equal(run_unary(x, UO.ROUND), [0, 2, 2, -0, -2, 2])


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("op, reference", [(UO.ABS, np.abs), (UO.NEG, np.negative),
                                           (UO.SIGN, np.sign)])
def test_exact_unary_operations_on_integers(op, reference, dtype):
    x = np.array([-(2 ** 30) - 3, -1, 0, 5], dtype)
    out = run_unary(x, op)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, reference(x))


def test_not_on_bool_and_isinf_isnan_give_bool():
    b = np.array([True, False])
    np.testing.assert_array_equal(run_unary(b, UO.NOT), [False, True])
    x = np.array([np.inf, -np.inf, np.nan, 1.0], np.float32)
    np.testing.assert_array_equal(run_unary(x, UO.ISINF), [True, True, False, False])
    np.testing.assert_array_equal(run_unary(x, UO.ISNAN), [False, False, True, False])


def test_unary_out_of_domain_gives_nan_without_a_warning():
    out = run_unary(np.array([-1.0, 4.0], np.float32), UO.SQRT)
    assert np.isnan(out[0]) and out[1] == 2.0


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_unary_on_narrow_floats(dtype):
    x = rng.uniform(0.1, 3, (6,)).astype(dtype)
    out = run_unary(x, UO.LOG, dynamic={"x": (-1,)})
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, np.log(x.astype(np.float32)).astype(dtype))


@pytest.mark.parametrize("op, dtype, message", [
    (UO.NOT, trt.float32, "NOT accepts BOOL"),
    (UO.EXP, trt.int32, "EXP accepts"),
    (UO.ISNAN, trt.int64, "ISNAN accepts"),
    (UO.ABS, trt.bool, "ABS accepts"),
])
def test_unary_refusals(op, dtype, message):
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", dtype, (2,))
    with pytest.raises(trt.NetworkError, match=r"UNARY.*" + message):
        net.add_unary(x, op)


@pytest.mark.parametrize("slope_shape", [(1, 3, 1), (2, 3, 4), (1, 1, 1)])
def test_parametric_relu_broadcasts_its_slope(slope_shape):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    slope = rng.uniform(0.1, 0.5, slope_shape).astype(np.float32)

    def define(net, t):
        return [net.add_parametric_relu(t["x"], t["s"]).get_output(0)]

    (out,) = run_network(define, {"x": x, "s": slope}, dynamic={"x": (-1, 3, 4)})
    np.testing.assert_allclose(out, np.where(x >= 0, x, slope * x), rtol=1e-6)


def test_parametric_relu_refuses_a_slope_that_does_not_broadcast():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (2, 3))
    with pytest.raises(trt.NetworkError, match=r"PARAMETRIC_RELU.*slope dimension 1 is 2"):
        net.add_parametric_relu(x, net.add_input("s", trt.float32, (1, 2)))
    with pytest.raises(trt.NetworkError, match=r"slope has rank 1 but the input has rank 2"):
        net.add_parametric_relu(x, net.add_input("r", trt.float32, (3,)))
    with pytest.raises(trt.NetworkError, match=r"input has type FLOAT but slope has type HALF"):
        net.add_parametric_relu(x, net.add_input("h", trt.float16, (1, 3)))


CAST_TYPES = [trt.float32, trt.float16, trt.bfloat16, trt.fp8, trt.int8, trt.int32, trt.int64,
              trt.uint8, trt.bool]


def uint8_cast_allowed(source, target) -> bool:
    """TensorRT's rule: UINT8 only as network I/O, cast from or to FLOAT or HALF."""
    if trt.uint8 not in (source, target):
        return True
    other = target if source == trt.uint8 else source
    return other in (trt.float32, trt.float16)


@pytest.mark.parametrize("source", CAST_TYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("target", CAST_TYPES, ids=lambda d: d.name)
def test_cast_between_every_pair_of_types(source, target):
    x = np.array([0.0, 1.0, 2.0, 3.0, 7.0, 12.0, 0.0, 4.0]).astype(trt.nptype(source))
    values = x.astype(np.float64)  # what the source type holds (BOOL holds 0 and 1)

    def define(net, t):
        layer = net.add_cast(t["x"], target)
        assert layer.to_type == target
        return [layer.get_output(0)]

    if not uint8_cast_allowed(source, target):
        with pytest.raises(AssertionError, match="UINT8, which"):
            run_network(define, {"x": x})
        return
    (out,) = run_network(define, {"x": x})
    assert out.dtype == np.dtype(trt.nptype(target))
    expected = values != 0 if target == trt.bool else values.astype(trt.nptype(target))
    np.testing.assert_array_equal(out.astype(np.float64), expected.astype(np.float64))


def test_cast_float_to_integer_truncates_toward_zero_and_nonzero_is_true():
    x = np.array([1.9, -1.9, 2.5, -0.4, 0.0], np.float32)
    (ints, bools) = run_network(
        lambda net, t: [net.add_cast(t["x"], trt.int32).get_output(0),
                        net.add_cast(t["x"], trt.bool).get_output(0)], {"x": x})
    np.testing.assert_array_equal(ints, [1, -1, 2, 0, 0])
    np.testing.assert_array_equal(bools, [True, True, True, True, False])


def test_cast_int64_to_int32_keeps_values_and_dynamic_shape():
    x = np.array([[3, -4], [2 ** 31 - 1, -(2 ** 31)]], np.int64)
    (out,) = run_network(lambda net, t: [net.add_cast(t["x"], trt.int32).get_output(0)],
                         {"x": x}, dynamic={"x": (-1, 2)})
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, x)


def test_cast_to_int4_is_refused():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (2,))
    with pytest.raises(trt.NetworkError, match=r"CAST.*to_type INT4 is not a cast target"):
        net.add_cast(x, trt.int4)


@pytest.mark.parametrize("implementation", ["erf", "erf_polynomials"])
def test_erf_matches_the_correctly_rounded_one(implementation):
    """The CPU kernels' erf (SciPy's where installed; else a Taylor series near 0 and
    piecewise polynomials fitted to ``math.erf``, checked here whether SciPy is there or not)
    against ``math.erf``: relative error below 1e-13 on a dense grid, float32 results equal
    on random samples, and the special values kept."""
    import math

    from engine.kernels.cpu import math_numeric

    erf = getattr(math_numeric, implementation)

    exact = np.vectorize(math.erf, otypes=[np.float64])
    grid = np.concatenate([np.linspace(-7, 7, 400_001), np.geomspace(1e-300, 1, 2001),
                           -np.geomspace(1e-300, 1, 2001), np.arange(0, 6.25, 0.25)])
    want, got = exact(grid), erf(grid)
    nonzero = want != 0
    assert np.all(got[~nonzero] == 0)
    assert (np.abs(got - want)[nonzero] / np.abs(want[nonzero])).max() < 1e-13
    samples = np.random.default_rng(7).standard_normal(200_000).astype(np.float32) * 3
    np.testing.assert_array_equal(erf(samples).astype(np.float32),
                                  exact(samples.astype(np.float64)).astype(np.float32))
    special = erf(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 6.0, -40.0]))
    np.testing.assert_array_equal(special[[0, 2, 3, 5, 6]], [0.0, 1.0, -1.0, 1.0, -1.0])
    assert np.signbit(special[1]) and np.isnan(special[4])
