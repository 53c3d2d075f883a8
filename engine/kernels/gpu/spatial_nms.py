"""GPU kernel of the non-maximum suppression layer: the CPU kernel's selection on CuPy arrays
(ranking and overlaps on the device, the greedy pass on the host, which also counts the
selected boxes: the output's length is known only there)."""

from __future__ import annotations

import cupy

from engine.kernels.cpu.spatial_nms import nms_outputs
from engine.kernels.gpu.capabilities import device_types_only, host_synchronizing, host_value
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.spatial_nms import INMSLayer


@kernel(LayerType.NMS, backend="gpu", name="gpu.nms", supports=device_types_only)
@host_synchronizing
def nms(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, INMSLayer)
    boxes, scores, *rest = inputs
    scalars = [None if value is None else host_value(value) for value in rest]
    selected, count = nms_outputs(cupy, layer, boxes, scores, scalars)
    return [cupy.asarray(selected), cupy.asarray(count)]
