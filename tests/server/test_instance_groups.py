"""Instance groups over several devices: one engine copy and context pool per device, load
spread over them, per-device statistics and metrics. The GPUs are host stand-ins
(``visible_devices=("cpu:0", "cpu:1")``), so all of it runs on the CPU."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from server.core.config import InstanceGroup
from server.core.dataplane import DataPlane
from server.core.devices import HOST, place_instance_groups, visible_devices
from server.core.errors import InvalidArgument
from tests.server.conftest import ADD_SUB_CONFIG, json_input, running_server, write_model
from tests.server.test_metrics_and_load import BlockingContext

TWO_DEVICES = ("cpu:0", "cpu:1")


def add_sub_config(name: str, groups: str) -> str:
    config = (ADD_SUB_CONFIG % "").replace('"add_sub"', f'"{name}"')
    return config.replace("instance_group [ { count: 2 kind: KIND_CPU } ]",
                          f"instance_group [ {groups} ]")


@pytest.fixture
def served(repo: Path, tmp_path: Path, plans: dict[str, bytes]
           ) -> Iterator[tuple[httpx.Client, DataPlane]]:
    write_model(repo, "spread", 1, "model.plan", plans["add_sub"],
                add_sub_config("spread", "{ count: 2 kind: KIND_GPU gpus: [ 0, 1 ] }"))
    write_model(repo, "mixed", 1, "model.plan", plans["add_sub"], add_sub_config(
        "mixed", "{ count: 1 kind: KIND_CPU }, { count: 1 kind: KIND_GPU gpus: [ 1 ] }"))
    write_model(repo, "missing_gpu", 1, "model.plan", plans["add_sub"],
                add_sub_config("missing_gpu", "{ count: 1 kind: KIND_GPU gpus: [ 0, 2 ] }"))
    with running_server(model_repository=repo, plan_cache=tmp_path / "cache",
                        visible_devices=TWO_DEVICES) as (url, plane):
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client, plane


def infer_add_sub(client: httpx.Client, model: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((3, 16)).astype(np.float32)
    b = rng.standard_normal((3, 16)).astype(np.float32)
    r = client.post(f"/v2/models/{model}/infer",
                    json={"inputs": [json_input("INPUT0", a), json_input("INPUT1", b)]})
    assert r.status_code == 200, r.text
    out = {o["name"]: np.float32(o["data"]) for o in r.json()["outputs"]}
    np.testing.assert_array_equal(out["OUTPUT0"], (a + b).ravel())
    np.testing.assert_array_equal(out["OUTPUT1"], (a - b).ravel())


def concurrent_load(url: str, model: str, requests: int, threads: int = 8) -> None:
    def one(seed: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            infer_add_sub(client, model, seed)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(requests)))


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every sample of metric ``name``, keyed by its label set."""
    out = {}
    for labels, value in re.findall(rf"^{name}{{(.*)}} (\S+)$", text, re.M):
        out[frozenset(re.findall(r'(\w+)="([^"]*)"', labels))] = float(value)
    return out


def device_stats(client: httpx.Client, model: str) -> dict[str, dict[str, Any]]:
    stats = client.get(f"/v2/models/{model}/stats").json()["model_stats"][0]
    return {d["device"]: d for d in stats["device_stats"]}


def test_two_devices_share_a_concurrent_load(served: tuple[httpx.Client, DataPlane]) -> None:
    client, plane = served
    model = plane.repository.get("spread")
    assert [p.device.name for p in model.pools] == ["cpu:0", "cpu:1"]
    assert model.pools[0].engine is not model.pools[1].engine  # a copy per device
    assert model.instances == 4

    concurrent_load(str(client.base_url), "spread", requests=48)

    stats = client.get("/v2/models/spread/stats").json()["model_stats"][0]
    per_device = {d["device"]: d for d in stats["device_stats"]}
    assert set(per_device) == {"cpu:0", "cpu:1"}
    counts = [per_device[d]["execution_count"] for d in TWO_DEVICES]
    assert sum(counts) == stats["execution_count"] == 48
    assert min(counts) >= 48 // 4, f"unbalanced: {counts}"  # roughly even, both did work
    for d in per_device.values():
        assert d["kind"] == "KIND_GPU" and d["instances"] == 2 and d["gpu_uuid"] == d["device"]
        assert d["inference_count"] == 3 * d["execution_count"]
        assert d["compute_infer"]["count"] == d["execution_count"] and d["compute_infer"]["ns"] > 0

    text = client.get("/metrics").text
    count = samples(text, "nv_inference_count")
    for device, executions in zip(TWO_DEVICES, counts):
        key = frozenset({("gpu_uuid", device), ("model", "spread"), ("version", "1")})
        assert count[key] == 3 * executions
        assert samples(text, "nv_inference_exec_count")[key] == executions
    # request counters stay per model version
    assert samples(text, "nv_inference_request_success")[
        frozenset({("model", "spread"), ("version", "1")})] == 48
    utilization = samples(text, "nv_gpu_utilization")
    assert set(utilization) == {frozenset({("gpu_uuid", d)}) for d in TWO_DEVICES}
    assert all(0 < u <= 1 for u in utilization.values())  # both ran executions
    assert "nv_gpu_memory_used_bytes{" not in text  # host stand-ins have no device memory


def test_least_loaded_pool_takes_the_next_request(served: tuple[httpx.Client, DataPlane]
                                                  ) -> None:
    client, plane = served
    model = plane.repository.get("mixed")  # one context on the host, one on "GPU 1"
    host, gpu = model.pools
    assert (host.device, gpu.device.name) == (HOST, "cpu:1")
    gate, entered = threading.Event(), threading.Event()
    host.contexts.put(BlockingContext(host.contexts.get(), gate, entered))
    with ThreadPoolExecutor(1) as pool:
        blocked = pool.submit(infer_add_sub, client, "mixed", 0)
        assert entered.wait(30)
        for seed in range(1, 6):  # the host is busy: each of these runs on "GPU 1"
            infer_add_sub(client, "mixed", seed)
        gate.set()
        blocked.result()
    per_device = device_stats(client, "mixed")
    assert per_device["host"]["execution_count"] == 1
    assert per_device["cpu:1"]["execution_count"] == 5


def test_mixed_cpu_and_gpu_groups_serve(served: tuple[httpx.Client, DataPlane]) -> None:
    client, _ = served
    concurrent_load(str(client.base_url), "mixed", requests=24, threads=4)
    per_device = device_stats(client, "mixed")
    assert per_device["host"]["kind"] == "KIND_CPU" and "gpu_uuid" not in per_device["host"]
    assert per_device["cpu:1"]["kind"] == "KIND_GPU"
    assert per_device["host"]["execution_count"] > 0 and per_device["cpu:1"]["execution_count"] > 0
    count = samples(client.get("/metrics").text, "nv_inference_count")
    cpu = count[frozenset({("model", "mixed"), ("version", "1")})]  # Triton: no gpu label
    gpu = count[frozenset({("gpu_uuid", "cpu:1"), ("model", "mixed"), ("version", "1")})]
    assert (cpu, gpu) == (3 * per_device["host"]["execution_count"],
                          3 * per_device["cpu:1"]["execution_count"])
    assert cpu + gpu == 24 * 3


def test_a_gpu_that_does_not_exist_makes_the_model_unavailable(
        served: tuple[httpx.Client, DataPlane]) -> None:
    client, _ = served
    index = {m["name"]: m for m in client.post("/v2/repository/index").json()}
    assert index["missing_gpu"]["state"] == "UNAVAILABLE"
    assert "names GPU 2, which does not exist" in index["missing_gpu"]["reason"]
    assert "sees 2 (0: cpu:0, 1: cpu:1)" in index["missing_gpu"]["reason"]
    r = client.get("/v2/models/missing_gpu/ready")
    assert r.status_code == 503
    a = np.ones((1, 16), np.float32)
    r = client.post("/v2/models/missing_gpu/infer",
                    json={"inputs": [json_input("INPUT0", a), json_input("INPUT1", a)]})
    assert r.status_code == 503 and "names GPU 2" in r.json()["error"]
    for other in ("spread", "mixed", "add_sub"):  # the others serve
        assert index[other]["state"] == "READY"
        infer_add_sub(client, other, 7)


def test_single_device_models_keep_their_metric_labels(
        served: tuple[httpx.Client, DataPlane]) -> None:
    client, _ = served
    infer_add_sub(client, "add_sub", 1)  # instance_group [ { count: 2 kind: KIND_CPU } ]
    assert device_stats(client, "add_sub")["host"]["instances"] == 2
    count = samples(client.get("/metrics").text, "nv_inference_count")
    assert count[frozenset({("model", "add_sub"), ("version", "1")})] == 3


def test_placement_of_instance_groups() -> None:
    devices = visible_devices(["cpu:0", "cpu:1", "cpu:2"])
    every_gpu = place_instance_groups([InstanceGroup("g", "KIND_GPU", 2)], "KIND_CPU", devices)
    assert [(p.device.name, p.count) for p in every_gpu] == [("cpu:0", 2), ("cpu:1", 2),
                                                             ("cpu:2", 2)]
    shared = place_instance_groups([InstanceGroup("a", "KIND_GPU", 1, (1,)),
                                    InstanceGroup("b", "KIND_AUTO", 3, (1, 2))],
                                   "KIND_GPU", devices)
    assert [(p.device.name, p.count, p.groups) for p in shared] == [
        ("cpu:1", 4, ("a", "b")), ("cpu:2", 3, ("b",))]
    auto_cpu = place_instance_groups([InstanceGroup("c", "KIND_AUTO", 2)], "KIND_CPU", devices)
    assert [(p.device, p.count, p.kind) for p in auto_cpu] == [(HOST, 2, "KIND_CPU")]
    with pytest.raises(InvalidArgument, match="sees no GPU"):
        place_instance_groups([InstanceGroup("g", "KIND_GPU")], "KIND_CPU", [])


def test_visible_devices_are_checked() -> None:
    assert [(d.kind, d.index) for d in visible_devices(["gpu:1", "cpu:0"])] == [("gpu", 1),
                                                                               ("cpu", 0)]
    with pytest.raises(ValueError, match="expected 'gpu:N' or 'cpu:N'"):
        visible_devices(["tpu:0"])
    with pytest.raises(ValueError, match="twice"):
        visible_devices(["cpu:0", "cpu:0"])


def test_device_list_flag_reaches_the_settings():
    from server.__main__ import parse_args, settings_from_args

    args = parse_args(["--model-repository", "/tmp/models", "--device-list", "cpu:0, cpu:1"])
    assert settings_from_args(args).visible_devices == ("cpu:0", "cpu:1")
    default = parse_args(["--model-repository", "/tmp/models"])
    assert settings_from_args(default).visible_devices is None
