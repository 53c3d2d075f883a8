"""The resize layer's extensions (antialias, TF_CROP_AND_RESIZE with its roi and
extrapolation value) on the GPU target, against the CPU target: the GPU kernel applies the
CPU kernel's per-axis tables (``axis_plan``). Written without a GPU (2026-12-06)."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from engine.kernels.backends import gpu_available
from tests.gpu.gpu_support import run_on_both

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not gpu_available(), reason="needs a GPU")

X = np.random.default_rng(3).standard_normal((1, 2, 12, 9)).astype(np.float32)


def _resize(mode, *, antialias=False, crop=False, shape=(1, 2, 5, 4)):
    def define(net, t):
        layer = net.add_resize(t["x"])
        layer.shape = shape
        layer.resize_mode = mode
        layer.antialias = antialias
        if crop:
            layer.coordinate_transformation = \
                trt.ResizeCoordinateTransformation.TF_CROP_AND_RESIZE
            layer.roi = (0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3)  # partly outside: extrapolated
            layer.extrapolation_value = 7.5
        return [layer.get_output(0)]
    return define


@pytest.mark.parametrize("mode, antialias, crop", [
    (trt.InterpolationMode.LINEAR, True, False),
    (trt.InterpolationMode.CUBIC, True, False),
    (trt.InterpolationMode.LINEAR, False, True),
    (trt.InterpolationMode.NEAREST, False, True),
    (trt.InterpolationMode.CUBIC, False, True),
], ids=["linear-antialias", "cubic-antialias", "linear-crop", "nearest-crop", "cubic-crop"])
def test_resize_extensions_match_the_cpu_target(mode, antialias, crop):
    (got,), (want,) = run_on_both(_resize(mode, antialias=antialias, crop=crop), {"x": X})
    np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-5, atol=1e-5)
    if crop:
        assert (want == 7.5).any()  # the roi reaches outside the input
