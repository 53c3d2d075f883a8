"""Instance groups over real GPUs: one model whose group names GPUs 0 and 1 serves a concurrent
load, each GPU runs its own engine copy, and the statistics and metrics count work on both
under their UUIDs. Needs two CUDA devices (skips itself with fewer); the throughput figure is
``benchmarks/multi_gpu_load.py``'s."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import engine as trt
from engine.runtime import cuda
from tests.server.conftest import running_server, write_model
from tests.server.plans import add_sub_plan
from tests.server.test_instance_groups import (
    add_sub_config,
    concurrent_load,
    infer_add_sub,
    samples,
)


@pytest.fixture
def two_gpus() -> list[str]:
    uuids = [cuda.device_uuid(i) for i in range(cuda.device_count())]
    if len(uuids) < 2:
        pytest.skip(f"needs two CUDA devices, this machine has {len(uuids)}")
    return uuids[:2]


def test_a_group_over_two_gpus_spreads_a_concurrent_load(two_gpus: list[str],
                                                          tmp_path: Path) -> None:
    plan = add_sub_plan(target=trt.DeviceType.GPU)
    repo = tmp_path / "repo"
    write_model(repo, "spread", 1, "model.plan", plan,
                add_sub_config("spread", "{ count: 2 kind: KIND_GPU gpus: [ 0, 1 ] }"))
    with running_server(model_repository=repo, plan_cache=tmp_path / "cache") as (url, plane):
        model = plane.repository.get("spread")
        assert [p.device.name for p in model.pools] == ["gpu:0", "gpu:1"]
        assert [p.device.uuid for p in model.pools] == two_gpus
        assert model.pools[0].engine is not model.pools[1].engine
        with httpx.Client(base_url=url, timeout=60) as client:
            infer_add_sub(client, "spread", 0)  # numerics: a + b and a - b, exactly
            concurrent_load(url, "spread", requests=64, threads=8)
            stats = client.get("/v2/models/spread/stats").json()["model_stats"][0]
            text = client.get("/metrics").text
    per_device = {d["gpu_uuid"]: d for d in stats["device_stats"]}
    assert set(per_device) == set(two_gpus)
    counts = [per_device[u]["execution_count"] for u in two_gpus]
    assert sum(counts) == stats["execution_count"] == 65
    assert min(counts) > 0, f"one GPU did no work: {counts}"
    for uuid, executions in zip(two_gpus, counts):
        assert per_device[uuid]["kind"] == "KIND_GPU"
        key = frozenset({("gpu_uuid", uuid), ("model", "spread"), ("version", "1")})
        assert samples(text, "nv_inference_exec_count")[key] == executions
        assert samples(text, "nv_gpu_memory_used_bytes")[frozenset({("gpu_uuid", uuid)})] > 0
        assert 0 < samples(text, "nv_gpu_utilization")[frozenset({("gpu_uuid", uuid)})] <= 1
