"""Unmodified ``tritonclient.http`` against the server: JSON and binary tensors, metadata,
configuration, repository control with config and files, and statistics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.server.conftest import running_server

TOKEN = {"Authorization": "Bearer t0ken"}


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
