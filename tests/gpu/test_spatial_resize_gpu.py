"""The GPU resize tactic has none of the resize layer's extensions (antialias,
TF_CROP_AND_RESIZE): it refuses them rather than compute something else."""

from __future__ import annotations

import pytest

import engine as trt
from engine.kernels.backends import load_backend
from engine.kernels.registry import tactics_for
from engine.network.layer import LayerType, TensorInfo

pytest.importorskip("cupy")


def resize_layer(dtype: trt.DataType, mode: trt.InterpolationMode, *, antialias: bool = False,
                 crop: bool = False) -> trt.IResizeLayer:
    network = trt.Builder(trt.Logger()).create_network(0)
    layer = network.add_resize(network.add_input("x", dtype, (1, 2, 8, 8)))
    layer.shape = (1, 2, 3, 3)
    layer.resize_mode = mode
    layer.antialias = antialias
    if crop:
        layer.coordinate_transformation = trt.ResizeCoordinateTransformation.TF_CROP_AND_RESIZE
        layer.roi = (0, 0, 0.2, 0.2, 1, 1, 0.8, 0.8)
    return layer


@pytest.mark.parametrize("dtype", [trt.float32, trt.float16, trt.bfloat16])
def test_gpu_resize_refuses_the_extensions(dtype):
    load_backend("gpu")
    tactics = tactics_for("gpu", LayerType.RESIZE)
    infos = [TensorInfo((1, 2, 8, 8), dtype)]

    def accepted(layer):
        return [t.name for t in tactics if t.accepts(layer, infos)]

    linear = trt.InterpolationMode.LINEAR
    assert accepted(resize_layer(dtype, linear))
    assert accepted(resize_layer(dtype, trt.InterpolationMode.NEAREST, antialias=True))
    assert not accepted(resize_layer(dtype, linear, antialias=True))
    assert not accepted(resize_layer(dtype, trt.InterpolationMode.CUBIC, antialias=True))
    assert not accepted(resize_layer(dtype, linear, crop=True))
