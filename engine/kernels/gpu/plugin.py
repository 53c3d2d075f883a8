"""Plugin layers on the GPU target: the plugin's ``enqueue`` receives CuPy arrays (or device
pointers, for plugins that take pointers) and the CUDA stream the run is enqueued on, which is
also CuPy's current stream.

A plugin whose ``enqueue`` reads device values on the host says so with
``host_synchronizing = True`` on its runtime interface, as do plugins that compute on the host
(``enqueue_takes_host_arrays = True``): the builder then picks the host-synchronizing tactic,
and engines using it run without CUDA graphs."""

from __future__ import annotations

from typing import Any

import cupy

from engine.kernels.gpu.capabilities import contiguous, host_synchronizing
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.plugins.execution import Device, run_plugin_layer
from engine.plugins.interfaces import PluginCapabilityType

DEVICE = Device(empty=lambda shape, dtype: cupy.empty(shape, dtype),
                pointer=lambda array: int(array.data.ptr),
                stream=lambda: int(cupy.cuda.get_current_stream().ptr),
                to_host=cupy.asnumpy, from_host=cupy.asarray)


def synchronizes(layer: ILayer) -> bool:
    """Whether the layer's plugin reads device values on the host."""
    runtime = layer.plugin.get_capability_interface(  # type: ignore[attr-defined]
        PluginCapabilityType.RUNTIME)
    return bool(getattr(runtime, "host_synchronizing", False)
                or getattr(runtime, "enqueue_takes_host_arrays", False))


def _capturable(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return not synchronizes(layer)


def _synchronizing(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return synchronizes(layer)


@kernel(LayerType.PLUGIN_V3, backend="gpu", name="gpu.plugin", supports=_capturable)
def plugin_v3(layer: ILayer, inputs: list[Any]) -> list[Any]:
    return run_plugin_layer(layer, _c_order(inputs), DEVICE)


@kernel(LayerType.PLUGIN_V3, backend="gpu", name="gpu.plugin_host_synchronizing",
        supports=_synchronizing)
@host_synchronizing
def plugin_v3_host_synchronizing(layer: ILayer, inputs: list[Any]) -> list[Any]:
    return run_plugin_layer(layer, _c_order(inputs), DEVICE)


def _c_order(inputs: list[Any]) -> list[Any]:
    """Plugins take pointers to linear (C-order) tensors; a channels-last view (from the
    cuDNN tactics) is reformatted first."""
    return [contiguous(a) if isinstance(a, cupy.ndarray) else a for a in inputs]
