"""The client's operations over gRPC, as calls that a sync or an async transport makes:
each is the rpc's name, its request message, and how to read the reply into Python values.
Replies read as the JSON shapes the REST face returns (ints stay ints, enums are names)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf.message import Message

from clients.http_calls import Outputs, requested_outputs
from clients.shared_memory import RegionInput
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


def _set_parameters(target: Any, parameters: Mapping[str, Any]) -> None:
    for key, value in parameters.items():
        if isinstance(value, str):
            target[key].string_param = value
        else:
            target[key].int64_param = value


def infer(model: str, inputs: Mapping[str, np.ndarray | RegionInput], outputs: Outputs,
          version: str, request_id: str) -> GrpcCall:
    request = pb.ModelInferRequest(model_name=model, model_version=version, id=request_id)
    in_regions = [value for value in inputs.values() if isinstance(value, RegionInput)]
    for name, array in inputs.items():
        if isinstance(array, RegionInput):
            tensor = request.inputs.add(name=name, datatype=array.datatype,
                                        shape=list(array.shape))
            _set_parameters(tensor.parameters, array.parameters())
            continue
        array = np.asarray(array)
        tensor = request.inputs.add(name=name, datatype=datatype_of(array),
                                    shape=list(array.shape))
        if in_regions:  # raw contents are all-or-none: this one travels in its typed form
            tensor.contents.CopyFrom(_contents_of(array))
        else:
            request.raw_input_contents.append(to_bytes(array))
    for name, place in (requested_outputs(outputs) or {}).items():
        output = request.outputs.add(name=name)
        if place is not None:
            _set_parameters(output.parameters, place.parameters())
    return GrpcCall("ModelInfer", request, infer_outputs)


def _contents_of(array: np.ndarray) -> pb.InferTensorContents:
    field = {"b": "bool_contents", "i": "int64_contents" if array.dtype.itemsize == 8
             else "int_contents", "u": "uint64_contents" if array.dtype.itemsize == 8
             else "uint_contents", "f": "fp64_contents" if array.dtype.itemsize == 8
             else "fp32_contents", "O": "bytes_contents"}.get(array.dtype.kind)
    if field is None or array.dtype == np.float16:
        raise TypeError(f"a {array.dtype} input cannot travel beside shared-memory inputs "
                        f"over gRPC; place it in the region too")
    values = [bytes(x) for x in array.reshape(-1)] if field == "bytes_contents" \
        else array.reshape(-1).tolist()
    contents = pb.InferTensorContents()
    getattr(contents, field).extend(values)
    return contents


def infer_outputs(reply: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """The outputs answered by value (those written to shared memory are not)."""
    return {out.name: from_bytes(raw, out.datatype, list(out.shape))
            for out, raw in zip(reply.outputs, reply.raw_output_contents)
            if "shared_memory_region" not in out.parameters}


# -- shared memory --------------------------------------------------------------------------
def shared_memory_status(kind: str, name: str) -> GrpcCall:
    if kind == "system":
        request: Message = pb.SystemSharedMemoryStatusRequest(name=name)
        method = "SystemSharedMemoryStatus"
    else:
        request, method = pb.CudaSharedMemoryStatusRequest(name=name), "CudaSharedMemoryStatus"
    return GrpcCall(method, request,
                    lambda reply: list(message_to_python(reply)["regions"].values()))


def register_system_shared_memory(name: str, key: str, byte_size: int, offset: int) -> GrpcCall:
    return GrpcCall("SystemSharedMemoryRegister", pb.SystemSharedMemoryRegisterRequest(
        name=name, key=key, offset=offset, byte_size=byte_size), lambda reply: None)


def register_cuda_shared_memory(name: str, raw_handle: bytes, device_id: int,
                                byte_size: int) -> GrpcCall:
    return GrpcCall("CudaSharedMemoryRegister", pb.CudaSharedMemoryRegisterRequest(
        name=name, raw_handle=raw_handle, device_id=device_id, byte_size=byte_size),
        lambda reply: None)


def unregister_shared_memory(kind: str, name: str) -> GrpcCall:
    if kind == "system":
        return GrpcCall("SystemSharedMemoryUnregister",
                        pb.SystemSharedMemoryUnregisterRequest(name=name), lambda reply: None)
    return GrpcCall("CudaSharedMemoryUnregister",
                    pb.CudaSharedMemoryUnregisterRequest(name=name), lambda reply: None)


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


