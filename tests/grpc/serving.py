"""What the gRPC and client tests share: a model repository built with the layer API, and a
running server (REST and gRPC on free ports, one data plane, one event loop in a thread),
started the way ``python -m server`` starts it."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

import engine as trt
from server.core.dataplane import DataPlane, ServerSettings
from server.grpc.server import GrpcServer
from server.rest.app import create_app
from tests.server.plans import ADD_SUB_CONFIG as SERVER_ADD_SUB_CONFIG
from tests.server.plans import add_sub_plan, identity_plan  # noqa: F401 - used by tests

WIDTH = 16
MAX_BATCH = 8
T = TypeVar("T")

ADD_SUB_CONFIG = SERVER_ADD_SUB_CONFIG % ""


def identity_config(name: str, datatype: str, width: int = 4) -> str:
    """A JSON configuration for an identity plan (what an upload sends)."""
    return json.dumps({
        "name": name, "platform": "tensorrt_plan", "max_batch_size": MAX_BATCH,
        "input": [{"name": "INPUT0", "data_type": f"TYPE_{datatype}", "dims": [width]}],
        "output": [{"name": "OUTPUT0", "data_type": f"TYPE_{datatype}", "dims": [width]}]})


def write_repository(root: Path) -> Path:
    """``add_sub`` (configured) and ``identity_int32`` (configuration completed by the
    server) in Triton's layout."""
    (root / "add_sub" / "1").mkdir(parents=True)
    (root / "add_sub" / "1" / "model.plan").write_bytes(add_sub_plan())
    (root / "add_sub" / "config.pbtxt").write_text(ADD_SUB_CONFIG)
    (root / "identity_int32" / "1").mkdir(parents=True)
    (root / "identity_int32" / "1" / "model.plan").write_bytes(identity_plan(trt.int32))
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    plane: DataPlane
    grpc: GrpcServer
    http_port: int
    loop: asyncio.AbstractEventLoop

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` in the server's event loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)


@contextmanager
def running_server(repository: Path, load: tuple[str, ...] = ("add_sub", "identity_int32"),
                   api_token: str | None = None, max_request_bytes: int = 64 << 20,
                   settings_extra: dict[str, Any] | None = None,
                   **grpc_options: Any) -> Iterator[RunningServer]:
    """REST and gRPC over one data plane in explicit model-control mode, with ``load``
    loaded (``settings_extra``: more ``ServerSettings`` fields); both stopped on exit."""
    settings = ServerSettings(model_repository=repository, model_control_mode="explicit",
                              device="cpu", api_token=api_token,
                              max_request_bytes=max_request_bytes,
                              plan_cache=repository.parent / "plan_cache",
                              **(settings_extra or {}))
    plane = DataPlane(settings)
    http_port = free_port()
    rest = uvicorn.Server(uvicorn.Config(create_app(plane), host="127.0.0.1", port=http_port,
                                         log_level="error"))
    grpc_server = GrpcServer(plane, host="127.0.0.1", port=0, **grpc_options)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-server", daemon=True)
    thread.start()
    server = RunningServer(plane, grpc_server, http_port, loop)
    rest_task = asyncio.run_coroutine_threadsafe(rest.serve(), loop)
    try:
        deadline = time.monotonic() + 30
        while not rest.started:
            if rest_task.done() or time.monotonic() > deadline:
                raise RuntimeError(f"the REST server did not start: {rest_task.exception()}")
            time.sleep(0.02)
        server.call(grpc_server.start())
        for name in load:
            server.call(plane.repository.load(name))
        yield server
    finally:
        server.call(grpc_server.stop(grace=1.0))
        rest.should_exit = True
        rest_task.result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
