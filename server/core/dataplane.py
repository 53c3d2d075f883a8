"""``DataPlane``: the one object every front end calls. Each public method is one protocol
operation; front ends decode, call, and encode.

>>> plane = DataPlane(ServerSettings(model_repository=Path("examples/models")))  # doctest: +SKIP
>>> await plane.start()                                                          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import base64
import hmac
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import engine as trt
from server.core.build import BUILD_ISOLATION
from server.core.codec import (
    InferInput,
    InferRequest,
    InferResponse,
    tensor_from_binary,
    tensor_to_binary,
)
from server.core.devices import visible_devices
from server.core.errors import InvalidArgument, NotFound, PayloadTooLarge, Unauthorized, Unsupported
from server.core.repository import ModelRepository
from server.core.repository_layout import check_model_name
from server.core.response_cache import ResponseCache
from server.core.shared_memory import CUDA, SYSTEM, SharedMemoryRegistry
from server.core.statistics import Metrics

SERVER_NAME = "pytrt-server"
EXTENSIONS = ["binary_tensor_data", "model_configuration", "model_repository", "statistics",
              "system_shared_memory", "cuda_shared_memory"]
CONTROL_MODES = ("none", "explicit", "poll")


@dataclass(frozen=True)
class ServerSettings:
    model_repository: Path
    model_control_mode: str = "none"
    device: str = "auto"  # cpu | gpu | auto
    api_token: str | None = None
    max_request_bytes: int = 64 << 20
    max_upload_bytes: int = 512 << 20
    max_queue_size: int = 64  # per model, beyond its running contexts
    repository_poll_secs: float = 15.0
    plan_cache: Path | None = None  # default: <repository>/.plan_cache
    # What KIND_GPU instance groups' gpus index: "gpu:N" (CUDA device N) or "cpu:N" (a host
    # stand-in running CPU engine copies, for tests and dry runs); None: every CUDA device.
    visible_devices: tuple[str, ...] | None = None
    # Where ONNX models are built (server.core.build.BUILD_ISOLATION): "gpu" builds GPU plans
    # in a child process, whose exit returns what the build held on the device.
    build_isolation: str = "gpu"
    # Bytes of the response cache shared by the models whose configurations enable
    # response_cache (Triton's --cache-config local,size=N); 0: no cache.
    response_cache_bytes: int = 0


class DataPlane:
    def __init__(self, settings: ServerSettings) -> None:
        if settings.model_control_mode not in CONTROL_MODES:
            raise ValueError(f"model control mode {settings.model_control_mode!r}; expected "
                             f"one of {CONTROL_MODES}")
        if settings.build_isolation not in BUILD_ISOLATION:
            raise ValueError(f"build isolation {settings.build_isolation!r}; expected one of "
                             f"{BUILD_ISOLATION}")
        self.settings = settings
        if settings.response_cache_bytes < 0:
            raise ValueError(f"response cache size {settings.response_cache_bytes} bytes; "
                             f"expected >= 0")
        cache = settings.plan_cache or settings.model_repository / ".plan_cache"
        devices = visible_devices(settings.visible_devices)
        self.response_cache = (ResponseCache(settings.response_cache_bytes)
                               if settings.response_cache_bytes else None)
        self.repository = ModelRepository(settings.model_repository, settings.device, cache,
                                          settings.max_queue_size, devices,
                                          settings.build_isolation, self.response_cache)
        self.metrics = Metrics(self.repository.all_statistics, devices)
        self.shared_memory = SharedMemoryRegistry()
        self._ready = False
        self._poller: asyncio.Task[None] | None = None

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the repository's models (modes none and poll); start polling (mode poll)."""
        if self.settings.model_control_mode != "explicit":
            await self._load_changed()
        if self.settings.model_control_mode == "poll":
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        self._ready = True

    async def stop(self) -> None:
        self._ready = False
        if self._poller is not None:
            self._poller.cancel()
        for name in list(self.repository.models):
            await self.repository.unload(name)
        self.shared_memory.close()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.repository_poll_secs)
            await self._load_changed()

    async def _load_changed(self) -> None:
        """Load new or changed models; unload models whose directory is gone."""
        from server.core.repository_layout import repository_signature

        on_disk = set(self.repository.names_on_disk())
        for name in sorted(on_disk):
            entry = self.repository.models.get(name)
            signature = repository_signature(self.settings.model_repository / name)
            if entry is None or entry.signature != signature:
                try:
                    await self.repository.load(name)
                except InvalidArgument:
                    pass  # recorded as UNAVAILABLE with its reason; the others serve
        for name in set(self.repository.models) - on_disk:
            if self.repository.models[name].versions:
                await self.repository.unload(name)

    # -- health and metadata ---------------------------------------------------------------------
    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self._ready

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": trt.__version__, "extensions": EXTENSIONS}

    def model_ready(self, name: str, version: str | None = None) -> bool:
        check_model_name(name)
        try:
            self.repository.get(name, version)
        except (NotFound, Unsupported):
            raise
        except Exception:  # noqa: BLE001 - any other reason means "not ready"
            return False
        return True

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        check_model_name(name)
        model = self.repository.get(name, version)
        versions = [version] if version else self.repository.ready_versions(name)
        return model.metadata(versions)

    def model_config(self, name: str, version: str | None = None) -> dict[str, Any]:
        check_model_name(name)
        return self.repository.get(name, version).config.to_json()

    # -- inference --------------------------------------------------------------------------
    async def infer(self, name: str, version: str | None, request: InferRequest
                    ) -> InferResponse:
        """Run ``request``; inputs given by shared-memory reference are read first, and
        outputs the request places in shared memory are written there."""
        check_model_name(name)
        model = self.repository.get(name, version)
        request.inputs = [self._input_from_region(i) if i.region else i for i in request.inputs]
        placed = {o.name: o.region for o in request.outputs or [] if o.region is not None}
        for where in placed.values():
            self.shared_memory.check(where)  # refuse a bad reference before running
        response = await model.infer(request)
        for output in response.outputs:
            if output.name in placed:
                blob = tensor_to_binary(output.data, output.datatype)
                self.shared_memory.write(placed[output.name], blob, output.name)
                output.region = replace(placed[output.name], byte_size=len(blob))
        return response

    def _input_from_region(self, item: InferInput) -> InferInput:
        assert item.region is not None
        raw = self.shared_memory.read(item.region)
        return replace(item, data=tensor_from_binary(raw, item.datatype, item.shape, item.name))

    # -- shared memory --------------------------------------------------------------------------
    def system_shared_memory_status(self, name: str = "") -> list[dict[str, Any]]:
        return self.shared_memory.status(SYSTEM, name)

    def register_system_shared_memory(self, name: str, key: Any, offset: Any,
                                      byte_size: Any) -> None:
        self.shared_memory.register_system(name, key, offset, byte_size)

    def unregister_system_shared_memory(self, name: str = "") -> None:
        self.shared_memory.unregister(SYSTEM, name)

    def cuda_shared_memory_status(self, name: str = "") -> list[dict[str, Any]]:
        return self.shared_memory.status(CUDA, name)

    def register_cuda_shared_memory(self, name: str, raw_handle: bytes, device_id: Any,
                                    byte_size: Any) -> None:
        self.shared_memory.register_cuda(name, raw_handle, device_id, byte_size)

    def unregister_cuda_shared_memory(self, name: str = "") -> None:
        self.shared_memory.unregister(CUDA, name)

    # -- statistics -------------------------------------------------------------------------
    def statistics(self, name: str | None = None, version: str | None = None
                   ) -> dict[str, Any]:
        if name is None:
            stats = self.repository.all_statistics()
        else:
            check_model_name(name)
            if version:
                stats = [self.repository.get(name, version).stats]
            else:
                self.repository.get(name)
                entry = self.repository.models[name]
                stats = [m.stats for _, m in sorted(entry.versions.items())]
        return {"model_stats": [s.to_json() for s in stats]}

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    # -- repository -------------------------------------------------------------------------
    def check_token(self, presented: str | None) -> None:
        """Management calls need ``Bearer <token>`` when the server has a token."""
        token = self.settings.api_token
        if token is None:
            return
        expected = f"Bearer {token}"
        if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
            raise Unauthorized("this call needs the header 'Authorization: Bearer <api token>'")

    def repository_index(self, ready_only: bool = False) -> list[dict[str, str]]:
        return self.repository.index(ready_only)

    def _check_explicit(self, what: str) -> None:
        mode = self.settings.model_control_mode
        if mode != "explicit":
            raise Unsupported(f"explicit model {what} is not allowed in model control mode "
                              f"'{mode}' (start the server with --model-control-mode explicit)")

    async def load(self, name: str, parameters: dict[str, Any] | None = None) -> None:
        """Triton's load: ``parameters`` may hold ``config`` (JSON text) and
        ``file:<version>/model.onnx`` entries with base64 contents."""
        self._check_explicit("load")
        check_model_name(name)
        if parameters is not None and not isinstance(parameters, dict):
            raise InvalidArgument("load request: 'parameters' must be an object")
        config_text, files = None, None
        for key, value in (parameters or {}).items():
            if key == "config":
                if not isinstance(value, str):
                    raise InvalidArgument("load parameter 'config' must be a JSON string")
                config_text = value
            elif key.startswith("file:"):
                if not isinstance(value, str):
                    raise InvalidArgument(f"load parameter {key!r} must be base64 text")
                try:
                    data = base64.b64decode(value, validate=True)
                except ValueError:
                    raise InvalidArgument(f"load parameter {key!r} is not valid base64") from None
                files = files or {}
                files[key[len("file:"):]] = data
            else:
                raise InvalidArgument(f"unknown load parameter {key!r}; expected 'config' or "
                                      f"'file:<version>/model.onnx'")
        total = sum(len(d) for d in (files or {}).values())
        if total > self.settings.max_upload_bytes:
            raise PayloadTooLarge(f"model files of {total} bytes exceed the upload limit of "
                                  f"{self.settings.max_upload_bytes} bytes")
        await self.repository.load(name, config_text, files)

    async def unload(self, name: str) -> None:
        self._check_explicit("unload")
        await self.repository.unload(name)

    async def upload(self, name: str, filename: str, data: bytes,
                     config_text: str | None = None) -> dict[str, Any]:
        """Add a new version of ``name`` from a model file; returns its name and version."""
        if len(data) > self.settings.max_upload_bytes:
            raise PayloadTooLarge(f"upload of {len(data)} bytes exceeds the limit of "
                                  f"{self.settings.max_upload_bytes} bytes")
        version = await self.repository.upload(name, filename, data, config_text)
        return {"name": name, "version": str(version)}
