"""The client's operations over KServe v2 REST, as calls that a sync or an async transport
makes: method, path, body and headers, and how to read the answer. Tensors travel with
Triton's binary tensor extension (a JSON header, then the raw bytes of each tensor)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clients.errors import InferenceServerError
from clients.shared_memory import RegionInput, RegionOutput
from clients.tensors import NUMPY_OF_DATATYPE, datatype_of, from_bytes, to_bytes

HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True)
class HttpCall:
    method: str
    path: str
    read: Callable[[HttpAnswer], Any]
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    manages: bool = False  # a repository call: carries the API token


def _model_path(model: str, version: str) -> str:
    return f"/v2/models/{model}" + (f"/versions/{version}" if version else "")


def check(answer: HttpAnswer) -> HttpAnswer:
    if answer.status >= 400:
        try:
            message = json.loads(answer.content)["error"]
        except (ValueError, KeyError, TypeError):
            message = answer.content.decode(errors="replace") or "(no message)"
        raise InferenceServerError(message, str(answer.status))
    return answer


def _json(answer: HttpAnswer) -> Any:
    return json.loads(check(answer).content)


def _ok(answer: HttpAnswer) -> bool:
    # Health endpoints answer 200 or 503 with no body; anything else is a real error.
    if answer.status == 503:
        return False
    return check(answer).status == 200


def _none(answer: HttpAnswer) -> None:
    check(answer)


def server_live() -> HttpCall:
    return HttpCall("GET", "/v2/health/live", _ok)


def server_ready() -> HttpCall:
    return HttpCall("GET", "/v2/health/ready", _ok)


def model_ready(model: str, version: str) -> HttpCall:
    return HttpCall("GET", _model_path(model, version) + "/ready", _ok)


def server_metadata() -> HttpCall:
    return HttpCall("GET", "/v2", _json)


def model_metadata(model: str, version: str) -> HttpCall:
    return HttpCall("GET", _model_path(model, version), _json)


def model_config(model: str, version: str) -> HttpCall:
    return HttpCall("GET", _model_path(model, version) + "/config", _json)


Outputs = Sequence[str] | Mapping[str, RegionOutput | None] | None


def requested_outputs(outputs: Outputs) -> dict[str, RegionOutput | None] | None:
    """Output names, each with the region to write it to (None: answer it by value)."""
    if outputs is None or isinstance(outputs, Mapping):
        return None if outputs is None else dict(outputs)
    return {name: None for name in outputs}


def infer(model: str, inputs: Mapping[str, np.ndarray | RegionInput], outputs: Outputs,
          version: str, request_id: str) -> HttpCall:
    header: dict[str, Any] = {"inputs": [], "parameters": {"binary_data_output": True}}
    blobs = []
    for name, array in inputs.items():
        if isinstance(array, RegionInput):
            header["inputs"].append({"name": name, "datatype": array.datatype,
                                     "shape": list(array.shape),
                                     "parameters": array.parameters()})
            continue
        array = np.asarray(array)
        blob = to_bytes(array)
        header["inputs"].append({"name": name, "datatype": datatype_of(array),
                                 "shape": list(array.shape),
                                 "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    wanted = requested_outputs(outputs)
    if wanted is not None:
        header["outputs"] = [{"name": n, "parameters": place.parameters() if place else
                              {"binary_data": True}} for n, place in wanted.items()]
    if request_id:
        header["id"] = request_id
    text = json.dumps(header).encode()
    return HttpCall("POST", _model_path(model, version) + "/infer", infer_outputs,
                    body=b"".join([text, *blobs]),
                    headers={HEADER_LENGTH: str(len(text)),
                             "Content-Type": "application/octet-stream"})


def infer_outputs(answer: HttpAnswer) -> dict[str, np.ndarray]:
    check(answer)
    length = answer.headers.get(HEADER_LENGTH.lower()) or answer.headers.get(HEADER_LENGTH)
    split = len(answer.content) if length is None else int(length)
    header = json.loads(answer.content[:split])
    out, offset = {}, split
    for tensor in header["outputs"]:
        parameters = tensor.get("parameters", {})
        if "shared_memory_region" in parameters:  # written to shared memory
            continue
        size = parameters.get("binary_data_size")
        if size is None:  # the server answered this one in JSON
            data = tensor["data"]
            if tensor["datatype"] == "BYTES":
                array = np.array([x.encode() for x in data], dtype=object)
            else:
                array = np.array(data, dtype=NUMPY_OF_DATATYPE[tensor["datatype"]])
            out[tensor["name"]] = array.reshape(tensor["shape"])
            continue
        raw = answer.content[offset:offset + size]
        offset += size
        out[tensor["name"]] = from_bytes(raw, tensor["datatype"], tensor["shape"])
    return out


def statistics(model: str, version: str) -> HttpCall:
    path = (_model_path(model, version) if model else "/v2/models") + "/stats"
    return HttpCall("GET", path, lambda answer: _json(answer)["model_stats"])


def repository_index(ready_only: bool) -> HttpCall:
    return HttpCall("POST", "/v2/repository/index", _json,
                    body=json.dumps({"ready": ready_only}).encode(),
                    headers={"Content-Type": "application/json"})


def load_model(model: str, config: str | None, files: Mapping[str, bytes]) -> HttpCall:
    parameters: dict[str, str] = {}
    if config is not None:
        parameters["config"] = config
    for path, data in files.items():
        parameters[f"file:{path}"] = base64.b64encode(data).decode()
    body = json.dumps({"parameters": parameters} if parameters else {}).encode()
    return HttpCall("POST", f"/v2/repository/models/{model}/load", _none, body=body,
                    headers={"Content-Type": "application/json"}, manages=True)


def unload_model(model: str) -> HttpCall:
    return HttpCall("POST", f"/v2/repository/models/{model}/unload", _none, body=b"{}",
                    headers={"Content-Type": "application/json"}, manages=True)


# -- shared memory --------------------------------------------------------------------------
def shared_memory_status(kind: str, name: str) -> HttpCall:
    region = f"/region/{name}" if name else ""
    return HttpCall("GET", f"/v2/{kind}sharedmemory{region}/status", _json)


def register_system_shared_memory(name: str, key: str, byte_size: int, offset: int) -> HttpCall:
    body = json.dumps({"key": key, "offset": offset, "byte_size": byte_size}).encode()
    return HttpCall("POST", f"/v2/systemsharedmemory/region/{name}/register", _none,
                    body=body, headers={"Content-Type": "application/json"})


def register_cuda_shared_memory(name: str, raw_handle: bytes, device_id: int,
                                byte_size: int) -> HttpCall:
    body = json.dumps({"raw_handle": {"b64": base64.b64encode(raw_handle).decode()},
                       "device_id": device_id, "byte_size": byte_size}).encode()
    return HttpCall("POST", f"/v2/cudasharedmemory/region/{name}/register", _none,
                    body=body, headers={"Content-Type": "application/json"})


def unregister_shared_memory(kind: str, name: str) -> HttpCall:
    region = f"/region/{name}" if name else ""
    return HttpCall("POST", f"/v2/{kind}sharedmemory{region}/unregister", _none)
