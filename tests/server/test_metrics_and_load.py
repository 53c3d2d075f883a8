"""Prometheus metrics under Triton's names, concurrent clients, and the bounded queue."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from server.core.dataplane import DataPlane
from tests.server.conftest import json_input, running_server, write_model

TRITON_COUNTERS = [
    "nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
    "nv_inference_exec_count", "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us", "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us", "nv_inference_compute_output_duration_us"]


def metric(text: str, name: str, model: str) -> float:
    match = re.search(rf'^{name}{{model="{model}",version="1"}} (\S+)$', text, re.M)
    assert match, f"{name} for {model} not in:\n{text}"
    return float(match.group(1))


def test_metrics_use_triton_names(client: httpx.Client) -> None:
    a = np.ones((2, 16), np.float32)
    for _ in range(2):
        client.post("/v2/models/add_sub/infer",
                    json={"inputs": [json_input("INPUT0", a), json_input("INPUT1", a)]})
    client.post("/v2/models/add_sub/infer", json={"inputs": [json_input("INPUT0", a)]})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in TRITON_COUNTERS:
        assert f"# TYPE {name} counter" in text
    assert metric(text, "nv_inference_request_success", "add_sub") == 2
    assert metric(text, "nv_inference_request_failure", "add_sub") == 1
    assert metric(text, "nv_inference_count", "add_sub") == 4
    assert metric(text, "nv_inference_exec_count", "add_sub") == 2
    assert metric(text, "nv_inference_request_duration_us", "add_sub") > 0
    assert metric(text, "nv_inference_compute_infer_duration_us", "add_sub") > 0
    assert metric(text, "nv_inference_request_success", "identity_int32") == 0


def test_concurrent_clients(server: tuple[str, Any]) -> None:
    url, _ = server
    rng = np.random.default_rng(2)

    def one(seed: int) -> None:
        a = np.random.default_rng(seed).standard_normal((2, 16)).astype(np.float32)
        with httpx.Client(base_url=url, timeout=60) as client:
            for model in ("add_sub", "add_sub_batched"):
                r = client.post(f"/v2/models/{model}/infer", json={
                    "inputs": [json_input("INPUT0", a), json_input("INPUT1", a)]})
                assert r.status_code == 200, r.text
                out = {o["name"]: o["data"] for o in r.json()["outputs"]}
                np.testing.assert_array_equal(np.float32(out["OUTPUT0"]), (a + a).ravel())
                np.testing.assert_array_equal(np.float32(out["OUTPUT1"]), np.zeros(32))

    seeds = rng.integers(0, 2**31, 24)
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(one, seeds))
    with httpx.Client(base_url=url) as client:
        stats = client.get("/v2/models/add_sub/stats").json()["model_stats"][0]
    assert stats["inference_stats"]["success"]["count"] == 24


class BlockingContext:
    """An execution context that waits for a signal: a model that is slow on demand."""

    def __init__(self, inner: Any, gate: threading.Event, entered: threading.Event) -> None:
        self.inner, self.gate, self.entered = inner, gate, entered

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.entered.set()
        assert self.gate.wait(30)
        return self.inner.infer(feeds)  # type: ignore[no-any-return]


def test_full_queue_answers_busy(repo: Path, tmp_path: Path, plans: dict[str, bytes]) -> None:
    write_model(repo, "one", 1, "model.plan", plans["scale2"],
                'name: "one" instance_group [{ count: 1 kind: KIND_CPU }]')
    with running_server(model_repository=repo, plan_cache=tmp_path / "c",
                        max_queue_size=1) as (url, plane):
        model = plane.repository.get("one")
        gate, entered = threading.Event(), threading.Event()
        model._contexts.put(BlockingContext(model._contexts.get(), gate, entered))
        body = {"inputs": [json_input("INPUT0", np.ones((1, 4), np.float32))]}

        def post() -> httpx.Response:
            with httpx.Client(base_url=url, timeout=60) as client:
                return client.post("/v2/models/one/infer", json=body)

        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(post)
            assert entered.wait(30)
            queued = pool.submit(post)
            while model._in_flight < 2:
                threading.Event().wait(0.01)
            busy = post()
            assert busy.status_code == 503 and "busy" in busy.json()["error"]
            with httpx.Client(base_url=url) as client:  # other models still serve
                assert client.get("/v2/models/scale/ready").status_code == 200
            gate.set()
            assert running.result().status_code == 200
            assert queued.result().status_code == 200
        assert post().status_code == 200


def test_dataplane_core_needs_no_web_framework() -> None:
    import ast

    for path in Path("server/core").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in ("fastapi", "starlette", "grpc", "uvicorn"), \
                    (path, name)
    assert DataPlane.__module__ == "server.core.dataplane"
