"""The resize layer against onnx's ReferenceEvaluator (Resize), every mode combination."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from tests.engine.test_spatial_layers import onnx_op, randn
from tests.support import run_network

TRANSFORMS = {
    trt.ResizeCoordinateTransformation.ALIGN_CORNERS: "align_corners",
    trt.ResizeCoordinateTransformation.ASYMMETRIC: "asymmetric",
    trt.ResizeCoordinateTransformation.HALF_PIXEL: "half_pixel",
}
ROUNDING = {
    trt.ResizeRoundMode.HALF_UP: "round_prefer_ceil",
    trt.ResizeRoundMode.HALF_DOWN: "round_prefer_floor",
    trt.ResizeRoundMode.FLOOR: "floor",
    trt.ResizeRoundMode.CEIL: "ceil",
}
MODES = {trt.InterpolationMode.NEAREST: "nearest", trt.InterpolationMode.LINEAR: "linear",
         trt.InterpolationMode.CUBIC: "cubic"}


def resize(net, x, *, mode, transform, rounding=trt.ResizeRoundMode.FLOOR, shape=None,
           scales=None, exclude_outside=False, cubic_coeff=-0.75):
    layer = net.add_resize(x)
    layer.resize_mode = mode
    layer.coordinate_transformation = transform
    layer.nearest_rounding = rounding
    layer.exclude_outside = exclude_outside
    layer.cubic_coeff = cubic_coeff
    if shape is not None:
        layer.shape = shape
    if scales is not None:
        layer.scales = scales
    return layer


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("out_hw", [(9, 7), (3, 4)], ids=["up", "down"])
def test_resize_to_a_shape_matches_onnx(mode, transform, out_hw):
    x = randn(2, 3, 5, 6)
    shape = (2, 3, *out_hw)

    (y,) = run_network(lambda net, t: [resize(net, t["x"], mode=mode, transform=transform,
                                              shape=shape).get_output(0)], {"x": x})
    want = onnx_op("Resize", [x, None, None, np.array(shape, np.int64)], mode=MODES[mode],
                   coordinate_transformation_mode=TRANSFORMS[transform], nearest_mode="floor")
    assert y.shape == shape
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rounding", list(ROUNDING))
@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_nearest_rounding_modes_match_onnx(rounding, transform):
    x = randn(1, 2, 4, 6)
    shape = (1, 2, 10, 9)
    (y,) = run_network(lambda net, t: [resize(
        net, t["x"], mode=trt.InterpolationMode.NEAREST, transform=transform,
        rounding=rounding, shape=shape).get_output(0)], {"x": x})
    want = onnx_op("Resize", [x, None, None, np.array(shape, np.int64)], mode="nearest",
                   coordinate_transformation_mode=TRANSFORMS[transform],
                   nearest_mode=ROUNDING[rounding])
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("mode", list(MODES))
def test_resize_by_scales_matches_onnx(mode):
    x = randn(1, 2, 4, 5)
    scales = (1.0, 1.0, 2.5, 1.5)
    (y,) = run_network(lambda net, t: [resize(
        net, t["x"], mode=mode, transform=trt.ResizeCoordinateTransformation.HALF_PIXEL,
        scales=scales).get_output(0)], {"x": x})
    want = onnx_op("Resize", [x, None, np.array(scales, np.float32)], mode=MODES[mode],
                   coordinate_transformation_mode="half_pixel", nearest_mode="floor")
    assert y.shape == (1, 2, 10, 7)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("exclude_outside", [False, True])
@pytest.mark.parametrize("coeff", [-0.75, -0.5])
def test_cubic_coefficient_and_exclude_outside_match_onnx(exclude_outside, coeff):
    x = randn(1, 1, 6, 5)
    shape = (1, 1, 11, 8)
    (y,) = run_network(lambda net, t: [resize(
        net, t["x"], mode=trt.InterpolationMode.CUBIC,
        transform=trt.ResizeCoordinateTransformation.HALF_PIXEL, shape=shape,
        exclude_outside=exclude_outside, cubic_coeff=coeff).get_output(0)], {"x": x})
    want = onnx_op("Resize", [x, None, None, np.array(shape, np.int64)], mode="cubic",
                   coordinate_transformation_mode="half_pixel", cubic_coeff_a=coeff,
                   exclude_outside=int(exclude_outside))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", [trt.InterpolationMode.NEAREST, trt.InterpolationMode.LINEAR])
def test_single_pixel_selector_upper_reads_the_first_pixel(mode):
    x = randn(1, 1, 4, 6)
    shape = (1, 1, 1, 3)

    def define(net, t):
        formula = resize(net, t["x"], mode=mode,
                         transform=trt.ResizeCoordinateTransformation.HALF_PIXEL, shape=shape)
        upper = resize(net, t["x"], mode=mode,
                       transform=trt.ResizeCoordinateTransformation.HALF_PIXEL, shape=shape)
        upper.selector_for_single_pixel = trt.ResizeSelector.UPPER
        # ONNX's pytorch_half_pixel maps a single pixel to -0.5, which HALF_UP rounds to 0.
        upper.nearest_rounding = trt.ResizeRoundMode.HALF_UP
        assert formula.selector_for_single_pixel == trt.ResizeSelector.FORMULA
        return [formula.get_output(0), upper.get_output(0)]

    formula, upper = run_network(define, {"x": x})
    sizes = np.array(shape, np.int64)
    onnx_mode = {trt.InterpolationMode.NEAREST: "nearest"}.get(mode, "linear")
    want_formula = onnx_op("Resize", [x, None, None, sizes], mode=onnx_mode,
                           coordinate_transformation_mode="half_pixel", nearest_mode="floor")
    want_upper = onnx_op("Resize", [x, None, None, sizes], mode=onnx_mode,
                         coordinate_transformation_mode="pytorch_half_pixel",
                         nearest_mode="round_prefer_ceil")
    np.testing.assert_allclose(formula, want_formula, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(upper, want_upper, rtol=1e-5, atol=1e-6)
    assert not np.allclose(formula, upper)


def test_resize_defaults_are_tensorrts():
    net = trt.Builder(trt.Logger()).create_network(0)
    layer = net.add_resize(net.add_input("x", trt.float32, (1, 1, 2, 2)))
    assert layer.resize_mode == trt.InterpolationMode.NEAREST
    assert layer.coordinate_transformation == trt.ResizeCoordinateTransformation.ASYMMETRIC
    assert layer.selector_for_single_pixel == trt.ResizeSelector.FORMULA
    assert layer.nearest_rounding == trt.ResizeRoundMode.FLOOR
    assert layer.cubic_coeff == -0.75 and layer.exclude_outside is False
    # The extensions (not in TensorRT) are off.
    assert layer.antialias is False and layer.roi is None and layer.extrapolation_value == 0.0
    layer.scales = (1, 1, 2, 2)
    assert tuple(layer.get_output(0).shape) == (1, 1, 4, 4)
    layer.shape = (1, 1, 3, 5)
    assert layer.scales is None and tuple(layer.get_output(0).shape) == (1, 1, 3, 5)


def test_resize_output_shape_from_a_shape_tensor_with_dynamic_batch():
    x = randn(3, 2, 4, 4).astype(np.float16)

    def define(net, t):
        # Output shape = shape(x) * [1, 1, 2, 2], computed at run time.
        shape = net.add_shape(t["x"]).get_output(0)
        factor = net.add_constant((4,), np.array([1, 1, 2, 2], np.int64)).get_output(0)
        doubled = net.add_elementwise(shape, factor, trt.ElementWiseOperation.PROD)
        layer = net.add_resize(t["x"])
        layer.set_input(1, doubled.get_output(0))
        layer.resize_mode = trt.InterpolationMode.LINEAR
        layer.coordinate_transformation = trt.ResizeCoordinateTransformation.HALF_PIXEL
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x}, dynamic={"x": (-1, 2, 4, 4)})
    assert y.dtype == np.float16 and y.shape == (3, 2, 8, 8)
    want = onnx_op("Resize", [x.astype(np.float32), None, None, np.array(y.shape, np.int64)],
                   mode="linear", coordinate_transformation_mode="half_pixel")
    np.testing.assert_allclose(y.astype(np.float32), want, rtol=1e-2, atol=1e-2)


def test_resize_scales_as_a_float_input():
    x = randn(1, 1, 3, 3)

    def define(net, t):
        layer = net.add_resize(t["x"])
        scales = net.add_constant((4,), np.array([1, 1, 2, 3], np.float32)).get_output(0)
        layer.set_input(1, scales)
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x})
    np.testing.assert_array_equal(y, np.repeat(np.repeat(x, 2, axis=2), 3, axis=3))


def test_resize_refusals():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (1, 2, 4, 4))
    layer = net.add_resize(x)
    with pytest.raises(trt.NetworkError, match="neither shape nor scales is set"):
        layer.get_output(0).shape  # noqa: B018
    layer.shape = (1, 2, 8)
    with pytest.raises(trt.NetworkError, match="must have the rank of the input"):
        layer.get_output(0).shape  # noqa: B018
    layer.resize_mode = trt.InterpolationMode.CUBIC
    layer.shape = (1, 4, 8, 8)
    with pytest.raises(trt.NetworkError, match="CUBIC resize interpolates at most the 2 "
                                               "innermost"):
        layer.get_output(0).shape  # noqa: B018
    layer.scales = (1, 1, 0, 2)
    with pytest.raises(trt.NetworkError, match="must be positive"):
        layer.get_output(0).shape  # noqa: B018


def test_crop_and_resize_reads_the_roi_and_extrapolates_outside_it():
    x = randn(1, 2, 5, 6)
    roi = (0, 0, 0.25, -0.2, 1, 1, 0.75, 0.9)

    def define(net, t):
        layer = resize(net, t["x"], mode=trt.InterpolationMode.LINEAR,
                       transform=trt.ResizeCoordinateTransformation.TF_CROP_AND_RESIZE,
                       shape=(1, 2, 4, 3))
        layer.roi = roi
        layer.extrapolation_value = 3.0
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x})
    want = onnx_op("Resize", [x, np.array(roi, np.float32), None,
                              np.array((1, 2, 4, 3), np.int64)], mode="linear",
                   coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=3.0)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    assert (y[..., 0] == 3.0).all()


@pytest.mark.parametrize("mode", [trt.InterpolationMode.LINEAR, trt.InterpolationMode.CUBIC])
def test_antialias_matches_onnx(mode):
    x = randn(2, 3, 12, 9)
    shape = (2, 3, 5, 4)

    def define(net, t):
        layer = resize(net, t["x"], mode=mode,
                       transform=trt.ResizeCoordinateTransformation.HALF_PIXEL, shape=shape)
        layer.antialias = True
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x})
    want = onnx_op("Resize", [x, None, None, np.array(shape, np.int64)], mode=MODES[mode],
                   coordinate_transformation_mode="half_pixel", antialias=1)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_crop_and_resize_refusals():
    net = trt.Builder(trt.Logger()).create_network(0)
    x = net.add_input("x", trt.float32, (1, 2, 4, 4))
    layer = net.add_resize(x)
    layer.shape = (1, 2, 3, 3)
    layer.coordinate_transformation = trt.ResizeCoordinateTransformation.TF_CROP_AND_RESIZE
    with pytest.raises(trt.NetworkError, match="TF_CROP_AND_RESIZE needs roi"):
        layer.get_output(0).shape  # noqa: B018
    layer.roi = (0, 0, 1, 1)
    with pytest.raises(trt.NetworkError, match=r"a start and an end per input dimension \(8"):
        layer.get_output(0).shape  # noqa: B018
    # Cropping the channels counts as resizing them.
    layer.roi = (0, 0.5, 0, 0, 1, 1, 1, 1)
    layer.resize_mode = trt.InterpolationMode.CUBIC
    with pytest.raises(trt.NetworkError, match="CUBIC resize interpolates at most the 2 "
                                               "innermost dimensions; axis 1 changes"):
        layer.get_output(0).shape  # noqa: B018
