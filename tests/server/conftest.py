"""Server tests: a model repository made with the layer API, and a real server (uvicorn on a
free port, in a thread) started the way ``python -m server`` starts it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

import engine as trt
from server.core.dataplane import DataPlane, ServerSettings
from server.rest.app import create_app
from tests.server.plans import (  # noqa: F401 - re-exported to the tests
    ADD_SUB_CONFIG,
    BATCHING,
    WIDTH,
    add_sub_plan,
    identity_plan,
    scale_plan,
)


def write_model(repo: Path, name: str, version: int, filename: str, data: bytes,
                config: str | None = None) -> None:
    (repo / name / str(version)).mkdir(parents=True, exist_ok=True)
    (repo / name / str(version) / filename).write_bytes(data)
    if config is not None:
        (repo / name / "config.pbtxt").write_text(config)


@pytest.fixture(scope="session")
def plans() -> dict[str, bytes]:
    return {"add_sub": add_sub_plan(), "identity_int32": identity_plan(trt.int32),
            "identity_bool": identity_plan(trt.bool), "identity_fp16": identity_plan(trt.float16),
            "identity_int64": identity_plan(trt.int64), "scale2": scale_plan(2.0),
            "scale3": scale_plan(3.0)}


@pytest.fixture
def repo(tmp_path: Path, plans: dict[str, bytes]) -> Path:
    root = tmp_path / "models"
    write_model(root, "add_sub", 1, "model.plan", plans["add_sub"], ADD_SUB_CONFIG % "")
    write_model(root, "add_sub_batched", 1, "model.plan", plans["add_sub"],
                (ADD_SUB_CONFIG % BATCHING).replace('"add_sub"', '"add_sub_batched"'))
    for name in ("identity_int32", "identity_bool", "identity_fp16", "identity_int64"):
        write_model(root, name, 1, "model.plan", plans[name])
    write_model(root, "scale", 1, "model.plan", plans["scale2"])
    write_model(root, "broken", 1, "model.plan", b"this is not a plan")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(**settings: object) -> Iterator[tuple[str, DataPlane]]:
    """Serve a DataPlane over HTTP on a free port; yields its base URL and the plane."""
    plane = DataPlane(ServerSettings(**settings))  # type: ignore[arg-type]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(plane), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", plane
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def server(repo: Path, tmp_path: Path) -> Iterator[tuple[str, DataPlane]]:
    with running_server(model_repository=repo, plan_cache=tmp_path / "cache") as started:
        yield started


@pytest.fixture
def client(server: tuple[str, DataPlane]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0], timeout=30) as c:
        yield c


def json_input(name: str, array: np.ndarray, datatype: str = "FP32") -> dict[str, object]:
    return {"name": name, "datatype": datatype, "shape": list(array.shape),
            "data": array.ravel().tolist()}
