"""Our client against a running server, over both protocols, with one list of calls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import engine as trt
from clients import (
    AsyncClient,
    Client,
    InferenceServerError,
    RegionOutput,
    SystemSharedMemoryRegion,
)
from tests.grpc.serving import (
    RunningServer,
    identity_config,
    identity_plan,
    running_server,
    write_repository,
)

PROTOCOLS = ["grpc", "http"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    repository = write_repository(tmp_path_factory.mktemp("clients") / "models")
    with running_server(repository) as running:
        yield running


def url_of(server: RunningServer, protocol: str) -> str:
    return server.http_url if protocol == "http" else server.grpc_url


@pytest.fixture(params=PROTOCOLS)
def client(request: pytest.FixtureRequest, server: RunningServer) -> Iterator[Client]:
    with Client(url_of(server, request.param)) as c:
        yield c


def test_health(client: Client) -> None:
    assert client.is_server_live() is True
    assert client.is_server_ready() is True
    assert client.is_model_ready("add_sub") is True
    with pytest.raises(InferenceServerError) as caught:
        client.is_model_ready("no_such_model")
    assert "no_such_model" in caught.value.message
    assert caught.value.status in ("404", "NOT_FOUND")


def test_metadata_and_config(client: Client) -> None:
    server = client.server_metadata()
    assert server["name"] == "pytrt-server"
    assert "model_repository" in server["extensions"]
    model = client.model_metadata("add_sub")
    assert model["name"] == "add_sub" and model["versions"] == ["1"]
    assert model["platform"] == "tensorrt_plan"
    assert [(t["name"], t["datatype"], t["shape"]) for t in model["inputs"]] == [
        ("INPUT0", "FP32", [-1, 16]), ("INPUT1", "FP32", [-1, 16])]
    config = client.model_config("identity_int32")  # completed by the server from the plan
    assert config["max_batch_size"] == 8
    assert [(t["name"], t["data_type"], [int(d) for d in t["dims"]])
            for t in config["output"]] == [("OUTPUT0", "TYPE_INT32", [4])]


def test_infer(client: Client) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 16)).astype(np.float32)
    b = rng.standard_normal((3, 16)).astype(np.float32)
    out = client.infer("add_sub", {"INPUT0": a, "INPUT1": b})
    assert sorted(out) == ["OUTPUT0", "OUTPUT1"]
    np.testing.assert_array_equal(out["OUTPUT0"], a + b)
    np.testing.assert_array_equal(out["OUTPUT1"], a - b)
    only = client.infer("add_sub", {"INPUT0": a, "INPUT1": b}, outputs=["OUTPUT1"])
    assert list(only) == ["OUTPUT1"]
    ints = np.arange(8, dtype=np.int32).reshape(2, 4) - 3
    got = client.infer("identity_int32", {"INPUT0": ints})["OUTPUT0"]
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, ints)


def test_infer_error_names_the_culprit(client: Client) -> None:
    with pytest.raises(InferenceServerError) as caught:
        client.infer("add_sub", {"INPUT0": np.zeros((1, 16), np.float32)})
    assert "INPUT1" in caught.value.message
    assert caught.value.status in ("400", "INVALID_ARGUMENT")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_load_with_files_index_statistics_unload(server: RunningServer, protocol: str,
                                                  tmp_path: Path) -> None:
    name = f"uploaded_{protocol}"
    with Client(url_of(server, protocol)) as client:
        client.load_model(name, config=identity_config(name, "FP32"),
                          files={"1/model.plan": identity_plan(trt.float32)})
        assert client.is_model_ready(name)
        x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
        np.testing.assert_array_equal(client.infer(name, {"INPUT0": x})["OUTPUT0"], x)
        index = {(m["name"], m.get("version", ""), m.get("state", ""))
                 for m in client.repository_index()}
        assert (name, "1", "READY") in index
        assert ("add_sub", "1", "READY") in index
        (stats,) = client.statistics(name)
        assert stats["name"] == name and stats["version"] == "1"
        assert stats["inference_count"] == 2 and stats["execution_count"] == 1
        assert stats["inference_stats"]["success"]["count"] == 1
        assert stats["inference_stats"]["fail"]["count"] == 0
        client.unload_model(name)
        assert (name, "1", "UNAVAILABLE") in {
            (m["name"], m.get("version", ""), m.get("state", ""))
            for m in client.repository_index()}
        with pytest.raises(InferenceServerError):
            client.infer(name, {"INPUT0": x})
        assert [m["name"] for m in client.repository_index(ready_only=True)
                if m["name"] == name] == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_upload_model_directory(server: RunningServer, protocol: str, tmp_path: Path) -> None:
    directory = tmp_path / "source"
    (directory / "2").mkdir(parents=True)
    (directory / "2" / "model.plan").write_bytes(identity_plan(trt.int32))
    (directory / "config.pbtxt").write_text(
        'name: "whatever" platform: "tensorrt_plan" max_batch_size: 8\n'
        'input [ { name: "INPUT0" data_type: TYPE_INT32 dims: [ 4 ] } ]\n'
        'output [ { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 4 ] } ]\n')
    name = f"dir_{protocol}"
    with Client(url_of(server, protocol)) as client:
        client.upload_model(name, directory)
        assert client.model_metadata(name)["versions"] == ["2"]
        x = np.array([[1, 2, 3, 4]], np.int32)
        np.testing.assert_array_equal(client.infer(name, {"INPUT0": x}, version="2")["OUTPUT0"],
                                      x)
        client.unload_model(name)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_async_client(server: RunningServer, protocol: str) -> None:
    a = np.full((2, 16), 3, np.float32)
    b = np.full((2, 16), 1, np.float32)

    async def calls() -> list[dict[str, np.ndarray]]:
        async with AsyncClient(url_of(server, protocol)) as client:
            assert await client.is_server_ready()
            assert (await client.model_metadata("add_sub"))["name"] == "add_sub"
            return await asyncio.gather(*(client.infer("add_sub", {"INPUT0": a * k,
                                                                   "INPUT1": b})
                                          for k in range(4)))

    results = asyncio.run(calls())
    for k, out in enumerate(results):
        np.testing.assert_array_equal(out["OUTPUT0"], a * k + b)


@pytest.mark.parametrize("typed_input", [False, True])
def test_shared_memory_through_the_client(client: Client, typed_input: bool) -> None:
    a = np.arange(16, dtype=np.float32).reshape(1, 16)
    b = np.full((1, 16), -1.5, np.float32)
    with SystemSharedMemoryRegion.create("client_io", 1024) as shm:
        client.register_system_shared_memory(shm.name, shm.key, shm.byte_size)
        assert client.system_shared_memory_status() == [
            {"name": "client_io", "key": shm.key, "offset": 0, "byte_size": 1024}]
        inputs = {"INPUT0": shm.place(a, 0), "INPUT1": b if typed_input else shm.place(b, 64)}
        got = client.infer("add_sub", inputs,
                           outputs={"OUTPUT0": shm.output(512, 64), "OUTPUT1": None})
        assert list(got) == ["OUTPUT1"]
        np.testing.assert_array_equal(got["OUTPUT1"], a - b)
        np.testing.assert_array_equal(shm.read(512, "FP32", [1, 16]), a + b)
        with pytest.raises(InferenceServerError) as caught:
            client.infer("add_sub", inputs, outputs={"OUTPUT0": RegionOutput("client_io", 0, 16)})
        assert "output 'OUTPUT0' needs 64 bytes" in str(caught.value)
        client.unregister_system_shared_memory(shm.name)
        assert client.system_shared_memory_status() == []
        with pytest.raises(InferenceServerError) as caught:
            client.infer("add_sub", inputs)
        assert "shared memory region 'client_io' is not registered" in str(caught.value)
    assert client.cuda_shared_memory_status() == []
