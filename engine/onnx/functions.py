"""Ops without an importer whose ONNX schema defines them as a function of other ops
(e.g. Celu, Mish, LayerNormalization in some opsets): expanded into those ops' nodes."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol, cast

import onnx
from onnx import defs, helper

from engine.onnx.tensors import TRT_TO_ONNX
from engine.types import DataType

_counter = itertools.count()


class FunctionSchema(Protocol):
    """What this module reads of onnx's ``OpSchema``: its attributes, and the function
    members that onnx's type stub leaves out."""

    @property
    def attributes(self) -> dict[str, defs.OpSchema.Attribute]: ...
    @property
    def has_function(self) -> bool: ...
    @property
    def function_opset_versions(self) -> list[int]: ...
    def get_function_with_opset_version(self, opset: int, /) -> bytes: ...
    @property
    def has_context_dependent_function(self) -> bool: ...
    @property
    def context_dependent_function_opset_versions(self) -> list[int]: ...
    def get_context_dependent_function_with_opset_version(
        self, opset: int, node: bytes, input_types: Sequence[bytes], /) -> bytes: ...


def _schema(op_type: str, opset: int, domain: str) -> FunctionSchema | None:
    try:
        return cast(FunctionSchema, defs.get_schema(op_type, opset, domain))
    except defs.SchemaError:
        return None


def function_body(node: onnx.NodeProto, opset: int,
                  input_types: list[tuple[DataType, tuple[int, ...]] | None]
                  ) -> onnx.FunctionProto | None:
    """The function the ONNX schema of ``node`` defines for ``opset``, or None.

    ``input_types`` are (dtype, shape) of the node's inputs, which context-dependent functions
    need (None for an absent optional input; -1 for a dimension known only at run time). Some
    bodies read static dimensions (CausalConvWithState's group count is the channel count).
    """
    schema = _schema(node.op_type, opset, node.domain)
    if schema is None:
        return None
    raw = b""
    if schema.has_function:
        versions = [v for v in schema.function_opset_versions if v <= opset]
        if versions:
            raw = schema.get_function_with_opset_version(max(versions))
    if not raw and schema.has_context_dependent_function:
        types = []
        for t in input_types:
            if t is None:
                types.append(onnx.TypeProto().SerializeToString())
                continue
            dtype, shape = t
            elem = TRT_TO_ONNX.get(dtype, onnx.TensorProto.FLOAT)
            dims = [d if d >= 0 else None for d in shape]
            types.append(helper.make_tensor_type_proto(elem, dims).SerializeToString())
        versions = [v for v in schema.context_dependent_function_opset_versions if v <= opset]
        if not versions:
            return None
        try:
            raw = schema.get_context_dependent_function_with_opset_version(
                max(versions), node.SerializeToString(), types)
        except Exception:  # noqa: BLE001 - the schema refused to build a body for these types
            return None
    if not raw:
        return None
    function = onnx.FunctionProto()
    function.ParseFromString(raw)
    if not function.node:  # the schema built no body for these types (e.g. a dynamic dim)
        return None
    # Attributes the node leaves out take the schema's defaults inside the body.
    known = {a.name for a in function.attribute_proto}
    for name, attr in schema.attributes.items():
        default = attr.default_value
        if name not in known and default.type != onnx.AttributeProto.UNDEFINED:
            copy = onnx.AttributeProto()
            copy.CopyFrom(default)
            copy.name = name
            function.attribute_proto.append(copy)
    return function


def function_opset(function: onnx.FunctionProto, default: int) -> int:
    """The default-domain opset the function's body is written against."""
    return next((o.version for o in function.opset_import if o.domain in ("", "ai.onnx")),
                default)


def expand_function(node: onnx.NodeProto, function: onnx.FunctionProto) -> list[onnx.NodeProto]:
    """``function``'s nodes, wired to ``node``'s inputs and outputs, with its attributes
    substituted and its internal names made unique."""
    prefix = f"{node.name or node.op_type}/fn{next(_counter)}/"
    rename = {"": ""}
    for formal, actual in zip(function.input, node.input):
        rename[formal] = actual
    for formal in function.input[len(node.input):]:
        rename[formal] = ""
    for formal, actual in zip(function.output, node.output):
        rename[formal] = actual
    given = {a.name: a for a in node.attribute}
    defaults = {a.name: a for a in function.attribute_proto}
    nodes = []
    for inner in function.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(inner)
        copy.name = prefix + (inner.name or inner.op_type)
        del copy.input[:]
        copy.input.extend(rename.get(n, prefix + n) for n in inner.input)
        del copy.output[:]
        for n in inner.output:
            rename.setdefault(n, prefix + n)
            copy.output.append(rename[n])
        attrs = []
        for attr in inner.attribute:
            if attr.ref_attr_name:
                source = given.get(attr.ref_attr_name) or defaults.get(attr.ref_attr_name)
                if source is None:
                    continue
                resolved = onnx.AttributeProto()
                resolved.CopyFrom(source)
                resolved.name = attr.name
                attrs.append(resolved)
            elif attr.type == onnx.AttributeProto.GRAPH:
                attrs.append(_renamed_outer_references(attr, rename, prefix))
            else:
                attrs.append(attr)
        del copy.attribute[:]
        copy.attribute.extend(attrs)
        nodes.append(copy)
    return nodes


def _renamed_outer_references(attr: onnx.AttributeProto, rename: dict[str, str], prefix: str
                              ) -> onnx.AttributeProto:
    """A copy of graph attribute ``attr`` whose references to the function's values (names
    the subgraph does not define itself) follow ``rename``."""
    copy = onnx.AttributeProto()
    copy.CopyFrom(attr)
    _rename_in_graph(copy.g, rename, prefix, set())
    return copy


def _rename_in_graph(graph: onnx.GraphProto, rename: dict[str, str], prefix: str,
                     shadowed: set[str]) -> None:
    local = set(shadowed) | {i.name for i in graph.input} | {t.name for t in graph.initializer}
    local |= {o for n in graph.node for o in n.output}
    for inner in graph.node:
        for k, name in enumerate(inner.input):
            if name and name not in local:
                inner.input[k] = rename.get(name, prefix + name)
        for attr in inner.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _rename_in_graph(attr.g, rename, prefix, local)
    for output in graph.output:
        if output.name not in local:
            output.name = rename.get(output.name, prefix + output.name)
