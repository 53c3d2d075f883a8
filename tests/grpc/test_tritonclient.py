"""Unmodified ``tritonclient.grpc`` against our gRPC server: the calls run in a separate
process (tritonclient_calls.py), the server here; the answers are checked with NumPy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import engine as trt
from tests.grpc.serving import identity_config, identity_plan, running_server, write_repository

ROOT = Path(__file__).resolve().parents[2]


def test_tritonclient_grpc_against_our_server(tmp_path: Path) -> None:
    repository = write_repository(tmp_path / "models")
    plan = tmp_path / "identity.plan"
    plan.write_bytes(identity_plan(trt.int32))
    with running_server(repository, load=("add_sub",)) as server:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("tritonclient_calls.py")),
             server.grpc_url, str(plan), identity_config("uploaded", "INT32")],
            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)

    assert got["live"] is True and got["ready"] is True and got["model_ready"] is True
    assert got["server_metadata"]["name"] == "pytrt-server"
    assert "system_shared_memory" in got["server_metadata"]["extensions"]
    meta = got["model_metadata"]
    assert meta["name"] == "add_sub" and meta["versions"] == ["1"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("INPUT0", "FP32", ["-1", "16"]), ("INPUT1", "FP32", ["-1", "16"])]
    config = got["model_config"]
    assert config["name"] == "add_sub" and config["max_batch_size"] == 8
    assert config["platform"] == "tensorrt_plan"
    assert [i["data_type"] for i in config["input"]] == ["TYPE_FP32", "TYPE_FP32"]
    assert config["instance_group"][0]["count"] == 2
    assert config["instance_group"][0]["kind"] == "KIND_CPU"

    a = np.arange(32, dtype=np.float32).reshape(2, 16)
    b = np.full((2, 16), 0.25, np.float32)
    np.testing.assert_array_equal(np.array(got["infer"]["OUTPUT0"], np.float32), a + b)
    np.testing.assert_array_equal(np.array(got["infer"]["OUTPUT1"], np.float32), a - b)

    assert got["uploaded_ready"] is True
    assert got["uploaded_infer"] == [[7, -8, 9, 10]]
    assert {"name": "uploaded", "version": "1", "state": "READY"} in got["index"]
    (stats,) = got["statistics"]["model_stats"]
    assert stats["name"] == "uploaded" and stats["inference_count"] == "1"
    assert stats["inference_stats"]["success"]["count"] == "1"
    assert got["uploaded_ready_after_unload"] is False
    assert got["error"]["status"] == "StatusCode.NOT_FOUND"
    assert "no_such_model" in got["error"]["message"]
