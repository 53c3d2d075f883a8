"""Dynamic batching: concurrent requests merge into fewer executions and each gets exactly
what it gets alone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from server.core.dataplane import DataPlane
from tests.server.conftest import json_input


def infer(url: str, model: str, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    with httpx.Client(base_url=url, timeout=60) as client:
        r = client.post(f"/v2/models/{model}/infer",
                        json={"inputs": [json_input("INPUT0", a), json_input("INPUT1", b)]})
    assert r.status_code == 200, r.text
    return {o["name"]: np.array(o["data"], np.float32).reshape(o["shape"])
            for o in r.json()["outputs"]}


def test_batched_results_equal_unbatched(server: tuple[str, DataPlane]) -> None:
    url, _ = server
    rng = np.random.default_rng(1)
    # Requests of batch sizes 1, 2 and 3 with random data.
    requests = [(rng.standard_normal((n, 16)).astype(np.float32),
                 rng.standard_normal((n, 16)).astype(np.float32)) for n in [1, 2, 3, 1, 1, 2] * 2]
    with ThreadPoolExecutor(len(requests)) as pool:
        batched = list(pool.map(lambda ab: infer(url, "add_sub_batched", *ab), requests))
    alone = [infer(url, "add_sub", a, b) for a, b in requests]
    for (a, b), got, ref in zip(requests, batched, alone):
        np.testing.assert_array_equal(got["OUTPUT0"], a + b)
        np.testing.assert_array_equal(got["OUTPUT1"], a - b)
        np.testing.assert_array_equal(got["OUTPUT0"], ref["OUTPUT0"])
        np.testing.assert_array_equal(got["OUTPUT1"], ref["OUTPUT1"])
    with httpx.Client(base_url=url) as client:
        stats = client.get("/v2/models/add_sub_batched/stats").json()["model_stats"][0]
    assert stats["inference_count"] == sum(a.shape[0] for a, _ in requests)
    assert stats["inference_stats"]["success"]["count"] == len(requests)
    # Merged: fewer executions than requests, and some executions of more than 3 rows.
    assert stats["execution_count"] < len(requests)
    assert max(b["batch_size"] for b in stats["batch_stats"]) > 3
    assert all(b["batch_size"] <= 8 for b in stats["batch_stats"])


def test_batcher_keeps_a_bad_request_from_spoiling_others(server: tuple[str, DataPlane]) -> None:
    url, _ = server
    good = np.ones((1, 16), np.float32)

    def bad() -> int:
        with httpx.Client(base_url=url, timeout=60) as client:
            return client.post("/v2/models/add_sub_batched/infer", json={"inputs": [
                json_input("INPUT0", good), json_input("INPUT1", np.ones((1, 15), np.float32))]
            }).status_code

    with ThreadPoolExecutor(4) as pool:
        goods = [pool.submit(infer, url, "add_sub_batched", good, good) for _ in range(3)]
        assert pool.submit(bad).result() == 400
        for f in goods:
            np.testing.assert_array_equal(f.result()["OUTPUT0"], good * 2)
