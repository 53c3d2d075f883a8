"""The plugin registry: creators by (name, version, namespace), and plugins from plan records.

>>> import engine as trt
>>> registry = trt.get_plugin_registry()
>>> registry.get_creator("EfficientNMS_TRT", "1", "").name
'EfficientNMS_TRT'
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.errors import PlanError
from engine.plugins.interfaces import (
    FIELD_NUMPY_TYPES,
    IPluginCreatorV3One,
    IPluginV3,
    PluginField,
    PluginFieldCollection,
    PluginFieldType,
    TensorRTPhase,
)

CreatorKey = tuple[str, str, str]


class IPluginRegistry:
    """Plugin creators, registered by name, version and namespace."""

    def __init__(self) -> None:
        self._creators: dict[CreatorKey, IPluginCreatorV3One] = {}
        self._lock = threading.Lock()
        self.parent_search_enabled = True
        self.error_recorder: Any = None

    @staticmethod
    def _key(creator: IPluginCreatorV3One, namespace: str | None) -> CreatorKey:
        ns = creator.plugin_namespace if namespace is None else namespace
        return (str(creator.name), str(creator.plugin_version), str(ns))

    def register_creator(self, creator: IPluginCreatorV3One, plugin_namespace: str = "") -> bool:
        """Register ``creator`` under ``plugin_namespace``; False when that name and version
        are already registered there (as TensorRT)."""
        key = self._key(creator, plugin_namespace or creator.plugin_namespace)
        with self._lock:
            if key in self._creators:
                return False
            self._creators[key] = creator
        return True

    def deregister_creator(self, creator: IPluginCreatorV3One) -> bool:
        with self._lock:
            for key, known in list(self._creators.items()):
                if known is creator:
                    del self._creators[key]
                    return True
        return False

    def get_creator(self, name: str, version: str, plugin_namespace: str = ""
                    ) -> IPluginCreatorV3One | None:
        return self._creators.get((str(name), str(version), str(plugin_namespace)))

    @property
    def all_creators(self) -> list[IPluginCreatorV3One]:
        return list(self._creators.values())

    def keys(self) -> list[CreatorKey]:
        """(name, version, namespace) of every registered creator (an extension)."""
        return sorted(self._creators)


_REGISTRY = IPluginRegistry()


def get_plugin_registry() -> IPluginRegistry:
    """The process-wide plugin registry."""
    return _REGISTRY


def find_plugin_creator(op_type: str, version: str | int | None = None,
                        namespace: str = "") -> IPluginCreatorV3One | None:
    """The creator the ONNX parser falls back to for an unknown node: the plugin called
    ``op_type`` in ``namespace`` (the node's domain), of ``version`` when given (the
    ``plugin_version`` attribute), else of its highest registered version."""
    if version not in (None, ""):
        return _REGISTRY.get_creator(op_type, str(version), namespace)
    found = [(v, c) for (n, v, ns), c in _REGISTRY._creators.items()
             if n == op_type and ns == namespace]
    if not found:
        return None
    return max(found, key=lambda vc: (len(vc[0]), vc[0]))[1]


# -- plugins as plan records ----------------------------------------------------------------
FieldRecord = tuple[str, str, np.ndarray]


def fields_to_record(fields: Sequence[PluginField]) -> tuple[FieldRecord, ...]:
    """Serialized fields as plain data for a plan: (name, type name, the data's bytes)."""
    return tuple((f.name, PluginFieldType(f.type).name,
                  np.frombuffer(np.ascontiguousarray(f.data).tobytes(), np.uint8))
                 for f in fields)


def fields_from_record(record: Sequence[Any]) -> PluginFieldCollection:
    fields = PluginFieldCollection()
    for entry in record:
        try:
            name, type_name, data = entry
            field_type = PluginFieldType[str(type_name)]
        except (ValueError, TypeError, KeyError) as exc:
            raise PlanError(f"malformed plan: plugin field {entry!r}: {exc}") from None
        raw = np.asarray(data)
        want = np.dtype(FIELD_NUMPY_TYPES.get(field_type, np.uint8))
        if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size % want.itemsize:
            raise PlanError(f"malformed plan: plugin field {name!r} is not {field_type.name} "
                            f"data")
        fields.append(PluginField(str(name), raw.view(want), field_type))
    return fields


def create_plugin_from_record(layer_name: str, name: str, version: str, namespace: str,
                              fields: PluginFieldCollection, phase: TensorRTPhase) -> IPluginV3:
    """Re-create a plugin through the registry; ``PlanError`` when its creator is not
    registered (listing those that are) or when creating it fails."""
    creator = _REGISTRY.get_creator(name, version, namespace)
    if creator is None:
        known = [f"{n} v{v}" + (f" ({ns})" if ns else "") for n, v, ns in _REGISTRY.keys()]
        raise PlanError(f"layer '{layer_name}': plugin {name!r} version {version!r} namespace "
                        f"{namespace!r} has no creator in the plugin registry; register it with "
                        f"get_plugin_registry().register_creator(creator, namespace) before "
                        f"loading (registered: {known})")
    try:
        plugin = creator.create_plugin(layer_name, fields, phase)
    except Exception as exc:  # noqa: BLE001 - user code: report which plugin failed
        raise PlanError(f"layer '{layer_name}': creating plugin {name!r} failed: "
                        f"{type(exc).__name__}: {exc}") from exc
    if plugin is None:
        raise PlanError(f"layer '{layer_name}': creator of plugin {name!r} returned None")
    return plugin
