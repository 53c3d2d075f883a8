"""Bad requests get a precise 4xx and the server keeps serving."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.server.conftest import json_input, running_server

GOOD = {"inputs": [json_input("INPUT0", np.ones((1, 16), np.float32)),
                   json_input("INPUT1", np.ones((1, 16), np.float32))]}


def post_infer(client: httpx.Client, body: object, model: str = "add_sub") -> httpx.Response:
    return client.post(f"/v2/models/{model}/infer", json=body)


def with_input(index: int, **changes: object) -> dict[str, object]:
    inputs = [dict(i) for i in GOOD["inputs"]]
    inputs[index].update(changes)
    return {"inputs": inputs}


@pytest.mark.parametrize("body, status, words", [
    (with_input(0, name="NOPE"), 400, ["NOPE", "INPUT0", "INPUT1"]),
    ({"inputs": GOOD["inputs"][:1]}, 400, ["INPUT1", "missing"]),
    ({"inputs": GOOD["inputs"] * 2}, 400, ["given twice"]),
    (with_input(0, datatype="FP64"), 400, ["FP64", "expects FP32"]),
    (with_input(0, datatype="FLOAT"), 400, ["unknown datatype", "FLOAT"]),
    (with_input(0, shape=[1, 15], data=[0.0] * 15), 400, ["[1, 15]", "[-1, 16]"]),
    (with_input(0, shape=[16], data=[0.0] * 16), 400, ["[16]", "[-1, 16]"]),
    (with_input(0, shape=[9, 16], data=[0.0] * 144), 400, ["batch size 9", "1..8"]),
    (with_input(0, shape=[1, 16], data=[0.0] * 15), 400, ["15 values", "16 expected"]),
    (with_input(0, data=["a"] * 16), 400, ["FP32 data must be"]),
    (with_input(0, data=[[1.0], [1.0, 2.0]]), 400, ["ragged"]),
    (with_input(0, shape=[1, -16]), 400, ["non-negative"]),
    (with_input(0, data=None), 400, []),
    ({"inputs": []}, 400, ["non-empty"]),
    ({"inputs": GOOD["inputs"], "outputs": [{"name": "OUTPUT9"}]}, 400, ["OUTPUT9"]),
    ([1, 2], 400, ["JSON object"]),
])
def test_bad_infer_requests(client: httpx.Client, body: object, status: int,
                            words: list[str]) -> None:
    r = post_infer(client, body)
    assert r.status_code == status, r.text
    for word in words:
        assert word in r.json()["error"], (word, r.json())
    assert post_infer(client, GOOD).status_code == 200


def test_integer_data_is_checked(client: httpx.Client) -> None:
    r = post_infer(client, {"inputs": [json_input("INPUT0", np.array([[1.5, 2, 3, 4]]), "INT32")]},
                   model="identity_int32")
    assert r.status_code == 400 and "INT32 data must be integers" in r.json()["error"]
    r = post_infer(client, {"inputs": [json_input("INPUT0", np.array([[2**31, 0, 0, 0]]),
                                                  "INT32")]}, model="identity_int32")
    assert r.status_code == 400 and "outside INT32's range" in r.json()["error"]


def test_malformed_json(client: httpx.Client) -> None:
    r = client.post("/v2/models/add_sub/infer", content=b'{"inputs": [',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]


def test_bad_binary_framing(client: httpx.Client) -> None:
    a = np.ones((1, 16), np.float32).tobytes()
    header = json.dumps({"inputs": [
        {"name": "INPUT0", "datatype": "FP32", "shape": [1, 16],
         "parameters": {"binary_data_size": 64}},
        {"name": "INPUT1", "datatype": "FP32", "shape": [1, 16],
         "parameters": {"binary_data_size": 64}}]}).encode()
    cases = [
        (header + a, str(len(header)), "runs past"),                      # truncated
        (header + a + a + b"xx", str(len(header)), "not claimed"),         # trailing bytes
        (header + a + a, "banana", "must be an integer"),                  # bad header length
        (header + a + a, str(len(header) + 10**6), "lies outside"),        # header too long
        (header + a + a, str(len(header) - 3), "malformed JSON"),          # header cut short
    ]
    for body, length, words in cases:
        r = client.post("/v2/models/add_sub/infer", content=body,
                        headers={"Inference-Header-Content-Length": length})
        assert r.status_code == 400 and words in r.json()["error"], (words, r.text)
    wrong_size = header.replace(b'"binary_data_size": 64}}]', b'"binary_data_size": 60}}]')
    r = client.post("/v2/models/add_sub/infer", content=wrong_size + a + a[:60],
                    headers={"Inference-Header-Content-Length": str(len(wrong_size))})
    assert r.status_code == 400 and "60 bytes of binary data" in r.json()["error"]


def test_unknown_model_version_and_route(client: httpx.Client) -> None:
    r = post_infer(client, GOOD, model="nope")
    assert r.status_code == 404 and "unknown model 'nope'" in r.json()["error"]
    assert client.get("/v2/models/nope/ready").status_code == 404
    r = client.get("/v2/models/add_sub/versions/7")
    assert r.status_code == 404 and "no version 7" in r.json()["error"]
    r = client.get("/v2/models/add_sub/versions/x1")
    assert r.status_code == 400
    r = client.get("/v2/nothing/here")
    assert r.status_code == 404 and "error" in r.json()


@pytest.mark.parametrize("name", ["..", ".hidden", "a b", "x%2F..%2Fy", "%2e%2e", "a\\b"])
def test_path_tricks_in_model_names(client: httpx.Client, name: str) -> None:
    for r in (client.get(f"/v2/models/{name}/config"),
              client.post(f"/v2/models/{name}/infer", json=GOOD)):
        assert r.status_code in (400, 404), (name, r.status_code)
        assert "error" in r.json()
    assert client.get("/v2/health/live").status_code == 200


def test_oversized_body(repo: Path, tmp_path: Path) -> None:
    with running_server(model_repository=repo, plan_cache=tmp_path / "c",
                        max_request_bytes=1000) as (url, _):
        with httpx.Client(base_url=url) as client:
            big = {"inputs": [json_input("INPUT0", np.ones((8, 16), np.float32)),
                              json_input("INPUT1", np.ones((8, 16), np.float32))]}
            r = post_infer(client, big)
            assert r.status_code == 413 and "exceeds the limit of 1000" in r.json()["error"]

            def chunks() -> object:  # no Content-Length: the limit holds while streaming
                yield json.dumps(big).encode()

            r = client.post("/v2/models/add_sub/infer", content=chunks())
            assert r.status_code == 413
            assert post_infer(client, GOOD).status_code == 200
