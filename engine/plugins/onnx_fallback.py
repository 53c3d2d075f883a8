"""The ONNX parser's fallback for nodes no importer knows: a plugin of the node's op type,
as TensorRT's parser does. The plugin's version and namespace come from the node's
``plugin_version`` and ``plugin_namespace`` attributes (default "1" and ""); every other
attribute becomes a ``PluginField`` (INT → INT32, FLOAT → FLOAT32, STRING → CHAR, lists
likewise, TENSOR → its data)."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import AttributeProto, numpy_helper

from engine.plugins.interfaces import (
    PluginField,
    PluginFieldCollection,
    PluginFieldType,
    TensorRTPhase,
)
from engine.plugins.registry import find_plugin_creator

_TENSOR_TYPES = {np.dtype(np.float32): PluginFieldType.FLOAT32,
                 np.dtype(np.float16): PluginFieldType.FLOAT16,
                 np.dtype(np.float64): PluginFieldType.FLOAT64,
                 np.dtype(np.int8): PluginFieldType.INT8, np.dtype(np.int16): PluginFieldType.INT16,
                 np.dtype(np.int32): PluginFieldType.INT32,
                 np.dtype(np.int64): PluginFieldType.INT64}


def _field(attr: AttributeProto) -> PluginField:
    kind = attr.type
    if kind == AttributeProto.INT:
        return PluginField(attr.name, np.array([attr.i], np.int32), PluginFieldType.INT32)
    if kind == AttributeProto.INTS:
        return PluginField(attr.name, np.array(attr.ints, np.int32), PluginFieldType.INT32)
    if kind == AttributeProto.FLOAT:
        return PluginField(attr.name, np.array([attr.f], np.float32), PluginFieldType.FLOAT32)
    if kind == AttributeProto.FLOATS:
        return PluginField(attr.name, np.array(attr.floats, np.float32), PluginFieldType.FLOAT32)
    if kind == AttributeProto.STRING:
        return PluginField(attr.name, attr.s, PluginFieldType.CHAR)
    if kind == AttributeProto.TENSOR:
        data = numpy_helper.to_array(attr.t)
        field_type = _TENSOR_TYPES.get(data.dtype)
        if field_type is None:
            raise ValueError(f"plugin attribute '{attr.name}': tensor of {data.dtype} has no "
                             f"plugin field type")
        return PluginField(attr.name, data.reshape(-1), field_type)
    raise ValueError(f"plugin attribute '{attr.name}' of ONNX type "
                     f"{AttributeProto.AttributeType.Name(kind)} has no plugin field type")


def _text(attr: AttributeProto | None, default: str) -> str:
    return default if attr is None else attr.s.decode("utf-8")


def import_as_plugin(network: Any, proto: Any, inputs: list[Any]) -> list[Any] | None:
    """Add node ``proto`` to ``network`` as a plugin layer; None when no creator of its op
    type is registered."""
    attrs = {a.name: a for a in proto.attribute}
    version = _text(attrs.pop("plugin_version", None), "1")
    namespace = _text(attrs.pop("plugin_namespace", None), "")
    creator = find_plugin_creator(proto.op_type, version, namespace)
    if creator is None:
        return None
    fields = PluginFieldCollection(_field(a) for a in attrs.values())
    plugin = creator.create_plugin(proto.name or proto.op_type, fields, TensorRTPhase.BUILD)
    if plugin is None:
        raise ValueError(f"the creator of plugin {proto.op_type!r} returned None")
    layer = network.add_plugin_v3([t for t in inputs if t is not None], [], plugin)
    return [layer.get_output(i) for i in range(layer.num_outputs)]
