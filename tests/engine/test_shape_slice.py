"""ISliceLayer: every SampleMode, negative strides, shape-tensor inputs, axes, fill values and
refusals, against onnx's Slice and a per-element NumPy reference of TensorRT's formulas."""

import ml_dtypes
import numpy as np
import pytest

import engine as trt
from tests.engine.test_shape_layers import ALL_DTYPES, constant, new_network, onnx_reference, sample
from tests.support import run_network


def reference_slice(x, start, size, stride, mode, fill=0):
    """TensorRT's slice, element by element: x_i = start_i + y_i * stride_i."""
    out = np.empty(size, x.dtype)
    for y in np.ndindex(*size):
        coords, inside = [], True
        for axis, yi in enumerate(y):
            xi, d = start[axis] + yi * stride[axis], x.shape[axis]
            if mode == trt.SampleMode.WRAP:
                xi = xi % d
            elif mode == trt.SampleMode.CLAMP:
                xi = min(max(xi, 0), d - 1)
            elif mode == trt.SampleMode.REFLECT:
                if d == 1:
                    xi = 0
                else:
                    c = abs(xi) % (2 * d - 2)
                    xi = 2 * d - 2 - c if c >= d else c
            elif not 0 <= xi < d:
                inside = False
            coords.append(xi)
        out[y] = x[tuple(coords)] if inside else fill
    return out


def _slice(start, size, stride, mode=None, fill=None):
    def define(net, t):
        layer = net.add_slice(t["x"], start, size, stride)
        if mode is not None:
            layer.mode = mode
        if fill is not None:
            layer.set_input(4, constant(net, fill))
        return [layer.get_output(0)]
    return define


def test_strict_slice_matches_onnx():
    x = sample((1, 3, 4, 5))
    (y,) = run_network(_slice((0, 1, 0, 1), (1, 2, 3, 2), (1, 1, 1, 2)), {"x": x})
    expected = onnx_reference("Slice", [x, np.array([0, 1, 0, 1]), np.array([1, 3, 3, 5]),
                                        np.array([0, 1, 2, 3]), np.array([1, 1, 1, 2])])
    np.testing.assert_array_equal(y, expected)


def test_negative_stride_reverses():
    x = sample((4, 6))
    (y,) = run_network(_slice((3, 5), (4, 3), (-1, -2)), {"x": x})
    np.testing.assert_array_equal(y, x[3::-1, 5::-2])
    expected = onnx_reference("Slice", [x, np.array([3, 5]), np.array([-5, 0]),
                                        np.array([0, 1]), np.array([-1, -2])])
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("mode", list(trt.SampleMode))
@pytest.mark.parametrize("start, stride", [((-3, 2), (2, 1)), ((4, -2), (-1, 3))])
def test_every_sample_mode_follows_tensorrts_formula(mode, start, stride):
    x = sample((3, 4), np.float32, seed=2)
    size = (5, 4)
    if mode == trt.SampleMode.STRICT_BOUNDS:
        start, size = (0, 0), (3, 2)
        stride = (1, 2)
    fill = np.array([7.5], np.float32) if mode == trt.SampleMode.FILL else None
    (y,) = run_network(_slice(start, size, stride, mode, fill), {"x": x})
    np.testing.assert_array_equal(
        y, reference_slice(x, start, size, stride, mode, 0 if fill is None else 7.5))


def test_reflect_over_a_single_element_repeats_it():
    x = sample((1, 3))
    (y,) = run_network(_slice((-2, 0), (4, 3), (1, 1), trt.SampleMode.REFLECT), {"x": x})
    np.testing.assert_array_equal(y, np.repeat(x, 4, axis=0))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_slice_carries_every_dtype_and_fill_defaults_to_zero(dtype):
    x = sample((2, 5), dtype)
    (y,) = run_network(_slice((0, 3), (2, 4), (1, 1), trt.SampleMode.FILL), {"x": x})
    assert y.dtype == x.dtype
    expected = reference_slice(x, (0, 3), (2, 4), (1, 1), trt.SampleMode.FILL,
                               np.zeros((), dtype))
    np.testing.assert_array_equal(y.astype(np.float32), expected.astype(np.float32))


def test_shape_tensor_inputs_replace_the_attributes_and_keep_static_shapes():
    x = sample((1, 3, 4, 5))

    def define(net, t):
        layer = net.add_slice(t["x"], (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0))
        layer.set_input(1, constant(net, np.array([0, 1, 0, 0], np.int32)))
        layer.set_input(2, constant(net, np.array([1, 2, 3, 4], np.int64)))
        layer.set_input(3, constant(net, np.array([1, 1, 1, 1], np.int32)))
        assert tuple(layer.get_output(0).shape) == (1, 2, 3, 4)
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x})
    np.testing.assert_array_equal(y, x[:, 1:3, :3, :4])


def test_axes_attribute_and_axes_input_slice_a_subset():
    x = sample((3, 4, 5))

    def define(net, t):
        by_attribute = net.add_slice(t["x"], (3, 1), (2, 2), (-1, 1))
        by_attribute.axes = (-1, 0)
        by_input = net.add_slice(t["x"], (1,), (2,), (2,))
        by_input.set_input(5, constant(net, np.array([1], np.int64)))
        return [by_attribute.get_output(0), by_input.get_output(0)]

    y, z = run_network(define, {"x": x})
    np.testing.assert_array_equal(y, x[1:3, :, 3:1:-1])
    np.testing.assert_array_equal(z, x[:, 1:4:2])
    expected = onnx_reference("Slice", [x, np.array([1]), np.array([5]), np.array([1]),
                                        np.array([2])])
    np.testing.assert_array_equal(z, expected)


def test_size_from_a_dynamic_shape_follows_the_input():
    x = sample((6, 4))

    def define(net, t):
        shape = net.add_shape(t["x"]).get_output(0)
        layer = net.add_slice(t["x"], (0, 1), (0, 0), (1, 1))
        layer.set_input(2, shape)  # the whole shape, from start (0, 1): clamped at the end
        layer.mode = trt.SampleMode.CLAMP
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x}, dynamic={"x": (-1, 4)})
    np.testing.assert_array_equal(y, reference_slice(x, (0, 1), (6, 4), (1, 1),
                                                     trt.SampleMode.CLAMP))


def test_slice_refusals():
    net = new_network()
    x = net.add_input("x", trt.float32, (3, 4))
    layer = net.add_slice(x, (0, 2), (3, 3), (1, 1))
    layer.name = "window"
    with pytest.raises(trt.NetworkError, match=r"'window' \(SLICE\): STRICT_BOUNDS slice of "
                                               r"axis 1 \(size 4\) reads coordinates 2..4"):
        _ = layer.get_output(0).shape
    layer.mode = trt.SampleMode.WRAP
    assert tuple(layer.get_output(0).shape) == (3, 3)
    with pytest.raises(trt.NetworkError, match="start has 1 values, but 2 axes"):
        _ = net.add_slice(x, (0,), (1, 1), (1, 1)).get_output(0).shape
    with pytest.raises(trt.NetworkError, match="must not be negative"):
        _ = net.add_slice(x, (0, 0), (1, -1), (1, 1)).get_output(0).shape
    fill = net.add_slice(x, (0, 0), (1, 1), (1, 1))
    fill.set_input(4, constant(net, np.array([1.0], np.float32)))
    with pytest.raises(trt.NetworkError, match="needs mode FILL"):
        _ = fill.get_output(0).shape
    with pytest.raises(trt.NetworkError, match="axis 2 is out of range"):
        bad_axes = net.add_slice(x, (0,), (1,), (1,))
        bad_axes.axes = (2,)
        _ = bad_axes.get_output(0).shape


def test_strict_bounds_violation_at_run_time_is_an_execution_error():
    x = sample((3, 4))

    def define(net, t):
        layer = net.add_slice(t["x"], (0, 0), (0, 0), (1, 1))
        layer.set_input(1, t["start"])
        layer.set_input(2, constant(net, np.array([2, 2], np.int32)))
        return [layer.get_output(0)]

    from tests.support import build_engine
    engine = build_engine(define, {"x": x, "start": np.array([0, 1], np.int32)})
    context = engine.create_execution_context()
    y = context.infer({"x": x, "start": np.array([1, 1], np.int32)})["out0"]
    np.testing.assert_array_equal(y, x[1:3, 1:3])
    with pytest.raises(trt.ExecutionError, match=r"SLICE\) failed: .*STRICT_BOUNDS"):
        context.infer({"x": x, "start": np.array([0, 3], np.int32)})


def test_bf16_and_fp8_slices_keep_their_bits():
    for dtype in (ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn):
        x = (np.arange(12, dtype=np.float32) / 8).astype(dtype).reshape(3, 4)
        (y,) = run_network(_slice((2, 3), (3, 4), (-1, -1)), {"x": x})
        np.testing.assert_array_equal(y.view(np.uint8), x[::-1, ::-1].copy().view(np.uint8))
