"""Every translation between protobuf messages and the core's values lives here.

The core speaks Triton's JSON shapes (metadata, configuration, statistics, repository index)
and ``server.core.codec``'s ``InferRequest`` / ``InferResponse``. Triton chose its JSON field
names to match the protobuf field names, so the JSON shapes go through ``json_format``; only
tensors are translated by hand.

Tensor data arrives in one of three ways (KServe v2 gRPC, Triton's shared-memory extension):
``raw_input_contents`` (one little-endian blob per input, in input order), the typed lists of
``InferTensorContents``, or by reference into a registered shared-memory region. Responses
always carry ``raw_output_contents`` (as Triton does), or write into a shared-memory region
when the client asked for that output there.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from google.protobuf import json_format
from google.protobuf.message import Message

from server.core.codec import (
    InferInput,
    InferRequest,
    InferResponse,
    RequestedOutput,
    tensor_from_binary,
    tensor_to_binary,
)
from server.core.datatypes import numpy_of
from server.core.errors import InvalidArgument
from server.core.shared_memory import region_reference
from server.grpc._generated import grpc_service_pb2 as pb
from server.grpc._generated import model_config_pb2 as mc

# Which InferTensorContents list carries each datatype (narrow integers travel widened).
# FP16 and BF16 have no typed list: they travel as raw bytes only.
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


# -- JSON-shaped answers --------------------------------------------------------------------
def message_from_json(data: Mapping[str, Any], message: Message) -> Message:
    """Fill ``message`` from Triton's JSON shape of it. Fields this server's protos leave out
    (Triton has many more configuration fields) are dropped rather than refused."""
    return json_format.ParseDict(data, message, ignore_unknown_fields=True)


def message_to_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def server_metadata_to_proto(metadata: Mapping[str, Any]) -> pb.ServerMetadataResponse:
    return message_from_json(metadata, pb.ServerMetadataResponse())


def model_metadata_to_proto(metadata: Mapping[str, Any]) -> pb.ModelMetadataResponse:
    return message_from_json(metadata, pb.ModelMetadataResponse())


def model_config_to_proto(config: Mapping[str, Any]) -> pb.ModelConfigResponse:
    return pb.ModelConfigResponse(config=message_from_json(config, mc.ModelConfig()))


def statistics_to_proto(model_stats: Iterable[Mapping[str, Any]]) -> pb.ModelStatisticsResponse:
    return message_from_json({"model_stats": list(model_stats)}, pb.ModelStatisticsResponse())


def repository_index_to_proto(models: Iterable[Mapping[str, Any]]) -> pb.RepositoryIndexResponse:
    return message_from_json({"models": list(models)}, pb.RepositoryIndexResponse())


# -- model repository -----------------------------------------------------------------------
def load_parameters_from_proto(
        parameters: Mapping[str, pb.ModelRepositoryParameter]) -> dict[str, Any]:
    """The load parameters in the core's (Triton's JSON) shape: ``config`` as JSON text and
    each ``file:<version>/<name>`` as base64 text. Over gRPC a file arrives as a
    ``bytes_param``; it is re-encoded so that one core call checks every upload."""
    out: dict[str, Any] = {}
    for key, parameter in parameters.items():
        value = parameter_value(parameter)
        out[key] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
    return out


# -- shared memory --------------------------------------------------------------------------
def system_shared_memory_status_to_proto(
        regions: Iterable[Mapping[str, Any]]) -> pb.SystemSharedMemoryStatusResponse:
    return message_from_json({"regions": {r["name"]: r for r in regions}},
                             pb.SystemSharedMemoryStatusResponse())


def cuda_shared_memory_status_to_proto(
        regions: Iterable[Mapping[str, Any]]) -> pb.CudaSharedMemoryStatusResponse:
    return message_from_json({"regions": {r["name"]: r for r in regions}},
                             pb.CudaSharedMemoryStatusResponse())


# -- parameters -----------------------------------------------------------------------------
def parameter_value(parameter: pb.InferParameter | pb.ModelRepositoryParameter) -> Any:
    choice = parameter.WhichOneof("parameter_choice")
    return None if choice is None else getattr(parameter, choice)


def parameters_from_proto(parameters: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    return {key: parameter_value(value) for key, value in parameters.items()}


def _set_parameter(target: pb.InferParameter, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_param = value
    elif isinstance(value, int):
        target.int64_param = value
    elif isinstance(value, float):
        target.double_param = value
    else:
        target.string_param = str(value)


# -- inference ------------------------------------------------------------------------------
def infer_request_from_proto(request: pb.ModelInferRequest) -> InferRequest:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(f"inference request: {len(raw)} raw_input_contents for "
                              f"{len(request.inputs)} inputs; when raw contents are used, "
                              f"every input needs one, in input order")
    inputs = []
    for index, tensor in enumerate(request.inputs):
        shape = tuple(tensor.shape)
        if any(d < 0 for d in shape):
            raise InvalidArgument(f"input '{tensor.name}': shape {list(shape)} has a negative "
                                  f"dimension")
        numpy_of(tensor.datatype)  # refuses an unknown datatype by name
        region = region_reference(parameters_from_proto(tensor.parameters),
                                  f"input '{tensor.name}'")
        if region is not None:
            data = None
        elif raw:
            data = tensor_from_binary(raw[index], tensor.datatype, shape, tensor.name)
        else:
            data = _tensor_from_contents(tensor, shape)
        inputs.append(InferInput(tensor.name, tensor.datatype, shape, data, region))
    outputs = [RequestedOutput(o.name, binary=True, region=region_reference(
        parameters_from_proto(o.parameters), f"output '{o.name}'"))
        for o in request.outputs] or None
    return InferRequest(inputs, outputs, request.id or None, binary_output=True,
                        parameters=parameters_from_proto(request.parameters))


def _tensor_from_contents(tensor: pb.ModelInferRequest.InferInputTensor,
                          shape: tuple[int, ...]) -> np.ndarray:
    field = CONTENTS_FIELD.get(tensor.datatype)
    if field is None:
        raise InvalidArgument(f"input '{tensor.name}': {tensor.datatype} has no typed "
                              f"contents list; send it in raw_input_contents")
    values = getattr(tensor.contents, field)
    count = math.prod(shape)
    if len(values) != count:
        raise InvalidArgument(f"input '{tensor.name}': {len(values)} values in "
                              f"contents.{field} for shape {list(shape)} ({count} expected)")
    dtype = numpy_of(tensor.datatype)
    if tensor.datatype == "BYTES":
        array = np.empty(count, dtype=object)
        array[:] = list(values)
        return array.reshape(shape)
    wide = np.asarray(values)
    if dtype.kind in "iu" and wide.size:
        info = np.iinfo(dtype)
        if wide.min() < info.min or wide.max() > info.max:
            raise InvalidArgument(f"input '{tensor.name}': a value in contents.{field} lies "
                                  f"outside {tensor.datatype}'s range [{info.min}, {info.max}]")
    return wide.astype(dtype).reshape(shape)


def infer_response_to_proto(response: InferResponse) -> pb.ModelInferResponse:
    """Encode ``response``; an output written to shared memory is answered with its region
    parameters and an empty raw entry, so raw entries stay aligned with outputs."""
    message = pb.ModelInferResponse(model_name=response.model_name,
                                    model_version=response.model_version,
                                    id=response.id or "")
    for output in response.outputs:
        tensor = message.outputs.add(name=output.name, datatype=output.datatype,
                                     shape=list(output.data.shape))
        if output.region is not None:
            for key, value in output.region.to_parameters().items():
                _set_parameter(tensor.parameters[key], value)
            message.raw_output_contents.append(b"")
        else:
            message.raw_output_contents.append(tensor_to_binary(output.data, output.datatype))
    return message


def stream_error_to_proto(message: str) -> pb.ModelStreamInferResponse:
    return pb.ModelStreamInferResponse(error_message=message)


def stream_response_to_proto(response: pb.ModelInferResponse) -> pb.ModelStreamInferResponse:
    return pb.ModelStreamInferResponse(infer_response=response)
