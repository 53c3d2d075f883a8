"""``Client`` (blocking) and ``AsyncClient`` (asyncio): one API over KServe v2 REST and gRPC,
NumPy in and out.

>>> with Client("localhost:8001") as client:                  # gRPC; "http://..." for REST
...     client.is_server_ready()
...     out = client.infer("add_sub", {"INPUT0": a, "INPUT1": b})
...     out["OUTPUT0"]                                          # a NumPy array

The protocol follows the URL: ``http://`` or ``https://`` speaks REST, anything else
(``host:port`` or ``grpc://host:port``) speaks gRPC. Every operation is written once per
protocol (``http_calls``, ``grpc_calls``) and carried by the transport of each kind below.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import grpc
import httpx
import numpy as np

from clients import grpc_calls, http_calls
from clients.errors import InferenceServerError
from clients.http_calls import Outputs
from clients.shared_memory import RegionInput
from clients.upload import model_from_directory
from server.grpc._generated import grpc_service_pb2_grpc as pb_grpc

Config = str | Mapping[str, Any] | None


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _grpc_target(url: str) -> str:
    return url.removeprefix("grpc://")


def _config_text(config: Config) -> str | None:
    import json

    return config if config is None or isinstance(config, str) else json.dumps(config)


def _rpc_error(error: grpc.RpcError) -> InferenceServerError:
    return InferenceServerError(error.details() or "", error.code().name)  # type: ignore[attr-defined]


class _Operations:
    """The calls of one protocol, with the options every call shares."""

    def __init__(self, url: str, token: str | None, timeout: float | None) -> None:
        self.calls: ModuleType = http_calls if _is_http(url) else grpc_calls
        self.token = token
        self.timeout = timeout

    def grpc_metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    def http_headers(self, call: http_calls.HttpCall) -> dict[str, str]:
        headers = dict(call.headers)
        if call.manages and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


class Client:
    """A blocking client; see the module docstring."""

    def __init__(self, url: str, token: str | None = None, timeout: float | None = 60.0,
                 max_message_bytes: int = 1 << 30) -> None:
        self.url = url
        self._ops = _Operations(url, token, timeout)
        self._http: httpx.Client | None = None
        self._channel: grpc.Channel | None = None
        if _is_http(url):
            self._http = httpx.Client(base_url=url, timeout=timeout)
        else:
            self._channel = grpc.insecure_channel(_grpc_target(url), options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes)])
            self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)

    def _run(self, call: Any) -> Any:
        if self._http is not None:
            try:
                answer = self._http.request(call.method, call.path, content=call.body,
                                            headers=self._ops.http_headers(call))
            except httpx.HTTPError as error:
                raise InferenceServerError(str(error), "UNREACHABLE") from None
            return call.read(http_calls.HttpAnswer(answer.status_code, answer.headers,
                                                   answer.content))
        try:
            reply = getattr(self._stub, call.method)(call.request, timeout=self._ops.timeout,
                                                     metadata=self._ops.grpc_metadata())
        except grpc.RpcError as error:
            raise _rpc_error(error) from None
        return call.read(reply)

    # -- health and metadata --------------------------------------------------------------------
    def is_server_live(self) -> bool:
        return self._run(self._ops.calls.server_live())

    def is_server_ready(self) -> bool:
        return self._run(self._ops.calls.server_ready())

    def is_model_ready(self, model: str, version: str = "") -> bool:
        return self._run(self._ops.calls.model_ready(model, version))

    def server_metadata(self) -> dict[str, Any]:
        return self._run(self._ops.calls.server_metadata())

    def model_metadata(self, model: str, version: str = "") -> dict[str, Any]:
        return self._run(self._ops.calls.model_metadata(model, version))

    def model_config(self, model: str, version: str = "") -> dict[str, Any]:
        return self._run(self._ops.calls.model_config(model, version))

    # -- inference --------------------------------------------------------------------------
    def infer(self, model: str, inputs: Mapping[str, np.ndarray | RegionInput],
              outputs: Outputs = None, version: str = "",
              request_id: str = "") -> dict[str, np.ndarray]:
        """Run ``model`` on ``inputs`` (name -> array, or a ``RegionInput`` in a registered
        shared-memory region); returns the outputs by name (every output unless ``outputs``
        names some). ``outputs`` may map names to a ``RegionOutput``: the server writes
        those there, and they are not returned."""
        return self._run(self._ops.calls.infer(model, inputs, outputs, version, request_id))

    # -- shared memory ------------------------------------------------------------------------
    def system_shared_memory_status(self, name: str = "") -> list[dict[str, Any]]:
        return self._run(self._ops.calls.shared_memory_status("system", name))

    def register_system_shared_memory(self, name: str, key: str, byte_size: int,
                                      offset: int = 0) -> None:
        """Register ``byte_size`` bytes of ``/dev/shm<key>`` from ``offset`` as ``name``."""
        self._run(self._ops.calls.register_system_shared_memory(name, key, byte_size, offset))

    def unregister_system_shared_memory(self, name: str = "") -> None:
        """Unregister ``name``, or every system region when ``name`` is empty."""
        self._run(self._ops.calls.unregister_shared_memory("system", name))

    def cuda_shared_memory_status(self, name: str = "") -> list[dict[str, Any]]:
        return self._run(self._ops.calls.shared_memory_status("cuda", name))

    def register_cuda_shared_memory(self, name: str, raw_handle: bytes, device_id: int,
                                    byte_size: int) -> None:
        """Register the device allocation of a CUDA IPC handle (``cudaIpcMemHandle_t``'s
        64 bytes, e.g. ``cupy.cuda.runtime.ipcGetMemHandle(ptr)``) on ``device_id``."""
        self._run(self._ops.calls.register_cuda_shared_memory(name, raw_handle, device_id,
                                                              byte_size))

    def unregister_cuda_shared_memory(self, name: str = "") -> None:
        self._run(self._ops.calls.unregister_shared_memory("cuda", name))

    # -- repository and statistics -----------------------------------------------------------
    def statistics(self, model: str = "", version: str = "") -> list[dict[str, Any]]:
        return self._run(self._ops.calls.statistics(model, version))

    def repository_index(self, ready_only: bool = False) -> list[dict[str, Any]]:
        return self._run(self._ops.calls.repository_index(ready_only))

    def load_model(self, model: str, config: Config = None,
                   files: Mapping[str, bytes] | None = None) -> None:
        """Load (or reload) ``model``; with ``config`` and ``files`` (``"1/model.onnx"`` ->
        bytes) the model is uploaded, Triton's way."""
        self._run(self._ops.calls.load_model(model, _config_text(config), files or {}))

    def upload_model(self, model: str, directory: str | Path) -> None:
        """Upload a model directory in Triton's layout (``config.pbtxt`` or ``config.json``,
        ``<version>/model.plan|model.onnx``) and load it."""
        config, files = model_from_directory(Path(directory), model)
        self.load_model(model, config, files)

    def unload_model(self, model: str) -> None:
        self._run(self._ops.calls.unload_model(model))

    # -- life cycle ---------------------------------------------------------------------------
    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._channel is not None:
            self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class AsyncClient:
    """The asyncio client: ``Client``'s methods, awaited."""

    def __init__(self, url: str, token: str | None = None, timeout: float | None = 60.0,
                 max_message_bytes: int = 1 << 30) -> None:
        self.url = url
        self._ops = _Operations(url, token, timeout)
        self._http: httpx.AsyncClient | None = None
        self._channel: grpc.aio.Channel | None = None
        if _is_http(url):
            self._http = httpx.AsyncClient(base_url=url, timeout=timeout)
        else:
            self._channel = grpc.aio.insecure_channel(_grpc_target(url), options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes)])
            self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)

    async def _run(self, call: Any) -> Any:
        if self._http is not None:
            try:
                answer = await self._http.request(call.method, call.path, content=call.body,
                                                  headers=self._ops.http_headers(call))
            except httpx.HTTPError as error:
                raise InferenceServerError(str(error), "UNREACHABLE") from None
            return call.read(http_calls.HttpAnswer(answer.status_code, answer.headers,
                                                   answer.content))
        try:
            reply = await getattr(self._stub, call.method)(
                call.request, timeout=self._ops.timeout, metadata=self._ops.grpc_metadata())
        except grpc.RpcError as error:
            raise _rpc_error(error) from None
        return call.read(reply)

    async def is_server_live(self) -> bool:
        return await self._run(self._ops.calls.server_live())

    async def is_server_ready(self) -> bool:
        return await self._run(self._ops.calls.server_ready())

    async def is_model_ready(self, model: str, version: str = "") -> bool:
        return await self._run(self._ops.calls.model_ready(model, version))

    async def server_metadata(self) -> dict[str, Any]:
        return await self._run(self._ops.calls.server_metadata())

    async def model_metadata(self, model: str, version: str = "") -> dict[str, Any]:
        return await self._run(self._ops.calls.model_metadata(model, version))

    async def model_config(self, model: str, version: str = "") -> dict[str, Any]:
        return await self._run(self._ops.calls.model_config(model, version))

    async def infer(self, model: str, inputs: Mapping[str, np.ndarray | RegionInput],
                    outputs: Outputs = None, version: str = "",
                    request_id: str = "") -> dict[str, np.ndarray]:
        return await self._run(self._ops.calls.infer(model, inputs, outputs, version,
                                                     request_id))

    async def system_shared_memory_status(self, name: str = "") -> list[dict[str, Any]]:
        return await self._run(self._ops.calls.shared_memory_status("system", name))

    async def register_system_shared_memory(self, name: str, key: str, byte_size: int,
                                            offset: int = 0) -> None:
        await self._run(self._ops.calls.register_system_shared_memory(name, key, byte_size,
                                                                      offset))

    async def unregister_system_shared_memory(self, name: str = "") -> None:
        await self._run(self._ops.calls.unregister_shared_memory("system", name))

    async def cuda_shared_memory_status(self, name: str = "") -> list[dict[str, Any]]:
        return await self._run(self._ops.calls.shared_memory_status("cuda", name))

    async def register_cuda_shared_memory(self, name: str, raw_handle: bytes, device_id: int,
                                          byte_size: int) -> None:
        await self._run(self._ops.calls.register_cuda_shared_memory(name, raw_handle,
                                                                    device_id, byte_size))

    async def unregister_cuda_shared_memory(self, name: str = "") -> None:
        await self._run(self._ops.calls.unregister_shared_memory("cuda", name))

    async def statistics(self, model: str = "", version: str = "") -> list[dict[str, Any]]:
        return await self._run(self._ops.calls.statistics(model, version))

    async def repository_index(self, ready_only: bool = False) -> list[dict[str, Any]]:
        return await self._run(self._ops.calls.repository_index(ready_only))

    async def load_model(self, model: str, config: Config = None,
                         files: Mapping[str, bytes] | None = None) -> None:
        await self._run(self._ops.calls.load_model(model, _config_text(config), files or {}))

    async def upload_model(self, model: str, directory: str | Path) -> None:
        config, files = model_from_directory(Path(directory), model)
        await self.load_model(model, config, files)

    async def unload_model(self, model: str) -> None:
        await self._run(self._ops.calls.unload_model(model))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._channel is not None:
            await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()
