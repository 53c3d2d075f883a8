"""The KServe v2 REST face end to end: a real server, requests as a client sends them,
outputs compared with NumPy."""

from __future__ import annotations

import json
import struct

import httpx
import ml_dtypes
import numpy as np

from tests.server.conftest import json_input


def test_health_and_server_metadata(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    meta = client.get("/v2").json()
    assert meta["name"] == "pytrt-server"
    assert {"binary_tensor_data", "model_repository", "statistics"} <= set(meta["extensions"])


def test_model_metadata_ready_and_config(client: httpx.Client) -> None:
    meta = client.get("/v2/models/add_sub").json()
    assert meta["versions"] == ["1"] and meta["platform"] == "tensorrt_plan"
    assert meta["inputs"] == [{"name": "INPUT0", "datatype": "FP32", "shape": [-1, 16]},
                              {"name": "INPUT1", "datatype": "FP32", "shape": [-1, 16]}]
    assert client.get("/v2/models/add_sub/versions/1").json()["versions"] == ["1"]
    assert client.get("/v2/models/add_sub/ready").status_code == 200
    assert client.get("/v2/models/add_sub/versions/1/ready").status_code == 200
    config = client.get("/v2/models/add_sub/config").json()
    assert config["max_batch_size"] == 8
    assert config["instance_group"][0]["count"] == 2
    assert config["input"][0] == {"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [16]}


def test_config_completed_from_the_engine(client: httpx.Client) -> None:
    config = client.get("/v2/models/identity_int32/config").json()
    assert config["platform"] == "tensorrt_plan"
    assert config["max_batch_size"] == 8  # from the profile's max batch
    assert config["input"] == [{"name": "INPUT0", "data_type": "TYPE_INT32", "dims": [4]}]


def test_broken_model_is_unavailable_and_others_serve(client: httpx.Client) -> None:
    index = {m["name"]: m for m in client.post("/v2/repository/index").json()}
    assert index["broken"]["state"] == "UNAVAILABLE"
    assert "model.plan" in index["broken"]["reason"]
    assert index["add_sub"]["state"] == "READY"
    assert client.get("/v2/models/broken/ready").status_code == 503
    r = client.post("/v2/models/broken/infer", json={"inputs": []})
    assert r.status_code in (400, 503)
    ready = client.post("/v2/repository/index", json={"ready": True}).json()
    assert "broken" not in {m["name"] for m in ready}


def test_infer_json(client: httpx.Client) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 16)).astype(np.float32)
    b = rng.standard_normal((3, 16)).astype(np.float32)
    body = {"id": "r1", "inputs": [json_input("INPUT0", a),
                                   {**json_input("INPUT1", b), "data": b.tolist()}]}
    r = client.post("/v2/models/add_sub/infer", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "r1" and out["model_name"] == "add_sub" and out["model_version"] == "1"
    got = {o["name"]: np.array(o["data"], np.float32).reshape(o["shape"]) for o in out["outputs"]}
    np.testing.assert_array_equal(got["OUTPUT0"], a + b)
    np.testing.assert_array_equal(got["OUTPUT1"], a - b)


def test_infer_requested_output_only(client: httpx.Client) -> None:
    a = np.ones((1, 16), np.float32)
    r = client.post("/v2/models/add_sub/versions/1/infer", json={
        "inputs": [json_input("INPUT0", a), json_input("INPUT1", a)],
        "outputs": [{"name": "OUTPUT1"}]})
    assert [o["name"] for o in r.json()["outputs"]] == ["OUTPUT1"]
    assert r.json()["outputs"][0]["data"] == [0.0] * 16


def test_infer_other_datatypes_json(client: httpx.Client) -> None:
    cases = [("identity_int32", "INT32", np.array([[1, -2, 3, 2**31 - 1]], np.int32)),
             ("identity_int64", "INT64", np.array([[2**40, -1, 0, 7]], np.int64)),
             ("identity_bool", "BOOL", np.array([[True, False, True, True]])),
             ("identity_fp16", "FP16", np.array([[0.5, -1.25, 2, 1000]], np.float16))]
    for model, datatype, array in cases:
        r = client.post(f"/v2/models/{model}/infer",
                        json={"inputs": [json_input("INPUT0", array, datatype)]})
        assert r.status_code == 200, (model, r.text)
        out = r.json()["outputs"][0]
        assert out["datatype"] == datatype
        np.testing.assert_array_equal(np.array(out["data"], array.dtype).reshape(out["shape"]),
                                      array)


def binary_request(inputs: dict[str, tuple[str, np.ndarray]],
                   outputs: list[dict[str, object]] | None = None,
                   parameters: dict[str, object] | None = None) -> tuple[bytes, dict[str, str]]:
    header: dict[str, object] = {"inputs": []}
    blobs = []
    for name, (datatype, array) in inputs.items():
        blob = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header["inputs"].append({"name": name, "datatype": datatype,  # type: ignore[attr-defined]
                                 "shape": list(array.shape),
                                 "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    if outputs is not None:
        header["outputs"] = outputs
    if parameters is not None:
        header["parameters"] = parameters
    text = json.dumps(header).encode()
    return text + b"".join(blobs), {"Inference-Header-Content-Length": str(len(text)),
                                    "Content-Type": "application/octet-stream"}


def split_binary_response(r: httpx.Response) -> dict[str, np.ndarray]:
    length = int(r.headers["Inference-Header-Content-Length"])
    header = json.loads(r.content[:length])
    offset, out = length, {}
    for o in header["outputs"]:
        size = o["parameters"]["binary_data_size"]
        dtype = {"FP32": np.float32, "FP16": np.float16, "INT32": np.int32,
                 "BF16": ml_dtypes.bfloat16}[o["datatype"]]
        out[o["name"]] = np.frombuffer(r.content[offset:offset + size], dtype).reshape(o["shape"])
        offset += size
    assert offset == len(r.content)
    return out


def test_infer_binary_inputs_and_outputs(client: httpx.Client) -> None:
    a = np.arange(32, dtype=np.float32).reshape(2, 16)
    b = np.full((2, 16), 0.5, np.float32)
    body, headers = binary_request({"INPUT0": ("FP32", a), "INPUT1": ("FP32", b)},
                                   parameters={"binary_data_output": True})
    r = client.post("/v2/models/add_sub/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    got = split_binary_response(r)
    np.testing.assert_array_equal(got["OUTPUT0"], a + b)
    np.testing.assert_array_equal(got["OUTPUT1"], a - b)


def test_infer_mixed_binary_and_json_outputs(client: httpx.Client) -> None:
    a = np.ones((1, 16), np.float32)
    body, headers = binary_request({"INPUT0": ("FP32", a), "INPUT1": ("FP32", a)}, outputs=[
        {"name": "OUTPUT0", "parameters": {"binary_data": True}},
        {"name": "OUTPUT1", "parameters": {"binary_data": False}}])
    r = client.post("/v2/models/add_sub/infer", content=body, headers=headers)
    length = int(r.headers["Inference-Header-Content-Length"])
    header = json.loads(r.content[:length])
    assert header["outputs"][1]["data"] == [0.0] * 16
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 64
    np.testing.assert_array_equal(np.frombuffer(r.content[length:], np.float32), [2.0] * 16)


def test_bytes_tensors_round_trip_through_the_codec() -> None:
    from server.core.codec import (
        InferRequest,
        InferResponse,
        output_from_array,
        request_from_body,
        response_to_body,
    )

    words = [b"hello", b"", "\u00e9t\u00e9".encode()]
    blob = b"".join(struct.pack("<I", len(w)) + w for w in words)
    header = json.dumps({"inputs": [
        {"name": "b", "datatype": "BYTES", "shape": [3], "parameters": {"binary_data_size":
                                                                         len(blob)}},
        {"name": "j", "datatype": "BYTES", "shape": [1, 2], "data": [["x", "yz"]]}]}).encode()
    request = request_from_body(header + blob, len(header))
    assert list(request.inputs[0].data) == words
    assert request.inputs[1].data.tolist() == [[b"x", b"yz"]]
    response = InferResponse("m", "1", [output_from_array("b", request.inputs[0].data)])
    body, length = response_to_body(response, InferRequest([], binary_output=True))
    assert length is not None and body[length:] == blob
    body, length = response_to_body(response, InferRequest([]))
    assert length is None
    assert json.loads(body)["outputs"][0]["data"] == ["hello", "", "\u00e9t\u00e9"]


def test_bf16_binary_round_trip_through_the_codec() -> None:
    from server.core.codec import tensor_from_binary, tensor_to_binary

    x = np.array([1.5, -2.0, 3.25], ml_dtypes.bfloat16)
    y = tensor_from_binary(tensor_to_binary(x, "BF16"), "BF16", (3,), "x")
    np.testing.assert_array_equal(y.astype(np.float32), x.astype(np.float32))


def test_statistics(client: httpx.Client) -> None:
    a = np.ones((2, 16), np.float32)
    for _ in range(3):
        client.post("/v2/models/add_sub/infer",
                    json={"inputs": [json_input("INPUT0", a), json_input("INPUT1", a)]})
    client.post("/v2/models/add_sub/infer", json={"inputs": [json_input("INPUT0", a)]})
    stats = client.get("/v2/models/add_sub/stats").json()["model_stats"]
    assert len(stats) == 1 and stats[0]["name"] == "add_sub" and stats[0]["version"] == "1"
    s = stats[0]
    assert s["inference_count"] == 6 and s["execution_count"] == 3
    assert s["inference_stats"]["success"]["count"] == 3
    assert s["inference_stats"]["fail"]["count"] == 1
    assert s["inference_stats"]["compute_infer"]["ns"] > 0
    assert s["batch_stats"][0]["batch_size"] == 2
    everything = client.get("/v2/models/stats").json()["model_stats"]
    assert {m["name"] for m in everything} >= {"add_sub", "identity_int32"}
