"""Model repository extension (index, load with config and files, unload), uploads, tokens,
and poll mode."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.server.conftest import json_input, running_server, write_model

TOKEN = {"Authorization": "Bearer s3cret"}
SCALE_CONFIG = json.dumps({"name": "scale", "platform": "tensorrt_plan", "max_batch_size": 8})


@pytest.fixture
def explicit(repo: Path, tmp_path: Path) -> Iterator[httpx.Client]:
    with running_server(model_repository=repo, plan_cache=tmp_path / "c",
                        model_control_mode="explicit", api_token="s3cret",
                        max_upload_bytes=200_000) as (url, _):
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client


def scale_of(client: httpx.Client, model: str = "scale", version: str | None = None) -> float:
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    r = client.post(path, json={"inputs": [json_input("INPUT0", np.ones((1, 4), np.float32))]})
    assert r.status_code == 200, r.text
    return float(r.json()["outputs"][0]["data"][0])


def test_explicit_mode_loads_nothing_until_asked(explicit: httpx.Client) -> None:
    index = explicit.post("/v2/repository/index").json()
    assert {"name": "scale"} in index and all("state" not in m for m in index)
    assert explicit.get("/v2/models/scale/ready").status_code == 503
    assert explicit.post("/v2/repository/models/scale/load").status_code == 401
    assert explicit.post("/v2/repository/models/scale/load",
                         headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert explicit.post("/v2/repository/models/scale/load", headers=TOKEN).status_code == 200
    assert scale_of(explicit) == 2.0
    assert explicit.post("/v2/repository/models/scale/unload", headers=TOKEN).status_code == 200
    index = {m["name"]: m for m in explicit.post("/v2/repository/index").json()}
    assert index["scale"]["state"] == "UNAVAILABLE" and index["scale"]["reason"] == "unloaded"
    assert explicit.get("/v2/models/scale/ready").status_code == 503


def test_load_failure_reports_the_reason(explicit: httpx.Client) -> None:
    r = explicit.post("/v2/repository/models/broken/load", headers=TOKEN)
    assert r.status_code == 400 and "model.plan" in r.json()["error"]
    r = explicit.post("/v2/repository/models/absent/load", headers=TOKEN)
    assert r.status_code == 404


def test_load_with_config_and_files(explicit: httpx.Client, plans: dict[str, bytes],
                                    repo: Path) -> None:
    body = {"parameters": {"config": SCALE_CONFIG.replace('"scale"', '"fresh"'),
                           "file:1/model.plan": base64.b64encode(plans["scale3"]).decode()}}
    r = explicit.post("/v2/repository/models/fresh/load", json=body, headers=TOKEN)
    assert r.status_code == 200, r.text
    assert scale_of(explicit, "fresh") == 3.0
    assert (repo / "fresh" / "1" / "model.plan").read_bytes() == plans["scale3"]
    for key in ("file:../x/model.plan", "file:1/evil.py", "file:/etc/model.plan",
                "file:1/../../model.plan"):
        bad = {"parameters": {"config": SCALE_CONFIG.replace('"scale"', '"fresh"'),
                              key: base64.b64encode(b"x").decode()}}
        r = explicit.post("/v2/repository/models/fresh/load", json=bad, headers=TOKEN)
        assert r.status_code == 400 and "invalid model file path" in r.json()["error"], key
    r = explicit.post("/v2/repository/models/fresh/load", headers=TOKEN, json={
        "parameters": {"file:1/model.plan": base64.b64encode(plans["scale3"]).decode()}})
    assert r.status_code == 400 and "needs its 'config'" in r.json()["error"]
    assert scale_of(explicit, "fresh") == 3.0


def test_upload_new_version_and_failed_upload(explicit: httpx.Client, plans: dict[str, bytes],
                                              repo: Path) -> None:
    assert explicit.post("/v2/repository/models/scale/load", headers=TOKEN).status_code == 200
    url = "/v2/repository/models/scale/upload?filename=model.plan"
    assert explicit.post(url, content=plans["scale3"]).status_code == 401
    r = explicit.post(url, content=plans["scale3"], headers=TOKEN)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "scale", "version": "2"}
    assert scale_of(explicit) == 3.0  # latest version serves
    assert (repo / "scale" / "2" / "model.plan").is_file()
    # A broken upload: refused, nothing written, version 2 keeps serving.
    r = explicit.post(url, content=b"garbage" * 10, headers=TOKEN)
    assert r.status_code == 400 and "model.plan" in r.json()["error"]
    assert not (repo / "scale" / "3").exists()
    assert scale_of(explicit) == 3.0
    # An upload for a plan whose outputs contradict the config: refused too.
    cfg = json.dumps({"name": "scale", "max_batch_size": 8,
                      "output": [{"name": "OTHER", "data_type": "TYPE_FP32", "dims": [4]}],
                      "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [4]}]})
    r = explicit.post("/v2/repository/models/scale/upload", content=plans["scale2"],
                      params={"filename": "model.plan", "config": cfg}, headers=TOKEN)
    assert r.status_code == 400 and "OTHER" in r.json()["error"]
    assert scale_of(explicit) == 3.0


def test_upload_checks_names_and_size(explicit: httpx.Client, plans: dict[str, bytes]) -> None:
    r = explicit.post("/v2/repository/models/scale/upload?filename=../../model.plan",
                      content=plans["scale2"], headers=TOKEN)
    assert r.status_code == 400 and "invalid file name" in r.json()["error"]
    r = explicit.post("/v2/repository/models/.evil/upload?filename=model.plan",
                      content=plans["scale2"], headers=TOKEN)
    assert r.status_code == 400 and "invalid model name" in r.json()["error"]
    r = explicit.post("/v2/repository/models/scale/upload", content=b"x", headers=TOKEN)
    assert r.status_code == 400 and "filename" in r.json()["error"]
    r = explicit.post("/v2/repository/models/big/upload?filename=model.plan",
                      content=b"x" * 200_001, headers=TOKEN)
    assert r.status_code == 413


def test_upload_new_model(explicit: httpx.Client, plans: dict[str, bytes]) -> None:
    r = explicit.post("/v2/repository/models/brand_new/upload?filename=model.plan",
                      content=plans["scale3"], headers=TOKEN)
    assert r.status_code == 200 and r.json()["version"] == "1"
    assert scale_of(explicit, "brand_new") == 3.0


def test_load_not_allowed_in_mode_none(client: httpx.Client) -> None:
    r = client.post("/v2/repository/models/scale/load")
    assert r.status_code == 501 and "model control mode 'none'" in r.json()["error"]


def test_versions_and_policy(repo: Path, tmp_path: Path, plans: dict[str, bytes]) -> None:
    write_model(repo, "scale", 2, "model.plan", plans["scale3"],
                'name: "scale" version_policy: { all: {} }')
    with running_server(model_repository=repo, plan_cache=tmp_path / "c") as (url, _):
        with httpx.Client(base_url=url) as client:
            assert client.get("/v2/models/scale").json()["versions"] == ["1", "2"]
            assert scale_of(client, version="1") == 2.0
            assert scale_of(client, version="2") == 3.0
            assert scale_of(client) == 3.0


def test_poll_mode_picks_up_changes(repo: Path, tmp_path: Path, plans: dict[str, bytes]) -> None:
    with running_server(model_repository=repo, plan_cache=tmp_path / "c",
                        model_control_mode="poll", repository_poll_secs=0.2) as (url, _):
        with httpx.Client(base_url=url) as client:
            assert scale_of(client) == 2.0
            write_model(repo, "scale", 2, "model.plan", plans["scale3"])
            deadline = time.monotonic() + 20
            while scale_of(client) != 3.0:
                assert time.monotonic() < deadline, "poll did not load version 2"
                time.sleep(0.1)
            r = client.post("/v2/repository/models/scale/unload")
            assert r.status_code == 501
