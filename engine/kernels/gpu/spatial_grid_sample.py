"""GPU kernel of the grid sample layer: the CPU kernel's sampling (``grid_sample``) on CuPy
arrays, every step on the device (capturable)."""

from __future__ import annotations

import cupy

from engine.kernels.cpu.spatial_grid_sample import grid_sample
from engine.kernels.gpu.capabilities import device_types_only
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.spatial_grid_sample import IGridSampleLayer


@kernel(LayerType.GRID_SAMPLE, backend="gpu", name="gpu.grid_sample",
        supports=device_types_only)
def grid_sample_layer(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IGridSampleLayer)
    x, grid = inputs
    return [grid_sample(cupy, x, grid, interpolation=layer.interpolation_mode,
                        sample_mode=layer.sample_mode, align_corners=layer.align_corners)]
