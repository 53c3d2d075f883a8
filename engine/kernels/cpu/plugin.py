"""Plugin layers on the CPU target: the plugin's ``enqueue`` receives NumPy arrays (or host
pointers, ``array.ctypes.data``, for plugins that take pointers)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.plugins.execution import Device, run_plugin_layer

HOST = Device(empty=lambda shape, dtype: np.empty(shape, dtype),
              pointer=lambda array: int(array.ctypes.data), stream=lambda: 0)


@kernel(LayerType.PLUGIN_V3, backend="cpu", name="cpu.plugin")
def plugin_v3(layer: ILayer, inputs: list[Any]) -> list[Any]:
    return run_plugin_layer(layer, inputs, HOST)
