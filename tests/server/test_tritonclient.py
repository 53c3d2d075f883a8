"""Unmodified ``tritonclient.http`` against the server: JSON and binary tensors, metadata,
configuration, repository control with config and files, statistics, and shared memory."""

from __future__ import annotations

import base64
import gc
import json
import uuid
from collections.abc import Iterator
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from engine.kernels.backends import gpu_available
from tests.server.conftest import running_server

TOKEN = {"Authorization": "Bearer t0ken"}


@pytest.fixture(scope="module", autouse=True)
def collect_clients_here() -> Iterator[None]:
    """A client left in a reference cycle (a traceback's frames) is closed by ``__del__``,
    which joins its gevent pool: collected later in another thread (a server's worker, in a
    later test), gevent raises InvalidThreadUseError. Collect them in this thread."""
    yield
    gc.collect()


@pytest.fixture
def triton(repo: Path, tmp_path: Path) -> Iterator[httpclient.InferenceServerClient]:
    with running_server(model_repository=repo, plan_cache=tmp_path / "c",
                        model_control_mode="explicit", api_token="t0ken") as (url, _):
        client = httpclient.InferenceServerClient(url.removeprefix("http://"))
        try:
            client.load_model("add_sub", headers=TOKEN)
            yield client
        finally:
            client.close()


def infer_add_sub(client: httpclient.InferenceServerClient, binary: bool) -> None:
    a = np.arange(32, dtype=np.float32).reshape(2, 16)
    b = np.full((2, 16), 3, np.float32)
    inputs = [httpclient.InferInput("INPUT0", list(a.shape), "FP32"),
              httpclient.InferInput("INPUT1", list(b.shape), "FP32")]
    inputs[0].set_data_from_numpy(a, binary_data=binary)
    inputs[1].set_data_from_numpy(b, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput("OUTPUT0", binary_data=binary),
               httpclient.InferRequestedOutput("OUTPUT1", binary_data=not binary)]
    result = client.infer("add_sub", inputs, outputs=outputs, request_id="42")
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)
    assert result.get_response()["id"] == "42"


def test_health_metadata_and_config(triton: httpclient.InferenceServerClient) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]
    assert triton.is_model_ready("add_sub")
    assert not triton.is_model_ready("scale")
    meta = triton.get_model_metadata("add_sub")
    assert [i["name"] for i in meta["inputs"]] == ["INPUT0", "INPUT1"]
    assert triton.get_model_config("add_sub")["max_batch_size"] == 8


def test_infer_json_and_binary(triton: httpclient.InferenceServerClient) -> None:
    infer_add_sub(triton, binary=False)
    infer_add_sub(triton, binary=True)


def test_errors_reach_the_client(triton: httpclient.InferenceServerClient) -> None:
    bad = [httpclient.InferInput(name, [1, 3], "FP32") for name in ("INPUT0", "INPUT1")]
    for tensor in bad:
        tensor.set_data_from_numpy(np.ones((1, 3), np.float32))
    with pytest.raises(InferenceServerException, match=r"\[1, 3\]"):
        triton.infer("add_sub", bad)
    with pytest.raises(InferenceServerException, match="unknown model"):
        triton.get_model_metadata("missing")


def test_repository_control(triton: httpclient.InferenceServerClient,
                            plans: dict[str, bytes]) -> None:
    index = {m["name"]: m for m in triton.get_model_repository_index()}
    assert index["add_sub"]["state"] == "READY"
    config = json.dumps({"name": "uploaded", "platform": "tensorrt_plan", "max_batch_size": 8})
    triton.load_model("uploaded", headers=TOKEN, config=config,
                      files={"file:1/model.plan": plans["scale3"]})
    assert triton.is_model_ready("uploaded")
    x = httpclient.InferInput("INPUT0", [1, 4], "FP32")
    x.set_data_from_numpy(np.ones((1, 4), np.float32))
    np.testing.assert_array_equal(triton.infer("uploaded", [x]).as_numpy("OUTPUT0"),
                                  np.full((1, 4), 3.0, np.float32))
    with pytest.raises(InferenceServerException, match="Bearer"):
        triton.unload_model("uploaded")
    triton.unload_model("uploaded", headers=TOKEN)
    assert not triton.is_model_ready("uploaded")


def test_statistics(triton: httpclient.InferenceServerClient) -> None:
    infer_add_sub(triton, binary=True)
    stats = triton.get_inference_statistics("add_sub")["model_stats"][0]
    assert stats["inference_count"] == 2 and stats["execution_count"] == 1
    assert stats["inference_stats"]["success"]["count"] == 1


def test_system_shared_memory(triton: httpclient.InferenceServerClient) -> None:
    """tritonclient's own shared-memory calls; the region is made with the standard library
    (``tritonclient.utils.shared_memory`` needs ``pkg_resources``, which is not installed)."""
    a = np.arange(16, dtype=np.float32).reshape(1, 16)
    b = np.full((1, 16), 4.0, np.float32)
    memory = shared_memory.SharedMemory(f"triton_{uuid.uuid4().hex[:12]}", create=True,
                                        size=256)
    try:
        memory.buf[:128] = a.tobytes() + b.tobytes()  # type: ignore[index]
        triton.register_system_shared_memory("tc_io", "/" + memory.name, 256)
        status = triton.get_system_shared_memory_status()
        assert [(r["name"], r["byte_size"]) for r in status] == [("tc_io", 256)]
        inputs = [httpclient.InferInput(f"INPUT{i}", [1, 16], "FP32") for i in range(2)]
        inputs[0].set_shared_memory("tc_io", 64)
        inputs[1].set_shared_memory("tc_io", 64, offset=64)
        outputs = [httpclient.InferRequestedOutput("OUTPUT0", binary_data=True),
                   httpclient.InferRequestedOutput("OUTPUT1", binary_data=True)]
        outputs[0].set_shared_memory("tc_io", 64, offset=128)
        result = triton.infer("add_sub", inputs, outputs=outputs)
        assert result.get_output("OUTPUT0")["parameters"]["shared_memory_byte_size"] == 64
        np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)
        np.testing.assert_array_equal(
            np.frombuffer(bytes(memory.buf[128:192]), np.float32), (a + b)[0])  # type: ignore[index]
        outputs[0].set_shared_memory("tc_io", 64, offset=224)
        with pytest.raises(InferenceServerException, match="runs past the region's 256 bytes"):
            triton.infer("add_sub", inputs, outputs=outputs)
        triton.unregister_system_shared_memory("tc_io")
        assert triton.get_system_shared_memory_status() == []
    finally:
        memory.close()
        memory.unlink()


@pytest.mark.skipif(gpu_available(), reason="checks the answer of a server without a GPU")
def test_cuda_shared_memory_needs_a_gpu(triton: httpclient.InferenceServerClient) -> None:
    assert "cuda_shared_memory" in triton.get_server_metadata()["extensions"]
    handle = base64.b64encode(bytes(64)).decode()
    with pytest.raises(InferenceServerException, match="CUDA shared memory needs a GPU"):
        triton.register_cuda_shared_memory("gpu_io", handle, 0, 256)
    assert triton.get_cuda_shared_memory_status() == []
