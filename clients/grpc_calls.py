"""The client's operations over gRPC, as calls that a sync or an async transport makes:
each is the rpc's name, its request message, and how to read the reply into Python values.
Replies read as the JSON shapes the REST face returns (ints stay ints, enums are names)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf.message import Message

from clients.tensors import datatype_of, from_bytes, to_bytes
from server.grpc._generated import grpc_service_pb2 as pb


@dataclass(frozen=True)
class GrpcCall:
    method: str  # the rpc's name on inference.GRPCInferenceService
    request: Message
    read: Callable[[Any], Any]


def message_to_python(message: Message) -> dict[str, Any]:
    """Set message fields and every scalar field (defaults included) as Python values."""
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _value(value_field, v) for k, v in value.items()}
        elif field.is_repeated:
            out[field.name] = [_value(field, v) for v in value]
        elif field.message_type is not None:
            if message.HasField(field.name):
                out[field.name] = message_to_python(value)
        elif field.containing_oneof is None or message.HasField(field.name):
            out[field.name] = _value(field, value)
    return out


def _value(field: Any, value: Any) -> Any:
    if field.message_type is not None:
        return message_to_python(value)
    if field.enum_type is not None:
        return field.enum_type.values_by_number[value].name
    return value


def _flag(name: str) -> Callable[[Any], bool]:
    return lambda reply: bool(getattr(reply, name))


def server_live() -> GrpcCall:
    return GrpcCall("ServerLive", pb.ServerLiveRequest(), _flag("live"))


def server_ready() -> GrpcCall:
    return GrpcCall("ServerReady", pb.ServerReadyRequest(), _flag("ready"))


def model_ready(model: str, version: str) -> GrpcCall:
    return GrpcCall("ModelReady", pb.ModelReadyRequest(name=model, version=version),
                    _flag("ready"))


def server_metadata() -> GrpcCall:
    return GrpcCall("ServerMetadata", pb.ServerMetadataRequest(), message_to_python)


def model_metadata(model: str, version: str) -> GrpcCall:
    return GrpcCall("ModelMetadata", pb.ModelMetadataRequest(name=model, version=version),
                    message_to_python)


def model_config(model: str, version: str) -> GrpcCall:
    return GrpcCall("ModelConfig", pb.ModelConfigRequest(name=model, version=version),
                    lambda reply: message_to_python(reply.config))


def infer(model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None,
          version: str, request_id: str) -> GrpcCall:
    request = pb.ModelInferRequest(model_name=model, model_version=version, id=request_id)
    for name, array in inputs.items():
        array = np.asarray(array)
        request.inputs.add(name=name, datatype=datatype_of(array), shape=list(array.shape))
        request.raw_input_contents.append(to_bytes(array))
    for name in outputs or ():
        request.outputs.add(name=name)
    return GrpcCall("ModelInfer", request, infer_outputs)


def infer_outputs(reply: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    return {out.name: from_bytes(raw, out.datatype, list(out.shape))
            for out, raw in zip(reply.outputs, reply.raw_output_contents)}


def statistics(model: str, version: str) -> GrpcCall:
    return GrpcCall("ModelStatistics", pb.ModelStatisticsRequest(name=model, version=version),
                    lambda reply: message_to_python(reply)["model_stats"])


def repository_index(ready_only: bool) -> GrpcCall:
    return GrpcCall("RepositoryIndex", pb.RepositoryIndexRequest(ready=ready_only),
                    lambda reply: message_to_python(reply)["models"])


def load_model(model: str, config: str | None, files: Mapping[str, bytes]) -> GrpcCall:
    request = pb.RepositoryModelLoadRequest(model_name=model)
    if config is not None:
        request.parameters["config"].string_param = config
    for path, data in files.items():
        request.parameters[f"file:{path}"].bytes_param = data
    return GrpcCall("RepositoryModelLoad", request, lambda reply: None)


def unload_model(model: str) -> GrpcCall:
    return GrpcCall("RepositoryModelUnload", pb.RepositoryModelUnloadRequest(model_name=model),
                    lambda reply: None)


