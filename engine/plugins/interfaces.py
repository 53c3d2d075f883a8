"""TensorRT's V3 plugin model: the interfaces a plugin implements and the records it uses.

A plugin is one Python object that is an ``IPluginV3`` and hands out its capabilities
(``get_capability_interface``): the core (its name, version, namespace), the build interface
(output types and shapes, formats, tactics, workspace) and the runtime interface (``enqueue``
and the fields a plan stores). A creator (``IPluginCreatorV3One``) makes plugins from fields;
plans store a plugin as its name, version, namespace and fields, and re-create it through the
creator registered under those names.

>>> import numpy as np, engine as trt
>>> field = trt.PluginField("alpha", np.array([0.5], np.float32), trt.PluginFieldType.FLOAT32)
>>> trt.PluginFieldCollection([field])[0].name
'alpha'
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.network.layer import attribute_enum
from engine.types import DataType, Dims, TensorFormat


@attribute_enum
class PluginFieldType(enum.IntEnum):
    """The type of a ``PluginField``'s data (TensorRT's members and values)."""

    FLOAT16 = 0
    FLOAT32 = 1
    FLOAT64 = 2
    INT8 = 3
    INT16 = 4
    INT32 = 5
    CHAR = 6
    DIMS = 7
    UNKNOWN = 8
    BF16 = 9
    INT64 = 10
    FP8 = 11
    INT4 = 12


# The NumPy type a field's data is stored as (UNKNOWN: raw bytes).
FIELD_NUMPY_TYPES: dict[PluginFieldType, Any] = {
    PluginFieldType.FLOAT16: np.float16, PluginFieldType.FLOAT32: np.float32,
    PluginFieldType.FLOAT64: np.float64, PluginFieldType.INT8: np.int8,
    PluginFieldType.INT16: np.int16, PluginFieldType.INT32: np.int32,
    PluginFieldType.CHAR: np.int8, PluginFieldType.DIMS: np.int64,
    PluginFieldType.UNKNOWN: np.uint8, PluginFieldType.INT64: np.int64,
}


class TensorRTPhase(enum.IntEnum):
    """Which phase a plugin is created for."""

    BUILD = 0
    RUNTIME = 1


class PluginCapabilityType(enum.IntEnum):
    """The capability interfaces ``IPluginV3.get_capability_interface`` hands out."""

    CORE = 0
    BUILD = 1
    RUNTIME = 2


class PluginField:
    """A named, typed array: a plugin's attribute as a creator receives it.

    ``data`` is kept as a 1-D NumPy array of the type's NumPy type (a string for CHAR may be
    given as ``str`` or ``bytes``)."""

    def __init__(self, name: str = "", data: Any = None,
                 type: PluginFieldType = PluginFieldType.UNKNOWN) -> None:  # noqa: A002
        self.name = str(name)
        self.type = PluginFieldType(type)
        if data is None:
            self.data: np.ndarray = np.zeros(0, FIELD_NUMPY_TYPES.get(self.type, np.uint8))
            return
        if isinstance(data, str):
            data = data.encode("utf-8")
        if isinstance(data, (bytes, bytearray)):
            data = np.frombuffer(bytes(data), np.uint8)
        arr = np.asarray(data)
        want = FIELD_NUMPY_TYPES.get(self.type)
        if want is not None and arr.dtype != np.dtype(want):
            arr = arr.view(want) if arr.dtype.itemsize == np.dtype(want).itemsize \
                and arr.dtype.kind in "iub" and np.dtype(want).kind in "iub" else arr.astype(want)
        self.data = np.array(arr.reshape(-1))

    @property
    def size(self) -> int:
        return int(self.data.size)

    def text(self) -> str:
        """A CHAR field's data as a string (an extension)."""
        return self.data.astype(np.uint8).tobytes().split(b"\0", 1)[0].decode("utf-8")

    def __repr__(self) -> str:
        return f"PluginField({self.name!r}, {self.data!r}, {self.type.name})"


class PluginFieldCollection(list):  # type: ignore[type-arg]
    """A list of ``PluginField``s (what creators receive and runtimes serialize)."""

    def __init__(self, fields: Iterable[PluginField] = ()) -> None:
        super().__init__(fields)

    def get(self, name: str) -> PluginField | None:
        """The field called ``name`` (an extension)."""
        return next((f for f in self if f.name == name), None)


@dataclass
class PluginTensorDesc:
    """A concrete tensor as ``enqueue`` and ``on_shape_change`` see it."""

    dims: Dims = field(default_factory=Dims)
    type: DataType = DataType.FLOAT  # noqa: A003 - TensorRT's name
    format: TensorFormat = TensorFormat.LINEAR  # noqa: A003
    scale: float = 1.0


@dataclass
class DynamicPluginTensorDesc:
    """A tensor as ``configure_plugin`` and ``supports_format_combination`` see it: -1 in
    ``desc.dims`` where the dimension varies, and its range over the profiles."""

    desc: PluginTensorDesc = field(default_factory=PluginTensorDesc)
    min: Dims = field(default_factory=Dims)  # noqa: A003
    opt: Dims = field(default_factory=Dims)
    max: Dims = field(default_factory=Dims)  # noqa: A003

    # TensorRT's Python binding also exposes the desc's fields here.
    @property
    def type(self) -> DataType:  # noqa: A003
        return self.desc.type

    @property
    def format(self) -> TensorFormat:  # noqa: A003
        return self.desc.format


class IPluginCapability:
    """Base of the capability interfaces."""


class IPluginV3:
    """A V3 plugin. Implement ``get_capability_interface`` and ``clone``; the usual Python
    plugin derives from ``IPluginV3`` and the three ``IPluginV3One*`` interfaces and returns
    ``self`` for each capability."""

    def get_capability_interface(self, type: PluginCapabilityType) -> Any:  # noqa: A002
        """The object implementing capability ``type`` (None when absent)."""
        return self

    def clone(self) -> IPluginV3:
        raise NotImplementedError(f"{type(self).__name__}.clone")


class IPluginV3OneCore(IPluginCapability):
    """The core capability: which plugin this is."""

    plugin_name: str = ""
    plugin_version: str = "1"
    plugin_namespace: str = ""


class IPluginV3OneBuild(IPluginCapability):
    """The build capability: what the builder asks a plugin."""

    num_outputs: int = 1

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        raise NotImplementedError(f"{type(self).__name__}.get_output_data_types")

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803 - TensorRT's name
        """Output dimensions as ``DimsExprs`` built from the inputs' (``exprBuilder``)."""
        raise NotImplementedError(f"{type(self).__name__}.get_output_shapes")

    def supports_format_combination(self, pos: int, in_out: Sequence[DynamicPluginTensorDesc],
                                    num_inputs: int) -> bool:
        return bool(in_out[pos].desc.format == TensorFormat.LINEAR)

    def configure_plugin(self, inp: Sequence[DynamicPluginTensorDesc],
                         out: Sequence[DynamicPluginTensorDesc]) -> None:
        return None

    def get_workspace_size(self, inputs: Sequence[DynamicPluginTensorDesc],
                           outputs: Sequence[DynamicPluginTensorDesc]) -> int:
        return 0

    def get_valid_tactics(self) -> list[int]:
        return []

    def get_timing_cache_id(self) -> str:
        return ""

    def get_format_combination_limit(self) -> int:
        return 100

    def get_metadata_string(self) -> str:
        return ""


class IPluginV3OneRuntime(IPluginCapability):
    """The runtime capability: running the plugin."""

    def set_tactic(self, tactic: int) -> None:
        return None

    def on_shape_change(self, inputs: Sequence[PluginTensorDesc],
                        outputs: Sequence[PluginTensorDesc]) -> None:
        return None

    def enqueue(self, input_desc: Sequence[PluginTensorDesc],
                output_desc: Sequence[PluginTensorDesc], inputs: Sequence[Any],
                outputs: Sequence[Any], workspace: Any, stream: int) -> None:
        """Compute the outputs. ``inputs`` and ``outputs`` are arrays of the target's device
        (NumPy on the CPU target, CuPy on the GPU target), or pointers (``int``) when the
        plugin sets ``enqueue_takes_pointers = True``, as TensorRT passes them."""
        raise NotImplementedError(f"{type(self).__name__}.enqueue")

    def attach_to_context(self, resource_context: Any) -> IPluginV3:
        """The plugin a new execution context uses (by default a clone)."""
        return self.clone()  # type: ignore[attr-defined,no-any-return]

    def get_fields_to_serialize(self) -> PluginFieldCollection:
        return PluginFieldCollection()


class IPluginResourceContext:
    """What ``attach_to_context`` receives: the context's GPU allocator and error recorder
    (none here)."""

    gpu_allocator: Any = None
    error_recorder: Any = None


class IPluginCreatorInterface:
    """Base of plugin creators."""


class IPluginCreatorV3One(IPluginCreatorInterface):
    """Makes plugins of one name and version from fields.

    Subclasses set ``name``, ``plugin_version``, ``plugin_namespace`` and ``field_names`` (a
    ``PluginFieldCollection`` describing the accepted fields) and implement
    ``create_plugin(name, field_collection, phase)``."""

    name: str = ""
    plugin_version: str = "1"
    plugin_namespace: str = ""
    field_names: PluginFieldCollection = PluginFieldCollection()

    def create_plugin(self, name: str, field_collection: PluginFieldCollection,
                      phase: TensorRTPhase) -> IPluginV3 | None:
        raise NotImplementedError(f"{type(self).__name__}.create_plugin")
