"""``IPluginV3Layer``: a layer computed by a V3 plugin, and ``add_plugin_v3`` / ``add_plugin``.

The layer's state is its plugin's record — name, version, namespace, the fields its runtime
interface serializes, the tactic chosen at build time — which is all a plan stores. The live
plugin object is kept beside it: the one the user gave while the network is defined, a clone
of it (or one its creator makes) in the builder's copy of the network, and one the registered
creator makes for the runtime phase when an engine is loaded.

>>> import engine as trt, numpy as np
>>> network = trt.Builder(trt.Logger()).create_network(0)
>>> x = network.add_input("x", trt.float32, (1, 2, 4))
>>> creator = trt.get_plugin_registry().get_creator("MultiHeadAttention", "1", "")
>>> fields = trt.PluginFieldCollection([
...     trt.PluginField("num_heads", np.array([2], np.int32), trt.PluginFieldType.INT32)])
>>> plugin = creator.create_plugin("attention", fields, trt.TensorRTPhase.BUILD)
>>> layer = network.add_plugin_v3([x, x, x], [], plugin)
>>> tuple(layer.get_output(0).shape)
(1, 2, 4)
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import NetworkError, PlanError
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.family import LayerFamily
from engine.plugins.dimensions import DimsExprs, IDimensionExpr, IExprBuilder
from engine.plugins.interfaces import IPluginV3, PluginCapabilityType, TensorRTPhase
from engine.plugins.registry import (
    create_plugin_from_record,
    fields_from_record,
    fields_to_record,
)
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor

__all__ = ["IPluginV3Layer"]

# Plugins the user handed to add_plugin_v3 in this process, by the content of their record:
# the builder's copy of a network clones them instead of asking the registry, so a plugin
# whose creator is not registered can still be built (a loaded plan always needs the creator).
_LIVE: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def capability(plugin: Any, which: PluginCapabilityType, layer_name: str = "") -> Any:
    """The ``which`` interface of ``plugin``; ``NetworkError`` when it has none."""
    found = plugin.get_capability_interface(which)
    if found is None:
        raise NetworkError(f"layer '{layer_name}' (PLUGIN_V3): plugin {type(plugin).__name__} "
                           f"has no {which.name} capability interface")
    return found


def _record_key(name: str, version: str, namespace: str, fields: Sequence[Any]) -> str:
    digest = hashlib.sha256(repr((name, version, namespace)).encode())
    for field_name, type_name, data in fields:
        digest.update(f"{field_name}:{type_name}:{data.dtype.str}:{data.shape}".encode())
        digest.update(np.ascontiguousarray(data).tobytes())
    return digest.hexdigest()


class IPluginV3Layer(ILayer):
    """A layer computed by a V3 plugin (``network.add_plugin_v3``)."""

    type = LayerType.PLUGIN_V3
    _attributes = ("plugin_name", "plugin_version", "plugin_namespace", "plugin_fields",
                   "plugin_tactic", "num_shape_inputs")
    _max_inputs = 1 << 16
    _evaluable = False  # a plugin runs when the engine runs, never while a network is defined

    def __init__(self, network: INetworkDefinition, inputs: Sequence[ITensor],
                 shape_inputs: Sequence[ITensor], plugin: IPluginV3) -> None:
        core = capability(plugin, PluginCapabilityType.CORE)
        build = capability(plugin, PluginCapabilityType.BUILD)
        object.__setattr__(self, "_record", {
            "plugin_name": str(core.plugin_name), "plugin_version": str(core.plugin_version),
            "plugin_namespace": str(core.plugin_namespace), "plugin_fields": (),
            "plugin_tactic": 0, "num_shape_inputs": len(shape_inputs)})
        object.__setattr__(self, "_plugin", plugin)
        object.__setattr__(self, "_run_lock", threading.Lock())
        object.__setattr__(self, "_last_shapes", None)
        super().__init__(network, [*inputs, *shape_inputs], int(build.num_outputs))

    # -- the record (what a plan stores) ----------------------------------------------------
    def _get(self, key: str) -> Any:
        return self.__dict__.setdefault("_record", {}).get(key)

    def _set(self, key: str, value: Any) -> None:
        self.__dict__.setdefault("_record", {})[key] = value
        if key != "plugin_tactic":
            self.__dict__["_plugin"] = None  # a decoded record: re-created on first use

    plugin_name = property(lambda self: self._get("plugin_name"),
                           lambda self, v: self._set("plugin_name", str(v)))
    plugin_version = property(lambda self: self._get("plugin_version"),
                              lambda self, v: self._set("plugin_version", str(v)))
    plugin_namespace = property(lambda self: self._get("plugin_namespace"),
                                lambda self, v: self._set("plugin_namespace", str(v)))
    num_shape_inputs = property(lambda self: int(self._get("num_shape_inputs") or 0),
                                lambda self, v: self._set("num_shape_inputs", int(v)))

    @property
    def plugin_tactic(self) -> int:
        """The plugin tactic the builder chose (0: the plugin's default)."""
        return int(self._get("plugin_tactic") or 0)

    @plugin_tactic.setter
    def plugin_tactic(self, value: int) -> None:
        self._set("plugin_tactic", int(value))

    @property
    def plugin_fields(self) -> tuple[tuple[str, str, np.ndarray], ...]:
        """The fields the plugin's runtime interface serializes, as (name, type, data)."""
        plugin = self.__dict__.get("_plugin")
        if plugin is None:
            return tuple(self._get("plugin_fields") or ())
        runtime = capability(plugin, PluginCapabilityType.RUNTIME, self.name)
        fields = fields_to_record(runtime.get_fields_to_serialize())
        try:
            _LIVE[_record_key(self.plugin_name, self.plugin_version, self.plugin_namespace,
                              fields)] = plugin
        except TypeError:  # a plugin class that cannot be weakly referenced: no shortcut
            pass
        return fields

    @plugin_fields.setter
    def plugin_fields(self, value: Sequence[Any]) -> None:
        self._set("plugin_fields", tuple(tuple(entry) for entry in value))

    # -- the live plugin --------------------------------------------------------------------
    @property
    def plugin(self) -> IPluginV3:
        """The plugin object (re-created from the record, for the build phase, when needed)."""
        plugin = self.__dict__.get("_plugin")
        if plugin is None:
            plugin = self._create(TensorRTPhase.BUILD)
        return plugin

    def get_plugin(self) -> IPluginV3:
        return self.plugin

    def _create(self, phase: TensorRTPhase) -> IPluginV3:
        fields = self._get("plugin_fields") or ()
        plugin = None
        if phase == TensorRTPhase.BUILD:
            live = _LIVE.get(_record_key(self.plugin_name, self.plugin_version,
                                         self.plugin_namespace, fields))
            if live is not None:
                plugin = live.clone()
        if plugin is None:
            try:
                plugin = create_plugin_from_record(
                    self.name, self.plugin_name, self.plugin_version, self.plugin_namespace,
                    fields_from_record(fields), phase)
            except PlanError as exc:
                if phase == TensorRTPhase.RUNTIME:
                    raise
                raise NetworkError(str(exc)) from None
        self.__dict__["_plugin"] = plugin
        if phase == TensorRTPhase.RUNTIME:
            runtime = capability(plugin, PluginCapabilityType.RUNTIME, self.name)
            runtime.set_tactic(self.plugin_tactic)
        return plugin

    def attach_runtime_plugin(self) -> None:
        """Create the plugin for the runtime phase through the registry (engine loading);
        ``PlanError`` when its creator is not registered."""
        self._create(TensorRTPhase.RUNTIME)

    # -- inference ----------------------------------------------------------------------------
    def data_inputs(self, inputs: list[Any]) -> tuple[list[Any], list[Any]]:
        """``inputs`` split into the plugin's inputs and its shape inputs."""
        split = len(inputs) - self.num_shape_inputs
        return list(inputs[:split]), list(inputs[split:])

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        infos = self.require_inputs(inputs, len(inputs))
        data, shapes = self.data_inputs(infos)
        build = capability(self.plugin, PluginCapabilityType.BUILD, self.name)
        try:
            dims = list(build.get_output_shapes(
                [DimsExprs(i.shape) for i in data],
                [DimsExprs(IDimensionExpr(None) for _ in range(max(i.shape[0], 0)))
                 if i.value is None else DimsExprs(np.asarray(i.value).reshape(-1).tolist())
                 for i in shapes],
                IExprBuilder()))
            types = list(build.get_output_data_types([i.dtype for i in data]))
        except NetworkError:
            raise
        except Exception as exc:  # noqa: BLE001 - user code: name the layer and the plugin
            self.fail(f"plugin {self.plugin_name!r} could not describe its outputs: "
                      f"{type(exc).__name__}: {exc}")
        if len(types) != self.num_outputs or len(dims) != self.num_outputs:
            self.fail(f"plugin {self.plugin_name!r} declares {self.num_outputs} outputs but "
                      f"describes {len(types)} types and {len(dims)} shapes")
        return [TensorInfo(DimsExprs(d).values(), DataType(t)) for t, d in zip(types, dims)]


class PluginLayers(LayerFamily):
    """``INetworkDefinition`` methods that add plugin layers."""

    def add_plugin_v3(self, inputs: Sequence[ITensor],
                      shape_inputs: Sequence[ITensor], plugin: IPluginV3) -> IPluginV3Layer:
        """Add a layer computed by ``plugin`` (an ``IPluginV3``) on ``inputs``; its
        ``shape_inputs`` are shape tensors whose values reach ``get_output_shapes``."""
        return self._add(IPluginV3Layer, list(inputs), list(shape_inputs), plugin)

    def add_plugin(self, plugin_call: Any) -> IPluginV3Layer:
        """Add a quick plugin: ``network.add_plugin(trtp.op.ns.name(x, attr=1))``."""
        plugin, inputs = plugin_call
        return self.add_plugin_v3(list(inputs), [], plugin)
