"""KServe v2 inference requests and responses as JSON, with Triton's binary tensor extension.

A request body is a JSON header, optionally followed by binary tensor data; the
``Inference-Header-Content-Length`` HTTP header gives the JSON's length when binary data
follows. An input with ``parameters.binary_data_size`` takes that many bytes from the binary
part, in input order. Binary tensors are little-endian, row-major; BOOL is one byte per
element; a BYTES element is a 4-byte little-endian length then the bytes.
(Triton: docs/protocol/extension_binary_data.md.)

An input or a requested output may instead name a registered shared-memory region through
its ``shared_memory_region`` / ``shared_memory_offset`` / ``shared_memory_byte_size``
parameters (Triton: docs/protocol/extension_shared_memory.md); the codec records the
reference, ``DataPlane.infer`` reads and writes the region, and an output placed there is
answered with those parameters and no data.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from server.core.datatypes import datatype_of_numpy, numpy_of
from server.core.errors import InvalidArgument
from server.core.shared_memory import RegionReference, region_reference

HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass
class InferInput:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | None  # None until read from ``region``
    region: RegionReference | None = None


@dataclass
class RequestedOutput:
    name: str
    binary: bool
    region: RegionReference | None = None  # write the output there


@dataclass
class InferRequest:
    inputs: list[InferInput]
    outputs: list[RequestedOutput] | None = None  # None: every output
    id: str | None = None
    binary_output: bool = False  # the request's binary_data_output parameter
    parameters: dict[str, Any] = field(default_factory=dict)

    def wants_binary(self, name: str) -> bool:
        for requested in self.outputs or []:
            if requested.name == name:
                return requested.binary
        return self.binary_output


@dataclass
class InferOutput:
    name: str
    datatype: str
    data: np.ndarray
    region: RegionReference | None = None  # where it was written (its actual byte size)


@dataclass
class InferResponse:
    model_name: str
    model_version: str
    outputs: list[InferOutput]
    id: str | None = None
    # The compute input / infer / output durations charged to the request (an ensemble adds
    # up its steps'); statistics only, never encoded.
    compute_ns: tuple[int, int, int] = (0, 0, 0)


# -- tensors ------------------------------------------------------------------------------------
def bytes_from_binary(raw: bytes | memoryview, count: int, name: str) -> np.ndarray:
    """A BYTES tensor's elements from Triton's length-prefixed serialization."""
    raw = memoryview(raw)
    items: list[bytes] = []
    pos = 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise InvalidArgument(f"input '{name}': BYTES element {len(items)} has a truncated "
                                  f"4-byte length prefix")
        (length,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + length > len(raw):
            raise InvalidArgument(f"input '{name}': BYTES element {len(items)} claims {length} "
                                  f"bytes, only {len(raw) - pos} remain")
        items.append(bytes(raw[pos:pos + length]))
        pos += length
    if len(items) != count:
        raise InvalidArgument(f"input '{name}': {len(items)} BYTES elements for a shape of "
                              f"{count} elements")
    out = np.empty(count, dtype=object)
    out[:] = items
    return out


def bytes_to_binary(array: np.ndarray) -> bytes:
    parts = []
    for item in array.reshape(-1):
        data = item.encode() if isinstance(item, str) else bytes(item)
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)


def tensor_from_binary(raw: bytes | memoryview, datatype: str, shape: tuple[int, ...],
                       name: str) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        return bytes_from_binary(raw, count, name).reshape(shape)
    dtype = numpy_of(datatype).newbyteorder("<") if datatype != "BF16" else numpy_of(datatype)
    if len(raw) != count * dtype.itemsize:
        raise InvalidArgument(f"input '{name}': {len(raw)} bytes of binary data for shape "
                              f"{list(shape)} of {datatype} ({count * dtype.itemsize} bytes "
                              f"expected)")
    if datatype == "BOOL" and any(b > 1 for b in bytes(raw)):
        raise InvalidArgument(f"input '{name}': BOOL binary data must be bytes 0 or 1")
    return np.frombuffer(raw, dtype=dtype).astype(numpy_of(datatype), copy=True).reshape(shape)


def tensor_to_binary(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        return bytes_to_binary(array)
    if datatype == "BF16":
        return np.ascontiguousarray(array).tobytes()
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


_JSON_KINDS = {"b": "b", "u": "iu", "i": "iu", "f": "iuf"}


def tensor_from_json(data: Any, datatype: str, shape: tuple[int, ...], name: str) -> np.ndarray:
    """A tensor from JSON ``data`` (flat or nested, row-major), checked element by element
    for its type: no silent float-to-int truncation, no strings in numeric tensors."""
    count = math.prod(shape)
    if not isinstance(data, list):
        data = [data]
    if datatype == "BYTES":
        flat = _flatten(data, name)
        if any(not isinstance(x, str) for x in flat):
            raise InvalidArgument(f"input '{name}': BYTES data in JSON must be strings")
        out = np.empty(len(flat), dtype=object)
        out[:] = [x.encode() for x in flat]
    else:
        target = numpy_of(datatype)
        try:
            raw = np.asarray(data)
        except ValueError:
            raise InvalidArgument(f"input '{name}': data is a ragged nested list") from None
        raw = raw.reshape(-1)
        allowed = _JSON_KINDS.get(target.kind if datatype != "BF16" else "f", "iuf")
        if raw.size and raw.dtype.kind not in allowed:
            raise InvalidArgument(f"input '{name}': {datatype} data must be "
                                  f"{_describe(allowed)}; got {_describe(raw.dtype.kind)}")
        if target.kind in "iu" and raw.size:
            info = np.iinfo(target)
            if raw.min() < info.min or raw.max() > info.max:
                raise InvalidArgument(f"input '{name}': a value lies outside {datatype}'s "
                                      f"range [{info.min}, {info.max}]")
        out = raw.astype(target)
    if out.size != count:
        raise InvalidArgument(f"input '{name}': {out.size} values for shape {list(shape)} "
                              f"({count} expected)")
    return out.reshape(shape)


def _describe(kinds: str) -> str:
    names = {"b": "booleans", "i": "integers", "u": "integers", "f": "numbers",
             "U": "strings", "O": "mixed values"}
    return " or ".join(dict.fromkeys(names.get(k, k) for k in kinds))


def _flatten(data: list[Any], name: str) -> list[Any]:
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def tensor_to_json(array: np.ndarray, datatype: str, name: str) -> list[Any]:
    flat = array.reshape(-1)
    if datatype == "BYTES":
        try:
            return [x.decode() if isinstance(x, bytes) else str(x) for x in flat]
        except UnicodeDecodeError:
            raise InvalidArgument(f"output '{name}' holds bytes that are not UTF-8; request it "
                                  f"with binary_data: true") from None
    if datatype in ("FP16", "BF16"):
        flat = flat.astype(np.float32)
    return flat.tolist()


# -- requests -----------------------------------------------------------------------------------
def parse_header_length(value: str | None, body_length: int) -> int | None:
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise InvalidArgument(f"{HEADER_LENGTH} must be an integer, got {value!r}") from None
    if not 0 <= length <= body_length:
        raise InvalidArgument(f"{HEADER_LENGTH} {length} lies outside the body's "
                              f"{body_length} bytes")
    return length


def request_from_body(body: bytes, header_length: int | None) -> InferRequest:
    """Decode a REST infer request: JSON, or JSON then binary tensors."""
    split = len(body) if header_length is None else header_length
    header = _json_object(body[:split], "inference request")
    binary = memoryview(body)[split:]
    inputs_json = header.get("inputs")
    if not isinstance(inputs_json, list) or not inputs_json:
        raise InvalidArgument("inference request: 'inputs' must be a non-empty list")
    offset = 0
    inputs = []
    for index, entry in enumerate(inputs_json):
        if not isinstance(entry, dict):
            raise InvalidArgument(f"inference request: inputs[{index}] must be an object")
        name, datatype, shape = _tensor_header(entry, f"inputs[{index}]")
        params = _params(entry, f"input '{name}'")
        size = params.get("binary_data_size")
        region = region_reference(params, f"input '{name}'")
        if region is not None:
            if "data" in entry or size is not None:
                raise InvalidArgument(f"input '{name}': has both a shared-memory region and "
                                      f"{'data' if 'data' in entry else 'binary_data_size'}")
            inputs.append(InferInput(name, datatype, shape, None, region))
            continue
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise InvalidArgument(f"input '{name}': binary_data_size must be a "
                                      f"non-negative integer")
            if "data" in entry:
                raise InvalidArgument(f"input '{name}': has both 'data' and binary_data_size")
            if offset + size > len(binary):
                raise InvalidArgument(f"input '{name}': binary_data_size {size} runs past the "
                                      f"{len(binary)} bytes of binary data after the JSON "
                                      f"header (offset {offset})")
            array = tensor_from_binary(binary[offset:offset + size], datatype, shape, name)
            offset += size
        elif "data" in entry:
            array = tensor_from_json(entry["data"], datatype, shape, name)
        else:
            raise InvalidArgument(f"input '{name}': neither 'data' nor binary_data_size given")
        inputs.append(InferInput(name, datatype, shape, array))
    if offset != len(binary):
        raise InvalidArgument(f"inference request: {len(binary) - offset} bytes of binary data "
                              f"are not claimed by any input's binary_data_size")
    params = _params(header, "inference request")
    binary_output = params.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise InvalidArgument("inference request: binary_data_output must be true or false")
    outputs = None
    if "outputs" in header:
        if not isinstance(header["outputs"], list):
            raise InvalidArgument("inference request: 'outputs' must be a list")
        outputs = []
        for index, entry in enumerate(header["outputs"]):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise InvalidArgument(f"inference request: outputs[{index}] must be an object "
                                      f"with a name")
            where = f"output '{entry['name']}'"
            output_params = _params(entry, where)
            wants = output_params.get("binary_data", binary_output)
            if not isinstance(wants, bool):
                raise InvalidArgument(f"{where}: binary_data must be true or false")
            outputs.append(RequestedOutput(entry["name"], wants,
                                           region_reference(output_params, where)))
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidArgument("inference request: 'id' must be a string")
    return InferRequest(inputs, outputs, request_id, binary_output, params)


def _json_object(raw: bytes | memoryview, what: str) -> dict[str, Any]:
    try:
        value = json.loads(bytes(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{what}: malformed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what}: expected a JSON object")
    return value


def _tensor_header(entry: dict[str, Any], where: str) -> tuple[str, str, tuple[int, ...]]:
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"inference request: {where} needs a string 'name'")
    datatype = entry.get("datatype")
    if not isinstance(datatype, str):
        raise InvalidArgument(f"input '{name}': needs a string 'datatype'")
    numpy_of(datatype)
    shape = entry.get("shape")
    if not isinstance(shape, list) or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape):
        raise InvalidArgument(f"input '{name}': 'shape' must be a list of non-negative "
                              f"integers, got {shape!r}")
    return name, datatype, tuple(shape)


def _params(entry: dict[str, Any], where: str) -> dict[str, Any]:
    params = entry.get("parameters", {})
    if not isinstance(params, dict):
        raise InvalidArgument(f"{where}: 'parameters' must be an object")
    return params


# -- responses ----------------------------------------------------------------------------------
def response_to_body(response: InferResponse, request: InferRequest) -> tuple[bytes, int | None]:
    """Encode a response; returns the body and, when binary data follows the JSON, the JSON's
    length (for ``Inference-Header-Content-Length``)."""
    outputs_json = []
    blobs = []
    for out in response.outputs:
        entry: dict[str, Any] = {"name": out.name, "datatype": out.datatype,
                                 "shape": list(out.data.shape)}
        if out.region is not None:
            entry["parameters"] = out.region.to_parameters()
        elif request.wants_binary(out.name):
            blob = tensor_to_binary(out.data, out.datatype)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = tensor_to_json(out.data, out.datatype, out.name)
        outputs_json.append(entry)
    header: dict[str, Any] = {"model_name": response.model_name,
                              "model_version": response.model_version, "outputs": outputs_json}
    if response.id is not None:
        header["id"] = response.id
    text = json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
    if not blobs:
        return text, None
    return b"".join([text, *blobs]), len(text)


def output_from_array(name: str, array: np.ndarray) -> InferOutput:
    return InferOutput(name, datatype_of_numpy(array.dtype), array)
