"""What the shipped plugins share: one class per plugin holds its attributes as fields, and
one creator class per plugin makes it from a ``PluginFieldCollection``.

Plugins written with ``array_module`` run the same code on NumPy arrays (CPU target) and CuPy
arrays (GPU target); those that compute on the host set ``enqueue_takes_host_arrays``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from engine.plugins.interfaces import (
    IPluginCreatorV3One,
    IPluginV3,
    IPluginV3OneBuild,
    IPluginV3OneCore,
    IPluginV3OneRuntime,
    PluginField,
    PluginFieldCollection,
    PluginFieldType,
    TensorRTPhase,
)
from engine.plugins.registry import get_plugin_registry


def array_module(array: Any) -> Any:
    """NumPy, or CuPy for a CuPy array. CuPy is not imported here: it is loaded already
    whenever a CuPy array exists."""
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy
    return np


def matmul(a: Any, b: Any) -> Any:
    """``a @ b`` over the last two axes, batch axes broadcast, for NumPy or CuPy float32
    arrays. On the GPU through the engine's cuBLAS GEMM: CuPy's own ``matmul`` calls cuBLAS
    through CuPy, which refuses calls while a stream is captured into a CUDA graph."""
    if array_module(a) is np:
        return np.matmul(a, b)
    from engine.kernels.gpu.gemm import batched_matmul

    return batched_matmul(a, b)


def host_numpy(array: Any) -> np.ndarray:
    """``array`` as a NumPy array (a device array is copied to the host, synchronizing)."""
    return array.get() if array_module(array) is not np else np.asarray(array)


class LibraryPlugin(IPluginV3, IPluginV3OneCore, IPluginV3OneBuild, IPluginV3OneRuntime):
    """A shipped plugin. Subclasses declare ``FIELDS``: name -> (field type, default)."""

    FIELDS: ClassVar[dict[str, tuple[PluginFieldType, Any]]] = {}
    NAME: ClassVar[str] = ""

    def __init__(self, **values: Any) -> None:
        unknown = sorted(set(values) - set(self.FIELDS))
        if unknown:
            raise ValueError(f"{self.NAME}: unknown fields {unknown}; fields are "
                             f"{sorted(self.FIELDS)}")
        self.values = {name: values.get(name, default)
                       for name, (_, default) in self.FIELDS.items()}
        self.plugin_name = self.NAME
        self.plugin_version = "1"
        self.plugin_namespace = ""
        self.check()

    def check(self) -> None:
        """Validate the field values (raise ``ValueError``)."""

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    def clone(self) -> LibraryPlugin:
        return type(self)(**self.values)

    def get_fields_to_serialize(self) -> PluginFieldCollection:
        return PluginFieldCollection(
            PluginField(name, np.atleast_1d(np.asarray(self.values[name])), field_type)
            for name, (field_type, _) in self.FIELDS.items())


class LibraryCreator(IPluginCreatorV3One):
    """The creator of one shipped plugin class."""

    def __init__(self, plugin_class: type[LibraryPlugin]) -> None:
        self.plugin_class = plugin_class
        self.name = plugin_class.NAME
        self.plugin_version = "1"
        self.plugin_namespace = ""
        self.field_names = PluginFieldCollection(
            PluginField(n, None, t) for n, (t, _) in plugin_class.FIELDS.items())

    def create_plugin(self, name: str, field_collection: Sequence[PluginField],
                      phase: TensorRTPhase) -> LibraryPlugin:
        values: dict[str, Any] = {}
        for f in field_collection:
            spec = self.plugin_class.FIELDS.get(f.name)
            if spec is None:
                raise ValueError(f"{self.name}: unknown field {f.name!r}; fields are "
                                 f"{sorted(self.plugin_class.FIELDS)}")
            default = spec[1]
            if isinstance(default, np.ndarray):
                values[f.name] = np.array(f.data, default.dtype)
            elif isinstance(default, float):
                values[f.name] = float(f.data[0])
            else:
                values[f.name] = int(f.data[0])
        return self.plugin_class(**values)


def register_library_plugin(plugin_class: type[LibraryPlugin]) -> type[LibraryPlugin]:
    """Class decorator: register a creator for the plugin class in the global registry."""
    get_plugin_registry().register_creator(LibraryCreator(plugin_class), "")
    return plugin_class
