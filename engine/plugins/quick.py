"""Quick plugins: a plugin written as two Python functions, as with TensorRT's
``tensorrt.plugin`` (``import engine.plugin as trtp``).

``@trtp.register("ns::op")`` decorates the description — inputs as ``TensorDesc``, attributes
as ``int``, ``float``, ``bool``, ``str``, ``bytes`` or 1-D ``NDArray`` — returning the output
descriptions; ``@trtp.impl("ns::op")`` decorates the implementation, which receives the inputs
as ``Tensor``s, the attributes it names, ``outputs`` and ``stream`` (and ``tactic`` if it
asks). ``trtp.op.ns.op(x, attr=...)`` makes a plugin for ``network.add_plugin``.

>>> import numpy as np, engine as trt, engine.plugin as trtp
>>> @trtp.register("doc::scale")
... def scale_desc(x: trtp.TensorDesc, factor: float) -> trtp.TensorDesc:
...     return x.like()
>>> @trtp.impl("doc::scale")
... def scale_impl(x: trtp.Tensor, factor: float, outputs, stream) -> None:
...     np.multiply(x, factor, out=np.asarray(outputs[0]))
>>> network = trt.Builder(trt.Logger()).create_network(0)
>>> x = network.add_input("x", trt.float32, (2,))
>>> tuple(network.add_plugin(trtp.op.doc.scale(x, factor=2.0)).get_output(0).shape)
(2,)
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import NetworkError
from engine.plugins.dimensions import DimsExprs, IDimensionExpr
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
from engine.types import DataType, TensorFormat, from_numpy_dtype

ShapeExpr = IDimensionExpr
ShapeExprs = DimsExprs


class TensorDesc:
    """An input or output as the description function sees it: shape expressions and type."""

    def __init__(self, shape_expr: Sequence[Any] = (), dtype: DataType = DataType.FLOAT,
                 format: TensorFormat = TensorFormat.LINEAR) -> None:  # noqa: A002
        self.shape_expr = DimsExprs(shape_expr)
        self.dtype = DataType(dtype)
        self.format = TensorFormat(format)

    @property
    def ndim(self) -> int:
        return len(self.shape_expr)

    def like(self) -> TensorDesc:
        """An output description of the same shape and type."""
        return TensorDesc(list(self.shape_expr), self.dtype, self.format)


def from_shape_expr(shape_expr: Sequence[Any], dtype: DataType) -> TensorDesc:
    """An output description from shape expressions and a type."""
    return TensorDesc(shape_expr, dtype)


class Tensor:
    """An input or output as the implementation sees it: a NumPy array on the CPU target
    (``np.asarray(t)`` is a view, writable for outputs), a CuPy array on the GPU target
    (``cupy.asarray(t)``)."""

    def __init__(self, array: Any) -> None:
        self.array = array

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.array.shape)

    @property
    def dtype(self) -> DataType:
        return from_numpy_dtype(np.dtype(self.array.dtype))

    @property
    def data_ptr(self) -> int:
        if isinstance(self.array, np.ndarray):
            return int(self.array.ctypes.data)
        return int(self.array.data.ptr)

    @property
    def __array_interface__(self) -> dict[str, Any]:
        return self.array.__array_interface__  # type: ignore[no-any-return]

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return self.array.__cuda_array_interface__  # type: ignore[no-any-return]


_ATTRIBUTE_TYPES = (int, float, bool, str, bytes)


@dataclass
class PluginDef:
    """A quick plugin: its description, attributes, and implementation."""

    namespace: str
    name: str
    describe: Callable[..., Any]
    inputs: list[str]
    attributes: dict[str, Any]
    num_outputs: int
    implementation: Callable[..., Any] | None = None
    impl_parameters: list[str] = field(default_factory=list)

    @property
    def plugin_id(self) -> str:
        return f"{self.namespace}::{self.name}"


_DEFS: dict[str, PluginDef] = {}


def _split_id(plugin_id: str) -> tuple[str, str]:
    namespace, sep, name = plugin_id.partition("::")
    if not sep or not namespace or not name:
        raise ValueError(f"plugin id {plugin_id!r} must look like 'namespace::name'")
    return namespace, name


def _is_array_annotation(annotation: Any) -> bool:
    return typing.get_origin(annotation) is np.ndarray


def _num_outputs(annotation: Any) -> int:
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        return len(args) if args and args[-1] is not Ellipsis else 1
    return 1


def register(plugin_id: str, lazy_register: bool = False) -> Callable[[Callable[..., Any]],
                                                                       Callable[..., Any]]:
    """Decorator: register a description function as quick plugin ``plugin_id``."""
    namespace, name = _split_id(plugin_id)

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(fn)
        inputs: list[str] = []
        attributes: dict[str, Any] = {}
        for param in inspect.signature(fn).parameters:
            annotation = hints.get(param)
            if annotation is TensorDesc:
                if attributes:
                    raise ValueError(f"{plugin_id}: input '{param}' follows attributes")
                inputs.append(param)
            elif annotation in _ATTRIBUTE_TYPES or _is_array_annotation(annotation):
                attributes[param] = annotation
            else:
                raise ValueError(f"{plugin_id}: parameter '{param}' needs a TensorDesc or "
                                 f"attribute type annotation, got {annotation!r}")
        definition = PluginDef(namespace, name, fn, inputs, attributes,
                               _num_outputs(hints.get("return")))
        _DEFS[plugin_id] = definition
        if not lazy_register:
            registry = get_plugin_registry()
            old = registry.get_creator(name, "1", namespace)
            if old is not None:
                registry.deregister_creator(old)
            registry.register_creator(QuickPluginCreator(definition), namespace)
        return fn

    return wrap


def impl(plugin_id: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the implementation of quick plugin ``plugin_id`` (registered first)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        definition = _DEFS.get(plugin_id)
        if definition is None:
            raise ValueError(f"{plugin_id}: @impl before @register; registered quick plugins: "
                             f"{sorted(_DEFS)}")
        params = list(inspect.signature(fn).parameters)
        unknown = [p for p in params[len(definition.inputs):]
                   if p not in definition.attributes and p not in ("outputs", "stream", "tactic")]
        if unknown:
            raise ValueError(f"{plugin_id}: implementation parameters {unknown} are neither "
                             f"attributes nor outputs/stream/tactic")
        definition.implementation = fn
        definition.impl_parameters = params
        return fn

    return wrap


def _to_field(name: str, annotation: Any, value: Any) -> PluginField:
    if annotation is bool:
        return PluginField(name, np.array([int(bool(value))], np.int32), PluginFieldType.INT32)
    if annotation is int:
        return PluginField(name, np.array([int(value)], np.int64), PluginFieldType.INT64)
    if annotation is float:
        return PluginField(name, np.array([float(value)], np.float64), PluginFieldType.FLOAT64)
    if annotation is str:
        return PluginField(name, str(value), PluginFieldType.CHAR)
    if annotation is bytes:
        return PluginField(name, bytes(value), PluginFieldType.UNKNOWN)
    arr = np.asarray(value).reshape(-1)
    if arr.dtype == np.bool_:
        return PluginField(name, arr.astype(np.int8), PluginFieldType.INT8)
    types = {np.dtype(np.float16): PluginFieldType.FLOAT16,
             np.dtype(np.float32): PluginFieldType.FLOAT32,
             np.dtype(np.float64): PluginFieldType.FLOAT64, np.dtype(np.int8): PluginFieldType.INT8,
             np.dtype(np.int16): PluginFieldType.INT16, np.dtype(np.int32): PluginFieldType.INT32,
             np.dtype(np.int64): PluginFieldType.INT64}
    return PluginField(name, arr, types[arr.dtype])


def _from_field(annotation: Any, f: PluginField) -> Any:
    if annotation is bool:
        return bool(f.data[0])
    if annotation is int:
        return int(f.data[0])
    if annotation is float:
        return float(f.data[0])
    if annotation is str:
        return f.text()
    if annotation is bytes:
        return f.data.astype(np.uint8).tobytes()
    want = typing.get_args(typing.get_args(annotation)[1])
    data = np.array(f.data)
    return data.astype(want[0]) if want and want[0] is not typing.Any else data


class QuickPlugin(IPluginV3, IPluginV3OneCore, IPluginV3OneBuild, IPluginV3OneRuntime):
    """The V3 plugin behind a quick plugin definition and its attribute values."""

    def __init__(self, definition: PluginDef, attributes: dict[str, Any]) -> None:
        missing = sorted(set(definition.attributes) - set(attributes))
        extra = sorted(set(attributes) - set(definition.attributes))
        if missing or extra:
            raise NetworkError(f"quick plugin {definition.plugin_id}: missing attributes "
                               f"{missing}, unknown attributes {extra}")
        self.definition = definition
        self.attributes = dict(attributes)
        self.plugin_name = definition.name
        self.plugin_namespace = definition.namespace
        self.plugin_version = "1"
        self.num_outputs = definition.num_outputs
        self.tactic = 0
        self._types: list[DataType] = []
        self._shapes: list[DimsExprs] = []

    def clone(self) -> QuickPlugin:
        return QuickPlugin(self.definition, self.attributes)

    def _describe(self, descs: list[TensorDesc]) -> list[TensorDesc]:
        result = self.definition.describe(*descs, **self.attributes)
        outputs = list(result) if isinstance(result, (tuple, list)) else [result]
        if len(outputs) != self.num_outputs:
            raise ValueError(f"describes {len(outputs)} outputs, its annotation {self.num_outputs}")
        return outputs

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        self._shapes = [DimsExprs(d) for d in inputs]
        types = self._types or [DataType.FLOAT] * len(inputs)
        outputs = self._describe([TensorDesc(d, t) for d, t in zip(self._shapes, types)])
        return [o.shape_expr for o in outputs]

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        # The description takes shapes with the types: those of the last get_output_shapes.
        self._types = [DataType(t) for t in input_types]
        shapes = self._shapes or [DimsExprs()] * len(input_types)
        outputs = self._describe([TensorDesc(d, t) for d, t in zip(shapes, self._types)])
        return [o.dtype for o in outputs]

    def set_tactic(self, tactic: int) -> None:
        self.tactic = int(tactic)

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        definition = self.definition
        if definition.implementation is None:
            raise NetworkError(f"quick plugin {definition.plugin_id} has no @impl")
        kwargs: dict[str, Any] = {p: self.attributes[p] for p in definition.impl_parameters
                                  if p in self.attributes}
        if "outputs" in definition.impl_parameters:
            kwargs["outputs"] = tuple(Tensor(o) for o in outputs)
        if "stream" in definition.impl_parameters:
            kwargs["stream"] = stream
        if "tactic" in definition.impl_parameters:
            kwargs["tactic"] = self.tactic
        definition.implementation(*[Tensor(a) for a in inputs], **kwargs)

    def get_fields_to_serialize(self) -> PluginFieldCollection:
        return PluginFieldCollection(_to_field(n, a, self.attributes[n])
                                     for n, a in self.definition.attributes.items())


class QuickPluginCreator(IPluginCreatorV3One):
    """The registry's creator for one quick plugin definition."""

    def __init__(self, definition: PluginDef) -> None:
        self.definition = definition
        self.name = definition.name
        self.plugin_namespace = definition.namespace
        self.plugin_version = "1"
        self.field_names = PluginFieldCollection(
            PluginField(n, None, _to_field(n, a, _example(a)).type)
            for n, a in definition.attributes.items())

    def create_plugin(self, name: str, field_collection: PluginFieldCollection,
                      phase: TensorRTPhase) -> QuickPlugin:
        by_name = {f.name: f for f in field_collection}
        attributes = {n: _from_field(a, by_name[n]) for n, a in self.definition.attributes.items()
                      if n in by_name}
        return QuickPlugin(self.definition, attributes)


def _example(annotation: Any) -> Any:
    if annotation in _ATTRIBUTE_TYPES:
        return annotation()
    want = typing.get_args(typing.get_args(annotation)[1])
    return np.zeros(1, want[0] if want else np.float32)


class _Namespace:
    def __init__(self, namespace: str) -> None:
        self._namespace = namespace

    def __getattr__(self, name: str) -> Callable[..., tuple[QuickPlugin, list[Any]]]:
        plugin_id = f"{self._namespace}::{name}"
        definition = _DEFS.get(plugin_id)
        if definition is None:
            raise AttributeError(f"no quick plugin {plugin_id!r}; registered: {sorted(_DEFS)}")

        def make(*inputs: Any, **attributes: Any) -> tuple[QuickPlugin, list[Any]]:
            if len(inputs) != len(definition.inputs):
                raise NetworkError(f"quick plugin {plugin_id} takes {len(definition.inputs)} "
                                   f"inputs, got {len(inputs)}")
            return QuickPlugin(definition, attributes), list(inputs)

        return make


class _Ops:
    """``op.<namespace>.<name>(*inputs, **attributes)``: a quick plugin for ``add_plugin``."""

    def __getattr__(self, namespace: str) -> _Namespace:
        return _Namespace(namespace)


op = _Ops()
