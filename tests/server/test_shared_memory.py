"""Triton's shared-memory extension over REST: inputs read from and outputs written to
``/dev/shm`` regions this process creates, bounds and size checks, unregistering, and CUDA
regions answered clearly on a server without a GPU."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from multiprocessing import shared_memory

import httpx
import numpy as np
import pytest

from engine.kernels.backends import gpu_available


@pytest.fixture
def shm() -> Iterator[shared_memory.SharedMemory]:
    memory = shared_memory.SharedMemory(f"rest_test_{uuid.uuid4().hex[:12]}", create=True,
                                        size=4096)
    yield memory
    memory.close()
    memory.unlink()


def key_of(memory: shared_memory.SharedMemory) -> str:
    return "/" + memory.name.lstrip("/")


def put(memory: shared_memory.SharedMemory, offset: int, array: np.ndarray) -> None:
    blob = array.tobytes()
    memory.buf[offset:offset + len(blob)] = blob  # type: ignore[index]


def get(memory: shared_memory.SharedMemory, offset: int, count: int) -> np.ndarray:
    return np.frombuffer(bytes(memory.buf[offset:offset + 4 * count]),  # type: ignore[index]
                         np.float32)


def in_region(name: str, offset: int, size: int) -> dict[str, object]:
    return {"shared_memory_region": name, "shared_memory_offset": offset,
            "shared_memory_byte_size": size}


def add_sub_body(region: str, offsets: tuple[int, int], out_offset: int,
                 out_size: int = 64) -> dict[str, object]:
    return {"inputs": [{"name": f"INPUT{i}", "datatype": "FP32", "shape": [1, 16],
                        "parameters": in_region(region, offset, 64)}
                       for i, offset in enumerate(offsets)],
            "outputs": [{"name": "OUTPUT0", "parameters": in_region(region, out_offset,
                                                                    out_size)},
                        {"name": "OUTPUT1"}]}


def register(client: httpx.Client, name: str, key: str, offset: int,
             byte_size: int) -> httpx.Response:
    return client.post(f"/v2/systemsharedmemory/region/{name}/register",
                       json={"key": key, "offset": offset, "byte_size": byte_size})


def test_inputs_and_outputs_through_shared_memory(client: httpx.Client,
                                                  shm: shared_memory.SharedMemory) -> None:
    a = np.arange(16, dtype=np.float32).reshape(1, 16)
    b = np.full((1, 16), 2.5, np.float32)
    put(shm, 1024, a)  # the region starts at 1024; inputs at region offsets 0 and 64
    put(shm, 1024 + 64, b)
    assert register(client, "io", key_of(shm), 1024, 2048).status_code == 200
    assert client.get("/v2/systemsharedmemory/status").json() == [
        {"name": "io", "key": key_of(shm), "offset": 1024, "byte_size": 2048}]
    assert client.get("/v2/systemsharedmemory/region/io/status").json()[0]["name"] == "io"

    answer = client.post("/v2/models/add_sub/infer", json=add_sub_body("io", (0, 64), 512))
    assert answer.status_code == 200, answer.text
    out0, out1 = answer.json()["outputs"]
    assert out0["parameters"] == in_region("io", 512, 64) and "data" not in out0
    assert out0["shape"] == [1, 16]
    np.testing.assert_array_equal(get(shm, 1024 + 512, 16), (a + b)[0])
    np.testing.assert_array_equal(np.array(out1["data"], np.float32), (a - b)[0])

    assert client.post("/v2/systemsharedmemory/region/io/unregister").status_code == 200
    assert client.get("/v2/systemsharedmemory/status").json() == []
    answer = client.post("/v2/models/add_sub/infer", json=add_sub_body("io", (0, 64), 512))
    assert answer.status_code == 404
    assert answer.json()["error"] == "shared memory region 'io' is not registered"


def test_outputs_in_shared_memory_beside_binary_inputs(client: httpx.Client,
                                                       shm: shared_memory.SharedMemory) -> None:
    register(client, "out", key_of(shm), 0, 128)
    a, b = np.ones((1, 16), np.float32), np.full((1, 16), 3.0, np.float32)
    header = {"inputs": [{"name": f"INPUT{i}", "datatype": "FP32", "shape": [1, 16],
                          "parameters": {"binary_data_size": 64}} for i in range(2)],
              "outputs": [{"name": "OUTPUT1", "parameters": in_region("out", 64, 64)}]}
    text = httpx.Request("POST", "/", json=header).content
    answer = client.post("/v2/models/add_sub/infer", content=text + a.tobytes() + b.tobytes(),
                         headers={"Inference-Header-Content-Length": str(len(text))})
    assert answer.status_code == 200, answer.text
    assert [o["name"] for o in answer.json()["outputs"]] == ["OUTPUT1"]
    np.testing.assert_array_equal(get(shm, 64, 16), (a - b)[0])
    client.post("/v2/systemsharedmemory/unregister")


@pytest.mark.parametrize(("body_change", "status", "message"), [
    (lambda body: body["inputs"][0]["parameters"].update(shared_memory_offset=480), 400,
     "shared memory region 'io': offset 480 + byte_size 64 runs past the region's 512 bytes"),
    (lambda body: body["inputs"][0]["parameters"].update(shared_memory_byte_size=60), 400,
     "input 'INPUT0': 60 bytes of binary data for shape [1, 16] of FP32 (64 bytes expected)"),
    (lambda body: body["outputs"][0]["parameters"].update(shared_memory_byte_size=32), 400,
     "output 'OUTPUT0' needs 64 bytes; shared_memory_byte_size sets aside 32 in region 'io'"),
    (lambda body: body["outputs"][0]["parameters"].update(shared_memory_offset=500), 400,
     "shared memory region 'io': offset 500 + byte_size 64 runs past the region's 512 bytes"),
    (lambda body: body["inputs"][1]["parameters"].pop("shared_memory_byte_size"), 400,
     "input 'INPUT1': shared_memory_region needs shared_memory_byte_size"),
    (lambda body: body["inputs"][1]["parameters"].update(shared_memory_offset=-8), 400,
     "input 'INPUT1': shared_memory_offset must be a non-negative integer, got -8"),
    (lambda body: body["inputs"][1].update(data=[0.0] * 16), 400,
     "input 'INPUT1': has both a shared-memory region and data"),
    (lambda body: body["inputs"][1]["parameters"].update(shared_memory_region="other"), 404,
     "shared memory region 'other' is not registered"),
])
def test_references_are_checked(client: httpx.Client, shm: shared_memory.SharedMemory,
                                 body_change: object, status: int, message: str) -> None:
    register(client, "io", key_of(shm), 0, 512)
    body = add_sub_body("io", (0, 64), 128)
    body_change(body)  # type: ignore[operator]
    answer = client.post("/v2/models/add_sub/infer", json=body)
    assert (answer.status_code, answer.json()["error"]) == (status, message)
    assert get(shm, 128, 16).tolist() == [0.0] * 16  # nothing was written


def test_registration_is_checked(client: httpx.Client,
                                 shm: shared_memory.SharedMemory) -> None:
    key = key_of(shm)
    for name, body, status, message in [
        ("r", {"key": key, "offset": 4000, "byte_size": 200}, 400,
         f"offset 4000 + byte_size 200 exceeds the 4096 bytes of key '{key}'"),
        ("r", {"key": "/no_such_key_here", "byte_size": 16}, 404,
         "no shared-memory object with key '/no_such_key_here'"),
        ("r", {"key": "../etc/passwd", "byte_size": 16}, 400, "is not a POSIX shared-memory"),
        ("r", {"key": key}, 400, "byte_size must be a non-negative integer, got None"),
        ("r", {"key": key, "byte_size": "16"}, 400, "byte_size must be a non-negative"),
        ("r", {"key": key, "byte_size": 0}, 400, "byte_size must be > 0"),
    ]:
        answer = client.post(f"/v2/systemsharedmemory/region/{name}/register", json=body)
        assert answer.status_code == status, body
        assert message in answer.json()["error"], body
    assert register(client, "r", key, 0, 16).status_code == 200
    again = register(client, "r", key, 0, 16)
    assert again.status_code == 400 and "already registered" in again.json()["error"]
    missing = client.get("/v2/systemsharedmemory/region/nope/status")
    assert missing.status_code == 404
    assert missing.json()["error"] == "system shared memory region 'nope' is not registered"
    assert client.post("/v2/systemsharedmemory/region/nope/unregister").status_code == 200
    assert client.post("/v2/systemsharedmemory/unregister").status_code == 200
    assert client.get("/v2/systemsharedmemory/status").json() == []


def test_extensions_are_declared(client: httpx.Client) -> None:
    extensions = client.get("/v2").json()["extensions"]
    assert {"system_shared_memory", "cuda_shared_memory"} <= set(extensions)


@pytest.mark.skipif(gpu_available(), reason="checks the answer of a server without a GPU")
def test_cuda_shared_memory_needs_a_gpu(client: httpx.Client) -> None:
    handle = {"b64": base64.b64encode(bytes(64)).decode()}
    answer = client.post("/v2/cudasharedmemory/region/gpu_io/register",
                         json={"raw_handle": handle, "device_id": 0, "byte_size": 256})
    assert answer.status_code == 501
    assert answer.json()["error"].startswith("CUDA shared memory needs a GPU")
    assert client.get("/v2/cudasharedmemory/status").json() == []
    short = client.post("/v2/cudasharedmemory/region/gpu_io/register", json={
        "raw_handle": {"b64": base64.b64encode(bytes(8)).decode()}, "byte_size": 256})
    assert short.status_code == 400
    assert "raw_handle has 8 bytes; a CUDA IPC handle has 64" in short.json()["error"]
    bad = client.post("/v2/cudasharedmemory/region/gpu_io/register",
                      json={"raw_handle": "AAAA", "byte_size": 256})
    assert bad.status_code == 400 and "raw_handle must be an object" in bad.json()["error"]
    assert client.post("/v2/cudasharedmemory/unregister").status_code == 200
