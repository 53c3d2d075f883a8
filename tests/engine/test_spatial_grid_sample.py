"""The grid sample layer against onnx's ReferenceEvaluator (GridSample), every interpolation and
sample mode, with and without aligned corners."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import engine as trt
from tests.engine.test_spatial_layers import onnx_op
from tests.support import build_engine, run_network

RNG = np.random.default_rng(42)
MODES = {trt.InterpolationMode.NEAREST: "nearest", trt.InterpolationMode.LINEAR: "linear",
         trt.InterpolationMode.CUBIC: "cubic"}
PADDING = {trt.SampleMode.FILL: "zeros", trt.SampleMode.CLAMP: "border",
           trt.SampleMode.REFLECT: "reflection"}


def image_and_grid(dtype=np.float32):
    """Points up to 1.6 out of [-1, 1]: every sample mode has points to treat."""
    x = RNG.standard_normal((2, 3, 4, 5)).astype(dtype)
    grid = RNG.uniform(-1.6, 1.6, (2, 3, 6, 2)).astype(dtype)
    return x, grid


def grid_sample(mode=None, sample_mode=None, align_corners=None):
    def define(net, t):
        layer = net.add_grid_sample(t["x"], t["grid"])
        if mode is not None:
            layer.interpolation_mode = mode
        if sample_mode is not None:
            layer.sample_mode = sample_mode
        if align_corners is not None:
            layer.align_corners = align_corners
        return [layer.get_output(0)]
    return define


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("sample_mode", list(PADDING))
@pytest.mark.parametrize("mode", list(MODES))
def test_grid_sample_matches_onnx(mode, sample_mode, align_corners):
    x, grid = image_and_grid()
    (y,) = run_network(grid_sample(mode, sample_mode, align_corners), {"x": x, "grid": grid})
    want = onnx_op("GridSample", [x, grid], opset=20, mode=MODES[mode],
                   padding_mode=PADDING[sample_mode], align_corners=int(align_corners))
    assert y.shape == (2, 3, 3, 6) and y.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_defaults_are_linear_fill_and_unaligned_corners():
    x, grid = image_and_grid()
    net = trt.Builder(trt.Logger()).create_network(0)
    layer = net.add_grid_sample(net.add_input("x", trt.float32, x.shape),
                                net.add_input("grid", trt.float32, grid.shape))
    assert (layer.interpolation_mode, layer.sample_mode, layer.align_corners) == \
        (trt.InterpolationMode.LINEAR, trt.SampleMode.FILL, False)
    assert layer.type == trt.LayerType.GRID_SAMPLE
    (y,) = run_network(grid_sample(), {"x": x, "grid": grid})
    np.testing.assert_allclose(y, onnx_op("GridSample", [x, grid], opset=20), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_half_and_bf16_images_are_sampled_in_their_type(dtype):
    x, grid = image_and_grid(dtype)
    (y,) = run_network(grid_sample(trt.InterpolationMode.CUBIC, trt.SampleMode.REFLECT),
                       {"x": x, "grid": grid})
    want = onnx_op("GridSample", [x.astype(np.float32), grid.astype(np.float32)], opset=20,
                   mode="cubic", padding_mode="reflection")
    assert y.dtype == dtype
    np.testing.assert_allclose(y.astype(np.float32), want, rtol=3e-2, atol=3e-2)


def test_dynamic_batch_and_grid_size():
    x, grid = image_and_grid()
    (y,) = run_network(grid_sample(trt.InterpolationMode.NEAREST), {"x": x, "grid": grid},
                       dynamic={"x": (-1, 3, 4, 5), "grid": (-1, -1, -1, 2)})
    want = onnx_op("GridSample", [x, grid], opset=20, mode="nearest")
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)


def test_attributes_survive_the_plan():
    x, grid = image_and_grid()
    define = grid_sample(trt.InterpolationMode.CUBIC, trt.SampleMode.CLAMP, True)
    engine = build_engine(define, {"x": x, "grid": grid})
    (restored,) = [layer for layer in engine._network._layers
                   if isinstance(layer, trt.IGridSampleLayer)]
    assert restored.attributes() == {"interpolation_mode": trt.InterpolationMode.CUBIC,
                                     "sample_mode": trt.SampleMode.CLAMP,
                                     "align_corners": True}
    assert isinstance(restored.interpolation_mode, trt.InterpolationMode)


def new_network():
    return trt.Builder(trt.Logger()).create_network(0)


@pytest.mark.parametrize("x_shape, x_type, grid_shape, grid_type, message", [
    ((2, 3, 4), trt.float32, (2, 3, 6, 2), trt.float32, r"input must be 4-D \[N, C, H, W\]"),
    ((1, 1, 3, 4, 5), trt.float32, (1, 2, 2, 2, 3), trt.float32,
     r"input must be 4-D \[N, C, H, W\], got shape \(1, 1, 3, 4, 5\)"),
    ((2, 3, 4, 5), trt.float32, (2, 3, 6, 3), trt.float32,
     r"grid must be 4-D \[N, H_out, W_out, 2\], got shape \(2, 3, 6, 3\)"),
    ((2, 3, 4, 5), trt.float32, (2, 3, 6, 2), trt.float16,
     "input has type FLOAT but grid has type HALF"),
    ((2, 3, 4, 5), trt.int32, (2, 3, 6, 2), trt.int32, "input has type INT32"),
    ((2, 3, 4, 5), trt.float32, (3, 3, 6, 2), trt.float32, "input has 2 images but grid has 3"),
])
def test_refusals_name_the_problem(x_shape, x_type, grid_shape, grid_type, message):
    net = new_network()
    x = net.add_input("x", x_type, x_shape)
    grid = net.add_input("grid", grid_type, grid_shape)
    with pytest.raises(trt.NetworkError, match=message):
        net.add_grid_sample(x, grid)


@pytest.mark.parametrize("mode", [trt.SampleMode.WRAP, trt.SampleMode.STRICT_BOUNDS])
def test_sample_modes_tensorrt_refuses_are_refused(mode):
    net = new_network()
    layer = net.add_grid_sample(net.add_input("x", trt.float32, (1, 1, 4, 4)),
                                net.add_input("grid", trt.float32, (1, 2, 2, 2)))
    layer.sample_mode = mode
    with pytest.raises(trt.NetworkError, match=f"sample_mode {mode.name} is not supported; "
                                               f"grid sampling takes FILL, CLAMP or REFLECT"):
        _ = layer.get_output(0).shape
