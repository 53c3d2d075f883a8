"""Running a plugin layer on a backend: descriptors, ``on_shape_change``, workspace and
``enqueue``. The CPU and GPU kernels differ only in how they allocate, what a pointer is, and
how arrays move to and from the host.

Each execution context runs its own plugin instance, made by ``attach_to_context`` on its
first run (TensorRT's rule: contexts never share a plugin's state); the context in which a
kernel runs is ``running_context``, set by the context around a run. Runs outside any context
(the builder timing tactics) use the layer's own plugin, one at a time.
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.network.layer import TensorInfo
from engine.plugins.interfaces import (
    DynamicPluginTensorDesc,
    IPluginResourceContext,
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
    to_host: Callable[[Any], np.ndarray] = np.asarray
    from_host: Callable[[np.ndarray], Any] = lambda array: array


_RUNNING: contextvars.ContextVar[Any] = contextvars.ContextVar("engine_plugin_context",
                                                               default=None)


@contextmanager
def running_context(context: Any) -> Iterator[None]:
    """Plugin layers run within ``with running_context(context):`` use ``context``'s own
    plugin instances."""
    token = _RUNNING.set(context)
    try:
        yield
    finally:
        _RUNNING.reset(token)


@dataclass
class _Attached:
    """A plugin instance of one execution context and the input shapes it last saw."""

    plugin: Any
    runtime: Any
    last_shapes: Any = None


_ATTACH_LOCK = threading.Lock()


def _attached(layer: Any, context: Any) -> _Attached:
    """``context``'s own instance of ``layer``'s plugin (made on first use)."""
    from engine.network.layers.plugin import capability

    with _ATTACH_LOCK:
        table = layer.__dict__.setdefault("_per_context", weakref.WeakKeyDictionary())
        found = table.get(context)
        if found is None:
            runtime = capability(layer.plugin, PluginCapabilityType.RUNTIME, layer.name)
            plugin = runtime.attach_to_context(IPluginResourceContext())
            own = capability(plugin, PluginCapabilityType.RUNTIME, layer.name)
            own.set_tactic(layer.plugin_tactic)
            found = table[context] = _Attached(plugin, own)
    return found


def descs_for(infos: list[TensorInfo]) -> list[PluginTensorDesc]:
    return [PluginTensorDesc(Dims(i.shape), i.dtype) for i in infos]


def dynamic_descs_for(infos: list[TensorInfo]) -> list[DynamicPluginTensorDesc]:
    return [DynamicPluginTensorDesc(d, d.dims, d.dims, d.dims) for d in descs_for(infos)]


def run_plugin_layer(layer: Any, inputs: list[Any], device: Device) -> list[Any]:
    """Run plugin layer ``layer`` on device arrays ``inputs``; returns its outputs."""
    context = _RUNNING.get()
    if context is not None:
        attached = _attached(layer, context)
        return _run(layer, attached, inputs, device)
    from engine.network.layers.plugin import capability

    plugin = layer.plugin
    shared = _Attached(plugin, capability(plugin, PluginCapabilityType.RUNTIME, layer.name),
                       layer.__dict__.get("_last_shapes"))
    lock = layer.__dict__.setdefault("_run_lock", threading.Lock())
    with lock:
        outputs = _run(layer, shared, inputs, device)
        layer.__dict__["_last_shapes"] = shared.last_shapes
    return outputs


def _run(layer: Any, attached: _Attached, inputs: list[Any], device: Device) -> list[Any]:
    runtime = attached.runtime
    build = attached.plugin.get_capability_interface(PluginCapabilityType.BUILD)
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
    key = (tuple(i.shape for i in in_infos), tuple(i.dtype for i in in_infos))
    if attached.last_shapes != key:
        runtime.on_shape_change(in_desc, out_desc)
        attached.last_shapes = key
    size = 0
    if build is not None:
        size = int(build.get_workspace_size(dynamic_descs_for(in_infos),
                                            dynamic_descs_for(out_infos)))
    if getattr(runtime, "enqueue_takes_host_arrays", False):
        # A plugin computing on the host: its inputs come to the host and its outputs go back
        # (on the GPU target a synchronization; such plugins are never captured in graphs).
        host_outputs = [np.empty(i.shape, nptype(i.dtype)) for i in out_infos]
        runtime.enqueue(in_desc, out_desc, [device.to_host(a) for a in data], host_outputs,
                        np.empty((size,), np.uint8) if size else None, device.stream())
        return [device.from_host(a) for a in host_outputs]
    outputs = [device.empty(i.shape, nptype(i.dtype)) for i in out_infos]
    workspace = device.empty((size,), np.uint8) if size else None
    if getattr(runtime, "enqueue_takes_pointers", False):
        runtime.enqueue(in_desc, out_desc, [device.pointer(a) for a in data],
                        [device.pointer(a) for a in outputs],
                        0 if workspace is None else device.pointer(workspace),
                        device.stream())
    else:
        runtime.enqueue(in_desc, out_desc, data, outputs, workspace, device.stream())
    return outputs
