"""ONNX Resize's antialias and tf_crop_and_resize through the parser, builder and CPU runtime,
against onnx's ReferenceEvaluator; against onnxruntime where the reference departs from the
specification (pytorch_half_pixel to one pixel) or rounds a half-pixel coordinate by float
noise (tf_crop_and_resize, nearest)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from engine.onnx.errors import ErrorCode
from tests.onnx.support import errors, parse, run_model

RNG = np.random.default_rng(18)


def resize_model(x_shape, *, roi=None, scales=None, sizes=None, opset=19, **attrs):
    """A Resize of graph input ``x``; roi, scales and sizes are initializers."""
    constants = {"roi": roi, "scales": scales, "sizes": sizes}
    dtypes = {"roi": np.float32, "scales": np.float32, "sizes": np.int64}
    initializers = [numpy_helper.from_array(np.asarray(v, dtypes[n]), n)
                    for n, v in constants.items() if v is not None]
    node = helper.make_node("Resize", ["x"] + [n if v is not None else ""
                                               for n, v in constants.items()], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def assert_matches_reference(model, x, atol=1e-5, runtime="reference"):
    if runtime == "onnxruntime":
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        want = session.run(None, {"x": x})[0]
    else:
        want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    got = run_model(model, {"x": x})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("transform", ["half_pixel", "pytorch_half_pixel", "asymmetric",
                                       "align_corners"])
@pytest.mark.parametrize("exclude_outside", [0, 1])
@pytest.mark.parametrize("sizes", [(1, 2, 3, 3), (1, 2, 5, 2), (1, 2, 1, 7), (1, 2, 19, 4)],
                         ids=["down", "down-uneven", "to-one-row", "up-and-down"])
def test_antialias_to_sizes(mode, transform, exclude_outside, sizes):
    x = RNG.standard_normal((1, 2, 9, 11)).astype(np.float32)
    model = resize_model(x.shape, sizes=sizes, mode=mode, antialias=1,
                         coordinate_transformation_mode=transform,
                         exclude_outside=exclude_outside)
    # ONNX's reference maps pytorch_half_pixel's single pixel to -0.5, not the specified 0.
    single = transform == "pytorch_half_pixel" and 1 in sizes
    assert_matches_reference(model, x, runtime="onnxruntime" if single else "reference")


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [(1, 1, 0.6, 0.6), (1, 1, 0.25, 0.4), (1, 1, 0.125, 1.5)])
def test_antialias_by_scales(mode, scales):
    x = RNG.standard_normal((2, 3, 16, 10)).astype(np.float32)
    model = resize_model(x.shape, scales=scales, mode=mode, antialias=1)
    assert_matches_reference(model, x)


def test_antialias_blurs_a_strong_downscale_and_keeps_an_upscale():
    x = np.tile(np.array([0.0, 1.0], np.float32), 32).reshape(1, 1, 1, 64)
    sizes = (1, 1, 1, 8)
    attrs = {"mode": "linear", "coordinate_transformation_mode": "asymmetric"}
    plain = run_model(resize_model(x.shape, sizes=sizes, **attrs), {"x": x})["y"]
    smooth = run_model(resize_model(x.shape, sizes=sizes, antialias=1, **attrs), {"x": x})["y"]
    # Sampling every 8th pixel aliases the alternating pattern to zeros; the stretched filter
    # averages it (away from the edge, where clamped taps weigh the first pixel).
    np.testing.assert_array_equal(plain, 0.0)
    np.testing.assert_allclose(smooth[..., 1:], 0.5, atol=1e-6)
    y = RNG.standard_normal((1, 1, 4, 5)).astype(np.float32)
    up = (1, 1, 7, 9)
    for mode in ("linear", "cubic"):
        np.testing.assert_allclose(
            run_model(resize_model(y.shape, sizes=up, mode=mode, antialias=1), {"x": y})["y"],
            run_model(resize_model(y.shape, sizes=up, mode=mode), {"x": y})["y"],
            rtol=1e-5, atol=1e-6)


def test_antialias_large_downscale_matches_reference():
    x = RNG.standard_normal((1, 3, 96, 80)).astype(np.float32)
    model = resize_model(x.shape, sizes=(1, 3, 13, 17), mode="cubic", antialias=1)
    assert_matches_reference(model, x)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("roi", [(0, 0, 0.13, 0.41, 1, 1, 0.77, 0.02),
                                 (0, 0, -0.35, 0.15, 1, 1, 1.15, 1.7)],
                         ids=["inside-flipped", "extrapolated"])
@pytest.mark.parametrize("sizes", [(1, 4, 3, 3), (1, 4, 6, 1), (1, 4, 8, 5)])
def test_tf_crop_and_resize(mode, roi, sizes):
    x = RNG.standard_normal((1, 4, 5, 6)).astype(np.float32)
    model = resize_model(x.shape, roi=roi, sizes=sizes, mode=mode,
                         coordinate_transformation_mode="tf_crop_and_resize",
                         extrapolation_value=-7.5)
    assert_matches_reference(model, x)


@pytest.mark.parametrize("mode, roi, sizes", [
    ("nearest", (0.2, 0.1, 0.3, 0.5, 0.9, 1.2, 0.6, 0.5), (2, 5, 3, 4)),
    # TensorRT's linear resize interpolates the 3 innermost axes at most.
    ("linear", (0, 0.1, 0.3, 0.5, 1, 1.2, 0.6, 0.5), (3, 5, 3, 4)),
])
def test_tf_crop_and_resize_of_the_outer_axes(mode, roi, sizes):
    x = RNG.standard_normal((3, 4, 5, 6)).astype(np.float32)
    model = resize_model(x.shape, roi=roi, sizes=sizes, mode=mode,
                         coordinate_transformation_mode="tf_crop_and_resize")
    assert_matches_reference(model, x)


@pytest.mark.parametrize("sizes", [(1, 1, 3, 5), (1, 1, 8, 1)])
def test_tf_crop_and_resize_rounds_half_pixels_as_onnxruntime(sizes):
    x = np.arange(30, dtype=np.float32).reshape(1, 1, 5, 6)
    # The roi puts coordinates on half pixels, which round_prefer_floor rounds down.
    model = resize_model(x.shape, roi=(0, 0, 0.1, 0.9, 1, 1, 0.9, 0.1), sizes=sizes,
                         mode="nearest", coordinate_transformation_mode="tf_crop_and_resize")
    assert_matches_reference(model, x, runtime="onnxruntime")


def test_tf_crop_and_resize_by_scales_with_axes_and_antialias():
    x = RNG.standard_normal((2, 3, 12, 10)).astype(np.float32)
    model = resize_model(x.shape, roi=(0.7, 0.1, 1.1, 0.6), scales=(0.5, 0.5), axes=[3, 2],
                         mode="linear", antialias=1,
                         coordinate_transformation_mode="tf_crop_and_resize")
    assert_matches_reference(model, x)
    got = run_model(model, {"x": x})["y"]
    assert got.shape == (2, 3, 6, 5) and (got[..., -1] == 0).all()


def test_tf_crop_and_resize_needs_a_constant_roi():
    node = helper.make_node("Resize", ["x", "roi", "", "sizes"], ["y"], mode="linear",
                            coordinate_transformation_mode="tf_crop_and_resize")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 1, 4, 4)),
                      helper.make_tensor_value_info("roi", TensorProto.FLOAT, (8,))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, 1, 3, 3], np.int64), "sizes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    ok, _, parser = parse(model)
    (error,) = errors(parser)
    assert not ok and error.code() == ErrorCode.UNSUPPORTED_NODE_DYNAMIC
    assert "'roi'" in error.desc() and "build time" in error.desc()

    missing = resize_model((1, 1, 4, 4), sizes=(1, 1, 3, 3), mode="linear",
                           coordinate_transformation_mode="tf_crop_and_resize")
    ok, _, parser = parse(missing)
    (error,) = errors(parser)
    assert not ok and error.code() == ErrorCode.INVALID_NODE and "roi" in error.desc()

    short = resize_model((1, 1, 4, 4), roi=(0, 1), sizes=(1, 1, 3, 3), mode="linear",
                         coordinate_transformation_mode="tf_crop_and_resize")
    ok, _, parser = parse(short)
    (error,) = errors(parser)
    assert not ok and error.code() == ErrorCode.INVALID_NODE and "4 axes" in error.desc()
