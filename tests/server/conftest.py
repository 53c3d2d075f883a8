"""Server tests: a model repository made with the layer API, and a real server (uvicorn on a
free port, in a thread) started the way ``python -m server`` starts it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

import engine as trt
from server.core.dataplane import DataPlane, ServerSettings
from server.rest.app import create_app

WIDTH = 16


def build_plan(define: Callable[[trt.INetworkDefinition], None], inputs: list[str],
               width: int = WIDTH, max_batch: int = 8) -> bytes:
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    network = builder.create_network(0)
    define(network)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    profile = builder.create_optimization_profile()
    for name in inputs:
        profile.set_shape(name, (1, width), (max_batch, width), (max_batch, width))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None
    return bytes(plan)


def add_sub_plan(max_batch: int = 8) -> bytes:
    """OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1; FP32 [-1, 16]."""
    def define(network: trt.INetworkDefinition) -> None:
        a = network.add_input("INPUT0", trt.float32, (-1, WIDTH))
        b = network.add_input("INPUT1", trt.float32, (-1, WIDTH))
        for name, op in (("OUTPUT0", trt.ElementWiseOperation.SUM),
                         ("OUTPUT1", trt.ElementWiseOperation.SUB)):
            out = network.add_elementwise(a, b, op).get_output(0)
            out.name = name
            network.mark_output(out)
    return build_plan(define, ["INPUT0", "INPUT1"], max_batch=max_batch)


def identity_plan(dtype: trt.DataType, width: int = 4) -> bytes:
    def define(network: trt.INetworkDefinition) -> None:
        out = network.add_identity(network.add_input("INPUT0", dtype, (-1, width))).get_output(0)
        out.name = "OUTPUT0"
        network.mark_output(out)
    return build_plan(define, ["INPUT0"], width=width)


def scale_plan(factor: float) -> bytes:
    """OUTPUT0 = INPUT0 * factor, FP32 [-1, 4]: versions that differ in what they compute."""
    def define(network: trt.INetworkDefinition) -> None:
        x = network.add_input("INPUT0", trt.float32, (-1, 4))
        k = network.add_constant((1, 4), np.full((1, 4), factor, np.float32)).get_output(0)
        out = network.add_elementwise(x, k, trt.ElementWiseOperation.PROD).get_output(0)
        out.name = "OUTPUT0"
        network.mark_output(out)
    return build_plan(define, ["INPUT0"], width=4)


ADD_SUB_CONFIG = """
name: "add_sub"
platform: "tensorrt_plan"
max_batch_size: 8
input [
  { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] },
  { name: "INPUT1" data_type: TYPE_FP32 dims: [ 16 ] }
]
output [
  { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] },
  { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 16 ] }
]
instance_group [ { count: 2 kind: KIND_CPU } ]
%s
"""
BATCHING = """dynamic_batching {
  preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 200000
}"""


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
