"""Shape, Shuffle, Concatenation, Squeeze, Unsqueeze and Assertion layers, and shape-tensor
chains; checked against onnx's ReferenceEvaluator and NumPy written here."""

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import engine as trt
from tests.support import build_engine, run_network

# Every dtype a data-movement layer carries unchanged. Not UINT8: TensorRT allows it only as
# network I/O through a cast (tests/quantization covers that rule).
ALL_DTYPES = [np.float32, np.float16, ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, np.int8,
              np.int32, np.int64, np.bool_]


def onnx_reference(op: str, inputs: list, **attributes) -> np.ndarray:
    """The output of a one-node ONNX model of ``op`` run by onnx's ReferenceEvaluator."""
    names = [f"in{i}" for i in range(len(inputs))]
    node = helper.make_node(op, names, ["out"], **attributes)
    graph = helper.make_graph(
        [node], op,
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
         for n, a in zip(names, inputs)],
        [helper.make_tensor_value_info("out", TensorProto.UNDEFINED, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))[0]


def sample(shape, dtype=np.float32, seed=0):
    values = np.random.default_rng(seed).integers(-5, 6, size=shape)
    return values.astype(dtype)


def constant(net, array):
    array = np.asarray(array)
    return net.add_constant(array.shape, array).get_output(0)


def new_network():
    return trt.Builder(trt.Logger()).create_network(0)


# -- Shape ---------------------------------------------------------------------------------------
def test_shape_gives_int64_and_its_value_at_build_time():
    net = new_network()
    x = net.add_input("x", trt.float32, (2, 3, 4))
    out = net.add_shape(x).get_output(0)
    assert out.dtype == trt.int64 and tuple(out.shape) == (3,)
    (y,) = run_network(lambda n, t: [n.add_shape(t["x"]).get_output(0)],
                       {"x": sample((2, 3, 4))})
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [2, 3, 4])


def test_shape_of_a_dynamic_input_is_resolved_at_run_time():
    x = sample((5, 4))
    (y,) = run_network(lambda n, t: [n.add_shape(t["x"]).get_output(0)], {"x": x},
                       dynamic={"x": (-1, 4)})
    np.testing.assert_array_equal(y, [5, 4])


# -- Shuffle -------------------------------------------------------------------------------------
def test_shuffle_transpose_reshape_transpose_matches_onnx():
    x = sample((1, 3, 4, 5))

    def define(net, t):
        layer = net.add_shuffle(t["x"])
        layer.first_transpose = (0, 2, 1, 3)
        layer.reshape_dims = (1, 4, 5, 3)
        layer.second_transpose = trt.Permutation((0, 2, 1, 3))
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x})
    step = onnx_reference("Transpose", [x], perm=[0, 2, 1, 3])
    step = onnx_reference("Reshape", [step, np.array([1, 4, 5, 3], np.int64)])
    np.testing.assert_array_equal(y, onnx_reference("Transpose", [step], perm=[0, 2, 1, 3]))


@pytest.mark.parametrize("dims, placeholder", [((0, 0, -1), True), ((0, 0, 0, 0), True),
                                               ((3, -1), True), ((-1,), False), ((), True)])
def test_shuffle_reshape_dims_match_onnx(dims, placeholder):
    x = sample((1, 3, 4, 5)) if dims != () else sample((1, 1))

    def define(net, t):
        layer = net.add_shuffle(t["x"])
        layer.zero_is_placeholder = placeholder
        layer.reshape_dims = dims
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x})
    expected = onnx_reference("Reshape", [x, np.array(dims, np.int64)],
                              allowzero=0 if placeholder else 1)
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y, expected)


def test_shuffle_zero_without_placeholder_makes_an_empty_dim():
    def define(net, t):
        empty = net.add_constant((0,), np.zeros(0, np.float32)).get_output(0)
        layer = net.add_shuffle(empty)
        layer.zero_is_placeholder = False
        layer.reshape_dims = (1, 3, 0)
        cat = net.add_concatenation([t["x"], layer.get_output(0)])
        cat.axis = 2
        return [cat.get_output(0)]

    x = sample((1, 3, 4))
    (y,) = run_network(define, {"x": x})
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_shuffle_carries_every_dtype(dtype):
    x = sample((2, 3, 4), dtype)

    def define(net, t):
        layer = net.add_shuffle(t["x"])
        layer.first_transpose = (2, 0, 1)
        layer.reshape_dims = (4, -1)
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x})
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y.astype(np.float32),
                                  x.transpose(2, 0, 1).reshape(4, 6).astype(np.float32))


def test_shuffle_with_a_constant_shape_tensor_is_static():
    net = new_network()
    x = net.add_input("x", trt.float32, (2, 6))
    layer = net.add_shuffle(x)
    layer.set_input(1, constant(net, np.array([3, -1], np.int32)))
    assert tuple(layer.get_output(0).shape) == (3, 4)


def test_shape_gather_concat_reshape_chain_is_static_for_static_inputs():
    net = new_network()
    x = net.add_input("x", trt.float32, (2, 3, 4))
    shape = net.add_shape(x).get_output(0)
    last_two = net.add_gather(shape, constant(net, np.array([1, 2], np.int64)), 0).get_output(0)
    dims = net.add_concatenation([constant(net, np.array([-1], np.int64)), last_two])
    layer = net.add_shuffle(x)
    layer.set_input(1, dims.get_output(0))
    layer.first_transpose = (1, 0, 2)
    assert tuple(layer.get_output(0).shape) == (2, 3, 4)
    leading = net.add_slice(shape, (0,), (2,), (1,)).get_output(0)
    flattened = net.add_shuffle(x)
    flattened.set_input(1, net.add_concatenation([leading, constant(
        net, np.array([-1], np.int64))]).get_output(0))
    flattened.reshape_dims = (99,)  # input 1 takes precedence
    assert tuple(flattened.get_output(0).shape) == (2, 3, 4)


def _flatten_leading(net, t):
    """Reshape x [N, 4] to [N * 2, 2] through Shape -> Gather -> Concat -> Shuffle."""
    x = t["x"]
    shape = net.add_shape(x).get_output(0)
    batch = net.add_gather(shape, constant(net, np.array([0], np.int64)), 0).get_output(0)
    dims = net.add_concatenation([batch, constant(net, np.array([2, 2], np.int64))])
    layer = net.add_shuffle(x)
    layer.set_input(1, dims.get_output(0))
    return [layer.get_output(0), shape]


def test_shape_chain_with_dynamic_input_runs_at_every_shape():
    for rows in (1, 3, 7):
        x = sample((rows, 4), seed=rows)
        y, shape = run_network(_flatten_leading, {"x": x}, dynamic={"x": (-1, 4)})
        np.testing.assert_array_equal(shape, [rows, 4])
        np.testing.assert_array_equal(y, x.reshape(rows, 2, 2))


def test_shape_chain_output_is_dynamic_in_the_engine_and_concrete_in_a_context():
    x = sample((3, 4))
    engine = build_engine(_flatten_leading, {"x": x}, dynamic={"x": (-1, 4)})
    assert -1 in tuple(engine.get_tensor_shape("out0"))
    context = engine.create_execution_context()
    context.set_input_shape("x", (3, 4))
    assert tuple(context.get_tensor_shape("out0")) == (3, 2, 2)


@pytest.mark.parametrize("configure, match", [
    (lambda layer: setattr(layer, "reshape_dims", (5, 5)), "the volumes differ"),
    (lambda layer: setattr(layer, "reshape_dims", (-1, -1)), "at most one dim may be -1"),
    (lambda layer: setattr(layer, "reshape_dims", (5, -1)), "cannot infer -1"),
    (lambda layer: setattr(layer, "reshape_dims", (2, -3)), "invalid dim -3"),
    (lambda layer: setattr(layer, "reshape_dims", (0, 0, 0, 0)), "placeholder 0 at index 3"),
    (lambda layer: setattr(layer, "first_transpose", (0, 0, 1)), "not a permutation"),
])
def test_shuffle_refusals_name_the_layer(configure, match):
    net = new_network()
    x = net.add_input("x", trt.float32, (2, 3, 4))
    layer = net.add_shuffle(x)
    layer.name = "reshaper"
    configure(layer)
    with pytest.raises(trt.NetworkError, match="'reshaper' \\(SHUFFLE\\): .*" + match):
        _ = layer.get_output(0).shape


def test_shuffle_refuses_a_float_shape_tensor():
    net = new_network()
    x = net.add_input("x", trt.float32, (2, 3))
    layer = net.add_shuffle(x)
    with pytest.raises(trt.NetworkError, match="must be an INT32 or INT64 tensor"):
        layer.set_input(1, constant(net, np.array([6.0], np.float32)))
        _ = layer.get_output(0).shape


def test_shuffle_with_unknown_dims_propagates_them():
    net = new_network()
    x = net.add_input("x", trt.float32, (-1, 3, 4))
    layer = net.add_shuffle(x)
    layer.reshape_dims = (0, -1)
    assert tuple(layer.get_output(0).shape) == (-1, 12)
    layer.reshape_dims = (-1, 4)
    assert tuple(layer.get_output(0).shape) == (-1, 4)


def test_shuffle_attributes_survive_the_plan():
    x = sample((2, 3, 4))

    def define(net, t):
        layer = net.add_shuffle(t["x"])
        layer.first_transpose = (1, 2, 0)
        layer.reshape_dims = (0, 8)
        layer.second_transpose = (1, 0)
        layer.zero_is_placeholder = True
        return [layer.get_output(0)]

    engine = build_engine(define, {"x": x})
    restored = [layer for layer in engine._network._layers if isinstance(layer,
                                                                          trt.IShuffleLayer)][0]
    assert restored.first_transpose[:3] == (1, 2, 0) and restored.reshape_dims == (0, 8)
    (y,) = run_network(define, {"x": x})
    np.testing.assert_array_equal(y, x.transpose(1, 2, 0).reshape(3, 8).T)


# -- Concatenation -------------------------------------------------------------------------------
def test_concatenation_default_axis_is_rank_minus_three():
    net = new_network()
    a = net.add_input("a", trt.float32, (1, 2, 3, 4))
    b = net.add_input("b", trt.float32, (1, 5, 3, 4))
    layer = net.add_concatenation([a, b])
    assert layer.axis == 1 and tuple(layer.get_output(0).shape) == (1, 7, 3, 4)
    c = net.add_input("c", trt.float32, (2, 3))
    assert net.add_concatenation([c, c]).axis == 0


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_concatenation_matches_onnx(dtype, axis):
    a, b, c = (sample(s, dtype, seed) for seed, s in enumerate(
        [(2, 3, 4)] * 3))

    def define(net, t):
        layer = net.add_concatenation([t["a"], t["b"], t["c"]])
        layer.axis = axis
        return [layer.get_output(0)]

    (y,) = run_network(define, {"a": a, "b": b, "c": c})
    expected = np.concatenate([a, b, c], axis=axis)
    if dtype not in (ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn):
        expected = onnx_reference("Concat", [a, b, c], axis=axis)
    assert y.dtype == a.dtype
    np.testing.assert_array_equal(y, expected)


def test_concatenation_with_a_dynamic_dim():
    a, b = sample((3, 2)), sample((3, 5), seed=1)

    def define(net, t):
        layer = net.add_concatenation([t["a"], t["b"]])
        layer.axis = 1
        return [layer.get_output(0)]

    (y,) = run_network(define, {"a": a, "b": b}, dynamic={"a": (-1, 2)})
    np.testing.assert_array_equal(y, np.concatenate([a, b], axis=1))


@pytest.mark.parametrize("shapes, dtypes, axis, match", [
    (((2, 3), (2, 4)), (trt.float32, trt.float32), 0, "dim 1 differs"),
    (((2, 3), (2, 3, 1)), (trt.float32, trt.float32), 0, "ranks differ"),
    (((2, 3), (2, 3)), (trt.float32, trt.int32), 0, "input 1 has type INT32"),
    (((2, 3), (2, 3)), (trt.float32, trt.float32), 2, "axis 2 is out of range"),
])
def test_concatenation_refusals(shapes, dtypes, axis, match):
    net = new_network()
    a = net.add_input("a", dtypes[0], shapes[0])
    b = net.add_input("b", dtypes[1], shapes[1])
    with pytest.raises(trt.NetworkError, match=r"CONCATENATION\): .*" + match):
        layer = net.add_concatenation([a, b])
        layer.axis = axis
        _ = layer.get_output(0).shape


# -- Squeeze and Unsqueeze -----------------------------------------------------------------------
@pytest.mark.parametrize("axes", [[1, 2], [-2], [1]])
def test_squeeze_matches_onnx(axes):
    x = sample((3, 1, 1, 4))
    axes_array = np.array(axes, np.int64)
    (y,) = run_network(lambda n, t: [n.add_squeeze(t["x"], constant(n, axes_array))
                                     .get_output(0)], {"x": x})
    np.testing.assert_array_equal(y, onnx_reference("Squeeze", [x, axes_array]))


@pytest.mark.parametrize("axes", [[0], [1, 3], [-1], [0, 4]])
def test_unsqueeze_matches_onnx(axes):
    x = sample((3, 4, 2), np.int64)
    axes_array = np.array(axes, np.int32)
    (y,) = run_network(lambda n, t: [n.add_unsqueeze(t["x"], constant(n, axes_array))
                                     .get_output(0)], {"x": x})
    np.testing.assert_array_equal(y, onnx_reference("Unsqueeze", [x, axes_array.astype(
        np.int64)]))


def test_squeeze_and_unsqueeze_refusals():
    net = new_network()
    x = net.add_input("x", trt.float32, (3, 1, 4))
    with pytest.raises(trt.NetworkError, match="cannot squeeze axis 0 .* its size is not 1"):
        net.add_squeeze(x, constant(net, np.array([0], np.int32)))
    with pytest.raises(trt.NetworkError, match="axis 5 is out of range for rank 4"):
        net.add_unsqueeze(x, constant(net, np.array([5], np.int32)))
    with pytest.raises(trt.NetworkError, match="repeated axes"):
        net.add_unsqueeze(x, constant(net, np.array([0, 0], np.int32)))
    axes_input = net.add_input("axes", trt.int32, (1,))
    with pytest.raises(trt.NetworkError, match="must be a build-time constant"):
        net.add_squeeze(x, axes_input)


# -- Assertion -----------------------------------------------------------------------------------
def _asserting(net, t):
    net.add_assertion(t["ok"], "rows must be positive")
    return [net.add_identity(t["x"]).get_output(0)]


def test_assertion_passes_when_every_element_is_true():
    x = sample((2, 2))
    (y,) = run_network(_asserting, {"x": x, "ok": np.array([True, True])})
    np.testing.assert_array_equal(y, x)


def test_assertion_fails_the_run_with_its_message():
    x = sample((2, 2))
    engine = build_engine(_asserting, {"x": x, "ok": np.array([True, True])})
    context = engine.create_execution_context()
    with pytest.raises(trt.ExecutionError, match=r"\(ASSERTION\): assertion failed: rows must "
                                                 r"be positive"):
        context.infer({"x": x, "ok": np.array([True, False])})


def test_assertion_known_false_at_build_time_is_refused():
    net = new_network()
    with pytest.raises(trt.NetworkError, match="assertion failed: never"):
        net.add_assertion(constant(net, np.array([False])), "never")
    layer = net.add_assertion(constant(net, np.array([True])), "always")
    assert layer.num_outputs == 0 and layer.message == "always"
    x = net.add_input("x", trt.float32, (2,))
    with pytest.raises(trt.NetworkError, match="condition must be BOOL"):
        net.add_assertion(x, "float")
