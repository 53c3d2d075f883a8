"""The response cache (``--cache-config local,size=N`` and ``response_cache { enable: true }``):
hits answer without running the model, over REST and gRPC, with Triton's statistics and
metrics; keys cover inputs and requested outputs; LRU eviction by bytes; reloads and unloads
invalidate; ensembles cache at the top level; concurrent clients.

The models: ``add_sub`` (cached; FP32 [-1, 16], two instances), ``add_sub_plain`` (the same,
not cached), ``scale`` (x * 2, cached) and ``pipeline``, a cached ensemble of one step on
``scale_plain`` (x * 2, not cached)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from server.__main__ import parse_args
from server.core.codec import InferInput, InferOutput, InferRequest
from server.core.dataplane import DataPlane, ServerSettings
from server.core.response_cache import ResponseCache, request_key
from server.grpc._generated import grpc_service_pb2 as pb
from server.grpc._generated import grpc_service_pb2_grpc as pb_grpc
from tests.grpc.serving import RunningServer, running_server
from tests.server.conftest import ADD_SUB_CONFIG, json_input, write_model
from tests.server.test_rest import binary_request, split_binary_response

CACHED = "response_cache { enable: true }"
MODELS = ("add_sub", "add_sub_plain", "scale", "scale_plain", "pipeline")
PIPELINE = """
name: "pipeline" platform: "ensemble" max_batch_size: 8
input [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "Y" data_type: TYPE_FP32 dims: [ 4 ] } ]
ensemble_scheduling { step [ { model_name: "scale_plain" model_version: -1
  input_map { key: "INPUT0" value: "X" } output_map { key: "OUTPUT0" value: "Y" } } ] }
response_cache { enable: true }
"""


def write_repository(root: Path, plans: dict[str, bytes]) -> Path:
    write_model(root, "add_sub", 1, "model.plan", plans["add_sub"], ADD_SUB_CONFIG % CACHED)
    write_model(root, "add_sub_plain", 1, "model.plan", plans["add_sub"],
                (ADD_SUB_CONFIG % "").replace('"add_sub"', '"add_sub_plain"'))
    write_model(root, "scale", 1, "model.plan", plans["scale2"], f'name: "scale" {CACHED}')
    write_model(root, "scale_plain", 1, "model.plan", plans["scale2"])
    (root / "pipeline" / "1").mkdir(parents=True)
    (root / "pipeline" / "config.pbtxt").write_text(PIPELINE)
    return root


def serving(repository: Path, cache_bytes: int) -> Any:
    """REST and gRPC over one data plane with a response cache, every model loaded."""
    return running_server(repository, load=MODELS,
                          settings_extra={"response_cache_bytes": cache_bytes})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory,
           plans: dict[str, bytes]) -> Iterator[RunningServer]:
    repository = write_repository(tmp_path_factory.mktemp("cache") / "models", plans)
    with serving(repository, 1 << 20) as running:
        yield running


@pytest.fixture
def rest(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url, timeout=30) as client:
        yield client


def inference_stats(client: httpx.Client, model: str) -> dict[str, Any]:
    (stats,) = client.get(f"/v2/models/{model}/stats").json()["model_stats"]
    return stats


def counts(stats: dict[str, Any]) -> dict[str, int]:
    inference = stats["inference_stats"]
    return {"success": inference["success"]["count"], "hit": inference["cache_hit"]["count"],
            "miss": inference["cache_miss"]["count"], "executions": stats["execution_count"],
            "inferences": stats["inference_count"]}


def add_sub_body(a: np.ndarray, outputs: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": [json_input("INPUT0", a), json_input("INPUT1", a + 1)]}
    if outputs is not None:
        body["outputs"] = [{"name": name} for name in outputs]
    return body


def test_a_hit_answers_without_running_the_model(rest: httpx.Client,
                                                 server: RunningServer) -> None:
    a = np.arange(32, dtype=np.float32).reshape(2, 16) / 7
    first = rest.post("/v2/models/add_sub/infer", json=add_sub_body(a)).json()
    again = rest.post("/v2/models/add_sub/infer", json=add_sub_body(a)).json()
    assert again["outputs"] == first["outputs"]
    np.testing.assert_array_equal(np.reshape(again["outputs"][0]["data"], (2, 16)), a + (a + 1))
    stats = inference_stats(rest, "add_sub")
    assert counts(stats) == {"success": 2, "hit": 1, "miss": 1, "executions": 1,
                             "inferences": 2}
    assert stats["inference_stats"]["compute_infer"]["count"] == 1  # hits compute nothing
    assert stats["inference_stats"]["queue"]["count"] == 2  # ... and count as queued (Triton)
    assert stats["inference_stats"]["cache_hit"]["ns"] > 0

    # The cached arrays are encoded for each request: binary this time.
    body, headers = binary_request({"INPUT0": ("FP32", a), "INPUT1": ("FP32", a + 1)},
                                   parameters={"binary_data_output": True})
    r = rest.post("/v2/models/add_sub/infer", content=body, headers=headers)
    outputs = split_binary_response(r)
    np.testing.assert_array_equal(outputs["OUTPUT0"], a + (a + 1))
    np.testing.assert_array_equal(outputs["OUTPUT1"], a - (a + 1))

    # ... and over gRPC, raw bytes: the same key.
    with grpc.insecure_channel(server.grpc_url) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        tensor = pb.ModelInferRequest.InferInputTensor
        reply = stub.ModelInfer(pb.ModelInferRequest(
            model_name="add_sub",
            inputs=[tensor(name="INPUT0", datatype="FP32", shape=[2, 16]),
                    tensor(name="INPUT1", datatype="FP32", shape=[2, 16])],
            raw_input_contents=[a.tobytes(), (a + 1).tobytes()]))
        np.testing.assert_array_equal(
            np.frombuffer(reply.raw_output_contents[0], np.float32).reshape(2, 16), a + (a + 1))
        grpc_stats = stub.ModelStatistics(pb.ModelStatisticsRequest(name="add_sub"))
    inference = grpc_stats.model_stats[0].inference_stats
    assert (inference.cache_hit.count, inference.cache_miss.count) == (3, 1)
    assert grpc_stats.model_stats[0].execution_count == 1

    text = rest.get("/metrics").text
    assert 'nv_cache_num_hits_per_model{model="add_sub",version="1"} 3.0' in text
    assert 'nv_cache_num_misses_per_model{model="add_sub",version="1"} 1.0' in text
    assert "# TYPE nv_cache_hit_duration_per_model counter" in text


def test_other_inputs_or_outputs_miss(rest: httpx.Client) -> None:
    a = np.full((1, 16), 0.25, np.float32)
    before = counts(inference_stats(rest, "add_sub"))
    for body in (add_sub_body(a), add_sub_body(a + 1), add_sub_body(a, ["OUTPUT1"]),
                 add_sub_body(a, ["OUTPUT1", "OUTPUT0"]), add_sub_body(np.tile(a, (2, 1)))):
        r = rest.post("/v2/models/add_sub/infer", json=body)
        assert r.status_code == 200, r.text
    after = counts(inference_stats(rest, "add_sub"))
    assert after["miss"] - before["miss"] == 5 and after["hit"] == before["hit"]
    r = rest.post("/v2/models/add_sub/infer", json=add_sub_body(a, ["OUTPUT1"]))
    assert [o["name"] for o in r.json()["outputs"]] == ["OUTPUT1"]
    assert counts(inference_stats(rest, "add_sub"))["hit"] == before["hit"] + 1
    # A failed request neither hits nor misses.
    r = rest.post("/v2/models/add_sub/infer", json={"inputs": [json_input("INPUT0", a)]})
    assert r.status_code == 400
    final = counts(inference_stats(rest, "add_sub"))
    assert (final["hit"], final["miss"]) == (before["hit"] + 1, before["miss"] + 5)


def test_models_that_do_not_enable_it_are_not_cached(rest: httpx.Client) -> None:
    a = np.ones((1, 16), np.float32)
    for _ in range(2):
        assert rest.post("/v2/models/add_sub_plain/infer", json=add_sub_body(a)).status_code == 200
    assert counts(inference_stats(rest, "add_sub_plain")) == {
        "success": 2, "hit": 0, "miss": 0, "executions": 2, "inferences": 2}


def scaled(client: httpx.Client, model: str, x: np.ndarray, input_name: str = "INPUT0"
           ) -> np.ndarray:
    r = client.post(f"/v2/models/{model}/infer", json={"inputs": [json_input(input_name, x)]})
    assert r.status_code == 200, r.text
    return np.reshape(r.json()["outputs"][0]["data"], x.shape)


def test_reload_and_unload_invalidate(rest: httpx.Client, server: RunningServer,
                                      plans: dict[str, bytes]) -> None:
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    plan = server.plane.settings.model_repository / "scale" / "1" / "model.plan"
    try:
        np.testing.assert_array_equal(scaled(rest, "scale", x), 2 * x)
        np.testing.assert_array_equal(scaled(rest, "scale", x), 2 * x)
        assert counts(inference_stats(rest, "scale"))["hit"] == 1
        plan.write_bytes(plans["scale3"])  # same version, other weights
        server.call(server.plane.repository.load("scale"))
        np.testing.assert_array_equal(scaled(rest, "scale", x), 3 * x)  # not the cached 2x
        assert counts(inference_stats(rest, "scale"))["miss"] == 1
        cache = server.plane.response_cache
        assert cache is not None
        held = len(cache)
        server.call(server.plane.repository.unload("scale"))
        assert len(cache) == held - 1  # its one entry is gone
    finally:
        plan.write_bytes(plans["scale2"])
        server.call(server.plane.repository.load("scale"))


def test_ensembles_cache_whole_responses(rest: httpx.Client, server: RunningServer,
                                         plans: dict[str, bytes]) -> None:
    x = np.full((1, 4), 5, np.float32)
    plan = server.plane.settings.model_repository / "scale_plain" / "1" / "model.plan"
    steps_before = counts(inference_stats(rest, "scale_plain"))["success"]
    try:
        for _ in range(2):
            np.testing.assert_array_equal(scaled(rest, "pipeline", x, "X"), 2 * x)
        assert counts(inference_stats(rest, "pipeline"))["hit"] == 1
        assert counts(inference_stats(rest, "scale_plain"))["success"] == steps_before + 1
        # The step's model reloaded with other weights: the ensemble's entries are stale.
        plan.write_bytes(plans["scale3"])
        server.call(server.plane.repository.load("scale_plain"))
        np.testing.assert_array_equal(scaled(rest, "pipeline", x, "X"), 3 * x)
        assert counts(inference_stats(rest, "pipeline"))["miss"] == 2
    finally:
        plan.write_bytes(plans["scale2"])
        server.call(server.plane.repository.load("scale_plain"))


def test_concurrent_clients_get_their_own_answers(server: RunningServer) -> None:
    values = [np.full((1, 16), v, np.float32) for v in (0.5, 1.5, 2.5)]

    def client(seed: int) -> int:
        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=server.http_url, timeout=60) as http:
            for _ in range(12):
                a = values[rng.integers(len(values))]
                r = http.post("/v2/models/add_sub/infer", json=add_sub_body(a, ["OUTPUT0"]))
                assert r.status_code == 200, r.text
                np.testing.assert_array_equal(r.json()["outputs"][0]["data"],
                                              (a + (a + 1)).ravel())
        return 12

    with httpx.Client(base_url=server.http_url) as http:
        start = counts(inference_stats(http, "add_sub"))
        with ThreadPoolExecutor(8) as pool:
            sent = sum(pool.map(client, range(8)))
        end = counts(inference_stats(http, "add_sub"))
    done = {k: end[k] - start[k] for k in end}
    assert done["success"] == sent == done["hit"] + done["miss"]
    assert done["executions"] == done["miss"] and done["miss"] >= len(values)


def outputs(*arrays: np.ndarray) -> list[InferOutput]:
    return [InferOutput(f"OUTPUT{i}", "FP32", a) for i, a in enumerate(arrays)]


def test_least_recently_used_entries_go_first() -> None:
    cache = ResponseCache(300)  # two entries of 128 bytes fit, three do not
    owner = cache.new_owner()
    entry = np.zeros((2, 16), np.float32)  # 128 bytes

    def key(n: int) -> bytes:
        return request_key(owner, [InferInput("x", "INT32", (1,), np.array([n], np.int32))],
                           ["OUTPUT0"])

    assert cache.put(key(1), owner, outputs(entry)) and cache.put(key(2), owner, outputs(entry))
    assert cache.get(key(1)) is not None  # 1 is now the most recently used
    assert cache.put(key(3), owner, outputs(entry))
    assert cache.get(key(2)) is None and cache.get(key(1)) is not None
    assert cache.get(key(3)) is not None
    assert (len(cache), cache.size, cache.evictions) == (2, 256, 1)
    assert not cache.put(key(4), owner, outputs(np.zeros(100, np.float32)))  # > capacity
    cached = cache.get(key(1))
    assert cached is not None and not cached[0].data.flags.writeable  # nobody alters it
    cache.drop(owner)
    assert len(cache) == 0 and cache.size == 0
    assert not cache.put(key(1), owner, outputs(entry))  # a closed version stores nothing


def test_keys_cover_every_part_of_the_request() -> None:
    x = np.arange(4, dtype=np.float32)
    base = [InferInput("a", "FP32", (4,), x), InferInput("b", "FP32", (4,), x)]
    key = request_key(1, base, ["y"])
    assert request_key(1, base[::-1], ["y"]) == key  # input order does not matter
    for other in ([InferInput("a", "FP32", (2, 2), x.reshape(2, 2)), base[1]],
                  [InferInput("a", "INT32", (4,), x.view(np.int32)), base[1]],
                  [InferInput("c", "FP32", (4,), x), base[1]],
                  [InferInput("a", "FP32", (4,), x + 1), base[1]]):
        assert request_key(1, other, ["y"]) != key
    assert request_key(2, base, ["y"]) != key and request_key(1, base, ["y", "z"]) != key
    words = np.array([b"ab", b"c"], dtype=object)
    split = np.array([b"a", b"bc"], dtype=object)
    assert request_key(1, [InferInput("s", "BYTES", (2,), words)], []) != request_key(
        1, [InferInput("s", "BYTES", (2,), split)], [])


def test_without_a_server_cache_nothing_is_cached(tmp_path: Path, plans: dict[str, bytes],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    repo = tmp_path / "models"
    write_model(repo, "add_sub", 1, "model.plan", plans["add_sub"], ADD_SUB_CONFIG % CACHED)
    a = np.ones((1, 16), np.float32)
    request = [InferInput("INPUT0", "FP32", a.shape, a), InferInput("INPUT1", "FP32", a.shape, a)]

    async def run() -> dict[str, Any]:
        plane = DataPlane(ServerSettings(model_repository=repo, device="cpu",
                                         plan_cache=tmp_path / "cache"))
        await plane.start()
        try:
            for _ in range(2):
                await plane.infer("add_sub", None, InferRequest(list(request)))
            (stats,) = plane.statistics("add_sub")["model_stats"]
            return stats
        finally:
            await plane.stop()

    with caplog.at_level(logging.WARNING, logger="server.repository"):
        stats = asyncio.run(run())
    assert counts(stats) == {"success": 2, "hit": 0, "miss": 0, "executions": 2,
                             "inferences": 2}
    assert "enables response_cache, but the server has no response cache" in caplog.text


@pytest.mark.parametrize("given, size", [([], 0), (["--cache-config", "local,size=1048576"],
                                                    1048576),
                                          (["--cache-config=local,size=4096"], 4096)])
def test_cache_config_option(given: list[str], size: int) -> None:
    args = parse_args(["--model-repository", "m", *given])
    assert args.response_cache_bytes == size


@pytest.mark.parametrize("value, words", [("redis,host=localhost", "unknown cache 'redis'"),
                                          ("local,size=lots", "positive number of bytes"),
                                          ("local,size=0", "positive number of bytes"),
                                          ("local,capacity=5", "local,size=<bytes>"),
                                          ("local", "local,size=<bytes>")])
def test_cache_config_option_refuses(value: str, words: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--model-repository", "m", "--cache-config", value])
    assert words in capsys.readouterr().err


def test_rest_config_reports_the_cache(rest: httpx.Client) -> None:
    assert rest.get("/v2/models/add_sub/config").json()["response_cache"] == {"enable": True}
    assert "response_cache" not in rest.get("/v2/models/add_sub_plain/config").json()
    assert rest.get("/v2/models/pipeline/config").json()["response_cache"]["enable"] is True
