"""Running a plugin layer on a backend: descriptors, ``on_shape_change``, workspace and
``enqueue``. The CPU and GPU kernels differ only in how they allocate and what a pointer is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.network.layer import TensorInfo
from engine.plugins.interfaces import (
    DynamicPluginTensorDesc,
    PluginCapabilityType,
    PluginTensorDesc,
)
from engine.types import Dims, from_numpy_dtype, nptype


@dataclass(frozen=True)
class Device:
    """How a backend allocates arrays, names their addresses, and its current stream."""

    empty: Callable[[tuple[int, ...], Any], Any]
    pointer: Callable[[Any], int]
    stream: Callable[[], int]


def descs_for(infos: list[TensorInfo]) -> list[PluginTensorDesc]:
    return [PluginTensorDesc(Dims(i.shape), i.dtype) for i in infos]


def dynamic_descs_for(infos: list[TensorInfo]) -> list[DynamicPluginTensorDesc]:
    return [DynamicPluginTensorDesc(d, d.dims, d.dims, d.dims) for d in descs_for(infos)]


def run_plugin_layer(layer: Any, inputs: list[Any], device: Device) -> list[Any]:
    """Run plugin layer ``layer`` on device arrays ``inputs``; returns its outputs."""
    from engine.network.layers.plugin import capability

    plugin = layer.plugin
    runtime = capability(plugin, PluginCapabilityType.RUNTIME, layer.name)
    build = plugin.get_capability_interface(PluginCapabilityType.BUILD)
    data, shape_values = layer.data_inputs(inputs)
    in_infos = [TensorInfo(tuple(a.shape), from_numpy_dtype(np.dtype(a.dtype))) for a in data]
    shape_infos = [TensorInfo(tuple(a.shape), from_numpy_dtype(np.dtype(a.dtype)),
                              np.asarray(a.get() if hasattr(a, "get") else a))
                   for a in shape_values]
    out_infos = layer.infer([*in_infos, *shape_infos])
    for info in out_infos:
        if not info.is_static:
            layer.fail("plugin outputs with data-dependent shapes are not supported")
    in_desc, out_desc = descs_for(in_infos), descs_for(out_infos)
    outputs = [device.empty(i.shape, nptype(i.dtype)) for i in out_infos]
    lock = layer.__dict__.setdefault("_run_lock", threading.Lock())
    with lock:
        key = (tuple(i.shape for i in in_infos), tuple(i.dtype for i in in_infos))
        if layer.__dict__.get("_last_shapes") != key:
            runtime.on_shape_change(in_desc, out_desc)
            layer.__dict__["_last_shapes"] = key
        size = 0
        if build is not None:
            size = int(build.get_workspace_size(dynamic_descs_for(in_infos),
                                                dynamic_descs_for(out_infos)))
        workspace = device.empty((size,), np.uint8) if size else None
        if getattr(runtime, "enqueue_takes_pointers", False):
            runtime.enqueue(in_desc, out_desc, [device.pointer(a) for a in data],
                            [device.pointer(a) for a in outputs],
                            0 if workspace is None else device.pointer(workspace),
                            device.stream())
        else:
            runtime.enqueue(in_desc, out_desc, data, outputs, workspace, device.stream())
    return outputs
