"""``OnnxParser``: an ONNX model into a network definition, as TensorRT's parser does.

>>> import engine as trt, onnx
>>> from onnx import helper, TensorProto
>>> graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
>>> model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
>>> network = trt.Builder(trt.Logger()).create_network(0)
>>> parser = trt.OnnxParser(network, trt.Logger())
>>> parser.parse(model.SerializeToString())
True
>>> network.num_layers, parser.num_errors
(1, 0)

Each failure becomes a ``ParserError`` (``parser.get_error(i)``): the error code, the node's
index, name and op type, and where in the parser it was raised. An op with no importer is
expanded through its ONNX function body when the schema has one; otherwise the node is refused
("no importer and no plugin for op X"; plugins arrive with the plugin registry).
"""

from __future__ import annotations

import collections
import os
import traceback
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import onnx
import onnx.inliner
from google.protobuf.message import DecodeError

from engine.errors import EngineError, NetworkError
from engine.logger import ILogger, Severity, log
from engine.network.layer import LayerType
from engine.onnx import importers as _importers  # noqa: F401 - registers the importers
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode, ImportFailure, OnnxParserFlag, ParserError
from engine.onnx.functions import (
    FunctionSchema,
    expand_function,
    function_body,
    function_opset,
)
from engine.onnx.graph import topological_nodes
from engine.onnx.registry import DEFAULT_DOMAINS, find_importer
from engine.onnx.tensors import (
    NARROWED,
    WIDENED,
    array_from_tensor,
    shape_of_value_info,
    trt_dtype,
)
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor

# The default-domain opsets this parser is written for; newer ones import with a warning.
MIN_OPSET = 7
MAX_OPSET = 24


class OnnxParser:
    """Parses ONNX models into ``network`` (TensorRT's ``OnnxParser``)."""

    def __init__(self, network: INetworkDefinition, logger: ILogger | None) -> None:
        self.network = network
        self.logger = logger
        self._errors: list[ParserError] = []
        self.flags = 1 << OnnxParserFlag.NATIVE_INSTANCENORM
        self._subgraphs: list[tuple[list[int], bool]] = []

    # -- errors -------------------------------------------------------------------------------
    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> ParserError | None:
        return self._errors[index] if 0 <= index < len(self._errors) else None

    def clear_errors(self) -> None:
        self._errors.clear()

    # -- flags --------------------------------------------------------------------------------
    def set_flag(self, flag: OnnxParserFlag) -> None:
        self.flags |= 1 << OnnxParserFlag(flag)

    def clear_flag(self, flag: OnnxParserFlag) -> None:
        self.flags &= ~(1 << OnnxParserFlag(flag))

    def get_flag(self, flag: OnnxParserFlag) -> bool:
        return bool(self.flags >> OnnxParserFlag(flag) & 1)

    # -- support queries ------------------------------------------------------------------------
    def supports_operator(self, op_name: str) -> bool:
        """Whether an importer exists for ``op_name`` (default domain) at the newest opset, or
        the op is defined by an ONNX function of supported ops."""
        if find_importer(op_name, 10_000) is not None:
            return True
        try:
            schema = cast(FunctionSchema, onnx.defs.get_schema(op_name))
        except onnx.defs.SchemaError:
            return False
        return bool(schema.has_function or schema.has_context_dependent_function)

    def supports_model_v2(self, model: bytes, path: str | None = None) -> bool:
        """Parse into a scratch network and record which nodes import: True when all do.
        Afterwards ``num_subgraphs``, ``get_subgraph_nodes`` and ``is_subgraph_supported``
        describe runs of consecutive nodes that import (or fail) together."""
        from engine.network.definition import INetworkDefinition

        scratch = OnnxParser(INetworkDefinition(self.network.flags), None)
        scratch.flags = self.flags
        ok = scratch.parse(model, path)
        self._errors = list(scratch._errors)
        self._subgraphs = []
        count = scratch._node_count
        failed = {e.node() for e in scratch._errors if e.node() >= 0}
        first_failure = min(failed) if failed else count
        if count:
            self._subgraphs.append((list(range(0, first_failure)), True))
            if first_failure < count:
                self._subgraphs.append((list(range(first_failure, count)), False))
        self._subgraphs = [(nodes, supported) for nodes, supported in self._subgraphs if nodes]
        return ok

    @property
    def num_subgraphs(self) -> int:
        return len(self._subgraphs)

    def is_subgraph_supported(self, index: int) -> bool:
        return self._subgraphs[index][1]

    def get_subgraph_nodes(self, index: int) -> list[int]:
        return list(self._subgraphs[index][0])

    # -- parsing ------------------------------------------------------------------------------
    def parse_from_file(self, model: str) -> bool:
        """Parse the model at path ``model`` (external weights are read beside it)."""
        self._errors.clear()
        try:
            with open(model, "rb") as f:
                data = f.read()
        except OSError as exc:
            self._record(ErrorCode.MODEL_DESERIALIZE_FAILED, f"cannot read '{model}': {exc}")
            return False
        return self.parse(data, model)

    def parse(self, model: bytes, path: str | None = None) -> bool:
        """Parse serialized ONNX ``model`` into the network; False when it fails, with the
        reasons in ``get_error(i)``. ``path`` is the model's file path, used to find external
        weight files (which must lie in the model's directory or below it)."""
        self._errors.clear()
        self._node_count = 0
        try:
            proto = self._load(model, path)
            if proto is None:
                return False
            self._import_model(proto)
        except ImportFailure as failure:
            if not getattr(failure, "recorded", False):
                self._record(failure.code, failure.message, tensor=failure.tensor)
        except RecursionError:
            self._record(ErrorCode.INVALID_GRAPH, "the model nests too deeply to import")
        return not self._errors

    # -- loading ------------------------------------------------------------------------------
    def _load(self, data: Any, path: str | None) -> onnx.ModelProto | None:
        proto = onnx.ModelProto()
        try:
            proto.ParseFromString(bytes(data))
        except (DecodeError, TypeError, ValueError, RuntimeError) as exc:
            self._record(ErrorCode.MODEL_DESERIALIZE_FAILED,
                         f"the bytes are not a valid ONNX model (protobuf: {exc})")
            return None
        if not proto.HasField("graph"):
            self._record(ErrorCode.MODEL_DESERIALIZE_FAILED,
                         "the bytes are not a valid ONNX model: no graph")
            return None
        self._load_external_data(proto, path)
        if proto.functions:
            try:
                proto = onnx.inliner.inline_local_functions(proto)
            except Exception as exc:  # noqa: BLE001 - onnx raises various types here
                raise ImportFailure(ErrorCode.INVALID_GRAPH,
                                    f"cannot inline the model's local functions: {exc}") from None
        return proto

    def _load_external_data(self, proto: onnx.ModelProto, path: str | None) -> None:
        from onnx import external_data_helper as ext

        tensors = [t for t in ext._get_all_tensors(proto) if ext.uses_external_data(t)]
        if not tensors:
            return
        if path is None:
            raise ImportFailure(ErrorCode.INVALID_VALUE,
                                f"initializer '{tensors[0].name}' keeps its data in an external "
                                f"file; parse the model with parse(model, path) or "
                                f"parse_from_file(path) so the file can be found")
        base = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        for tensor in tensors:
            info = ext.ExternalDataInfo(tensor)
            target = os.path.realpath(os.path.join(base, info.location))
            if os.path.isabs(info.location) or os.path.commonpath([base, target]) != base:
                raise ImportFailure(ErrorCode.INVALID_VALUE,
                                    f"initializer '{tensor.name}': external data location "
                                    f"'{info.location}' is outside the model's directory "
                                    f"'{base}'; refused")
            if not os.path.isfile(target):
                raise ImportFailure(ErrorCode.INVALID_VALUE,
                                    f"initializer '{tensor.name}': external data file "
                                    f"'{info.location}' not found in '{base}'")
        try:
            ext.load_external_data_for_model(proto, base)
        except (OSError, ValueError) as exc:
            raise ImportFailure(ErrorCode.INVALID_VALUE,
                                f"cannot load external data: {exc}") from None

    # -- importing ----------------------------------------------------------------------------
    def _import_model(self, proto: onnx.ModelProto) -> None:
        opsets = {o.domain: o.version for o in proto.opset_import}
        opset = next((opsets[d] for d in DEFAULT_DOMAINS if d in opsets), None)
        if opset is None:
            opset = 1 if not opsets else MAX_OPSET
            if not any(n.domain in DEFAULT_DOMAINS for n in proto.graph.node):
                opset = MAX_OPSET
        if opset < MIN_OPSET or opset > MAX_OPSET:
            log(self.logger, Severity.WARNING,
                f"the model imports opset {opset} of the default domain; this parser is "
                f"written for opsets {MIN_OPSET} to {MAX_OPSET} and imports each op with its "
                f"nearest importer")
        ctx = ImportContext(self.network, self.logger, opset, self.flags)
        ctx.domain_opsets = {d: v for d, v in opsets.items() if d not in DEFAULT_DOMAINS}
        graph = _GraphImporter(self, ctx)
        graph.import_main(proto.graph)

    def _record(self, code: ErrorCode, desc: str, *, node: Node | None = None,
                index: int = -1, name: str = "", op: str = "", tensor: str | None = None,
                where: traceback.FrameSummary | None = None) -> None:
        if node is not None:
            index, name, op = node.index, node.name, node.op_type
        error = ParserError(code, desc, node=index, node_name=name, node_operator=op,
                            file=where.filename if where else __file__,
                            line=where.lineno or 0 if where else 0,
                            func=where.name if where else "parse", tensor=tensor)
        self._errors.append(error)
        log(self.logger, Severity.ERROR, f"ONNX parser: {error}")


class _GraphImporter:
    """Imports a graph's nodes into the network; subgraphs (If, Loop) through ``ctx``."""

    def __init__(self, parser: OnnxParser, ctx: ImportContext) -> None:
        self.parser = parser
        self.ctx = ctx
        # Name -> tensor, and name -> initializer not yet turned into a constant; scoped so
        # a subgraph imported twice (an unrolled loop) gets fresh names.
        self.tensors: collections.ChainMap[str, ITensor] = collections.ChainMap()
        self.initializers: collections.ChainMap[str, onnx.TensorProto] = collections.ChainMap()
        ctx.tensors = self.tensors  # type: ignore[assignment]
        ctx.import_subgraph = self.import_subgraph  # type: ignore[attr-defined]

    def import_main(self, graph: onnx.GraphProto) -> None:
        self._add_initializers(graph)
        for value_info in graph.input:
            if value_info.name in self.initializers:
                continue  # IR < 4 lists initializers among the inputs too
            self._add_input(value_info)
        order = topological_nodes(graph, set(self.tensors) | set(self.initializers))
        self.parser._node_count = len(graph.node)
        for index in order:
            self._import_node(graph.node[index], index)
        if not graph.output:
            raise ImportFailure(ErrorCode.INVALID_GRAPH, "the graph has no outputs")
        for value_info in graph.output:
            tensor = self._lookup(value_info.name, f"graph output '{value_info.name}'")
            if tensor.is_network_input or tensor.is_network_output:
                tensor = output_of(self.ctx.network.add_identity(tensor))
            elif self.ctx.value(tensor) is not None and tensor.producer is not None \
                    and tensor.name != value_info.name:
                tensor = output_of(self.ctx.network.add_identity(tensor))
            if value_info.type.tensor_type.elem_type == onnx.TensorProto.UINT8:
                tensor = self._uint8_output(tensor)
            tensor.name = value_info.name
            self.ctx.network.mark_output(tensor)

    def _uint8_output(self, tensor: ITensor) -> ITensor:
        """TensorRT's rule: a UINT8 output must come from a Cast of a FLOAT (or HALF) tensor.
        Values computed in another type (INT32 after a widened UINT8 input) are cast through
        FLOAT, which holds every value of 0..255 exactly."""
        producer = tensor.producer
        source = producer.get_input(0) if producer is not None else None
        if tensor.dtype == DataType.UINT8 and producer is not None and \
                producer.layer_type == LayerType.CAST and source is not None and \
                source.dtype in (DataType.FLOAT, DataType.HALF):
            return tensor
        as_float = tensor if tensor.dtype == DataType.FLOAT else \
            output_of(self.ctx.network.add_cast(tensor, DataType.FLOAT))
        return output_of(self.ctx.network.add_cast(as_float, DataType.UINT8))

    def import_subgraph(self, graph: onnx.GraphProto, inputs: list[ITensor]) -> list[ITensor]:
        """Import a subgraph's nodes in a fresh scope, its formal inputs bound to ``inputs``;
        returns its outputs."""
        self.tensors.maps.insert(0, {})
        self.initializers.maps.insert(0, {})
        try:
            for value_info, tensor in zip(graph.input, inputs):
                self.tensors[value_info.name] = tensor
            self._add_initializers(graph)
            available = set(self.tensors) | set(self.initializers)
            for index in topological_nodes(graph, available):
                self._import_node(graph.node[index], index)
            return [self._lookup(o.name, f"subgraph output '{o.name}'") for o in graph.output]
        finally:
            self.tensors.maps.pop(0)
            self.initializers.maps.pop(0)

    def _add_initializers(self, graph: onnx.GraphProto) -> None:
        for tensor in graph.initializer:
            self.initializers[tensor.name] = tensor
        for sparse in graph.sparse_initializer:
            values = onnx.numpy_helper.to_array(sparse.values)
            indices = onnx.numpy_helper.to_array(sparse.indices)
            full = np.zeros(tuple(sparse.dims), values.dtype)
            if indices.ndim == 1:
                full.reshape(-1)[indices] = values
            else:
                full[tuple(indices.T)] = values
            dense = onnx.numpy_helper.from_array(full, sparse.values.name)
            self.initializers[sparse.values.name] = dense

    def _add_input(self, value_info: onnx.ValueInfoProto) -> None:
        name = value_info.name
        what = f"graph input '{name}'"
        if not value_info.type.HasField("tensor_type"):
            kind = value_info.type.WhichOneof("value")
            raise ImportFailure(ErrorCode.UNSUPPORTED_GRAPH,
                                f"{what} is a {kind or 'value of unknown kind'}; only tensors "
                                f"are supported")
        try:
            dtype = trt_dtype(value_info.type.tensor_type.elem_type, what, self.ctx.warn)
        except ImportFailure as failure:
            raise ImportFailure(ErrorCode.UNSUPPORTED_GRAPH, failure.message) from None
        shape = shape_of_value_info(value_info)
        if shape is None:
            raise ImportFailure(ErrorCode.UNSUPPORTED_GRAPH,
                                f"{what} declares no shape; TensorRT needs at least the rank")
        try:
            self.tensors[name] = self.ctx.network.add_input(name, dtype, shape)
        except NetworkError as exc:
            raise ImportFailure(ErrorCode.INVALID_GRAPH, f"{what}: {exc}") from None
        if value_info.type.tensor_type.elem_type in WIDENED or \
                value_info.type.tensor_type.elem_type in NARROWED:
            self.ctx.onnx_types[self.tensors[name]] = value_info.type.tensor_type.elem_type
        if dtype == DataType.UINT8:
            # TensorRT's rule: a UINT8 input goes through a Cast to FLOAT before any other use;
            # the graph then computes on its values in INT32 (exact for 0..255).
            network = self.ctx.network
            as_float = output_of(network.add_cast(self.tensors[name], DataType.FLOAT))
            self.tensors[name] = output_of(network.add_cast(as_float, DataType.INT32))
            self.ctx.onnx_types[self.tensors[name]] = onnx.TensorProto.UINT8

    def _lookup(self, name: str, what: str) -> ITensor:
        if name in self.tensors:
            return self.tensors[name]
        if name in self.initializers:
            array = array_from_tensor(self.initializers[name], f"initializer '{name}'",
                                      self.ctx.warn)
            tensor = self.ctx.constant(array)
            self.ctx.name_initializer(tensor, name)
            self.tensors[name] = tensor
            return tensor
        raise ImportFailure(ErrorCode.INVALID_GRAPH, f"{what}: no value named '{name}'")

    def _import_node(self, proto: onnx.NodeProto, index: int, opset: int | None = None
                     ) -> None:
        try:
            inputs = [None if not n else self._lookup(n, f"input '{n}'") for n in proto.input]
        except ImportFailure as failure:
            raise self._fail(failure, proto, index) from None
        node = Node(proto, index, inputs, self.ctx.opset if opset is None else opset)
        first_layer = self.ctx.network.num_layers
        try:
            outputs = self._run_importer(node)
        except ImportFailure as failure:
            raise self._fail(failure, proto, index) from None
        except NetworkError as exc:
            raise self._fail(ImportFailure(ErrorCode.INVALID_NODE, str(exc)), proto, index,
                             exc) from None
        except (EngineError, AttributeError, NotImplementedError, TypeError, ValueError,
                IndexError, KeyError) as exc:
            message = f"{type(exc).__name__}: {exc}"
            code = ErrorCode.UNSUPPORTED_NODE if isinstance(
                exc, (AttributeError, NotImplementedError)) else ErrorCode.INTERNAL_ERROR
            raise self._fail(ImportFailure(code, message), proto, index, exc) from None
        self._name_layers(node, first_layer)
        self._bind_outputs(node, outputs)

    def _run_importer(self, node: Node) -> list[ITensor | None]:
        fn = find_importer(node.op_type, node.opset, node.proto.domain)
        if fn is not None:
            outputs = fn(self.ctx, node)
            return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        domain = node.proto.domain
        schema_opset = (node.opset if domain in DEFAULT_DOMAINS
                        else self.ctx.domain_opsets.get(domain))
        if schema_opset is not None:
            # ONNX's own domains (the default one, ai.onnx.preview) define some ops by functions.
            types = [None if t is None else (t.dtype, tuple(t.shape)) for t in node.inputs]
            function = function_body(node.proto, schema_opset, types)
            if function is not None:
                body_opset = function_opset(function, node.opset)
                for inner in expand_function(node.proto, function):
                    self._import_node(inner, node.index, body_opset)
                return [self.tensors[n] if n in self.tensors else None
                        for n in node.proto.output]
        from engine.plugins.onnx_fallback import import_as_plugin

        plugin_outputs = import_as_plugin(self.ctx.network, node.proto, node.inputs)
        if plugin_outputs is not None:
            return plugin_outputs
        where = f" (domain '{domain}')" if domain else ""
        node.unsupported(f"no importer and no plugin for op {node.op_type}{where}")

    def _bind_outputs(self, node: Node, outputs: list[ITensor | None]) -> None:
        known = set(self.tensors.values())
        for i, name in enumerate(node.proto.output):
            if not name:
                continue
            tensor = outputs[i] if i < len(outputs) else None
            if tensor is None:
                raise self._fail(ImportFailure(ErrorCode.UNSUPPORTED_NODE,
                                               f"output {i} ('{name}') is not produced by this "
                                               f"importer"), node.proto, node.index)
            if tensor.is_network_input or tensor in known or tensor.name in self.tensors:
                value = self.ctx.value(tensor)
                tensor = output_of(self.ctx.network.add_identity(tensor))
                if value is not None:
                    self.ctx._values[tensor] = value
            tensor.name = name
            self.tensors[name] = tensor
            known.add(tensor)

    def _name_layers(self, node: Node, first: int) -> None:
        network = self.ctx.network
        base = node.name or f"{node.op_type}_{node.index}"
        added = [network.get_layer(i) for i in range(first, network.num_layers)]
        for k, layer in enumerate(added):
            if layer is None:
                continue
            layer.name = base if k == len(added) - 1 else f"{base}/{k}"
            layer.metadata = f"{node.op_type} '{base}'"

    def _fail(self, failure: ImportFailure, proto: onnx.NodeProto, index: int,
              exc: BaseException | None = None) -> ImportFailure:
        """Record ``failure`` against the node once; returns a marker that unwinds."""
        if not getattr(failure, "recorded", False):
            where = None
            tb = traceback.extract_tb((exc or failure).__traceback__)
            if tb:
                where = tb[-1]
            self.parser._record(failure.code, failure.message, index=index, name=proto.name,
                                op=proto.op_type, tensor=failure.tensor, where=where)
            failure.recorded = True  # type: ignore[attr-defined]
        return _Recorded(failure)


class _Recorded(ImportFailure):
    """A failure already recorded as a ParserError; unwinds the import."""

    def __init__(self, failure: ImportFailure) -> None:
        super().__init__(failure.code, failure.message, tensor=failure.tensor)
        self.recorded = True
