"""Ensembles (``platform: "ensemble"``): steps run on other models, over REST and gRPC, with
their load-time checks, a step model unloaded under them, and statistics for both.

The models: ``double`` (x * 2) and ``triple`` (x * 3) on FP32 [-1, 4], and ``add_sub``
(OUTPUT0 = a + b, OUTPUT1 = a - b, dynamically batched) on FP32 [-1, 4]."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from server.core.config import config_from_json
from server.core.model import ModelVersion
from server.grpc._generated import grpc_service_pb2 as pb
from server.grpc._generated import grpc_service_pb2_grpc as pb_grpc
from tests.grpc.serving import RunningServer, running_server
from tests.server.conftest import json_input, write_model
from tests.server.conftest import running_server as running_rest_server
from tests.server.plans import add_sub_plan
from tests.server.test_rest import binary_request, split_binary_response

ADD_SUB = """
name: "add_sub" platform: "tensorrt_plan" max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] },
        { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] },
         { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 4 ] } ]
dynamic_batching { max_queue_delay_microseconds: 1000 }
"""


def ensemble(name: str, inputs: dict[str, str], outputs: dict[str, str],
             steps: list[tuple[str, dict[str, str], dict[str, str]]], max_batch_size: int = 8,
             dims: str = "[ 4 ]") -> str:
    """A config.pbtxt: ``inputs`` / ``outputs`` map tensor names to types (FP32, INT32...);
    each step is (model, input_map, output_map)."""
    def tensors(declared: dict[str, str]) -> str:
        return ", ".join(f'{{ name: "{n}" data_type: TYPE_{t} dims: {dims} }}'
                         for n, t in declared.items())

    def pairs(field: str, mapping: dict[str, str]) -> str:
        return " ".join(f'{field} {{ key: "{k}" value: "{v}" }}' for k, v in mapping.items())

    written = ", ".join(f'{{ model_name: "{model}" model_version: -1 {pairs("input_map", ins)} '
                        f'{pairs("output_map", outs)} }}' for model, ins, outs in steps)
    return (f'name: "{name}" platform: "ensemble" max_batch_size: {max_batch_size}\n'
            f"input [ {tensors(inputs)} ]\noutput [ {tensors(outputs)} ]\n"
            f"ensemble_scheduling {{ step [ {written} ] }}\n")


def write_ensemble(repo: Path, name: str, config: str) -> None:
    (repo / name / "1").mkdir(parents=True, exist_ok=True)  # empty, as in Triton
    (repo / name / "config.pbtxt").write_text(config)


FP32_X = {"X": "FP32"}
# SUM = 2x + y, DIFF = 2x - y
PIPELINE = ensemble("pipeline", {"X": "FP32", "Y": "FP32"}, {"SUM": "FP32", "DIFF": "FP32"}, [
    ("double", {"INPUT0": "X"}, {"OUTPUT0": "doubled"}),
    ("add_sub", {"INPUT0": "doubled", "INPUT1": "Y"}, {"OUTPUT0": "SUM", "OUTPUT1": "DIFF"})])
# Fan-out and fan-in, steps written out of order: SUM = 5x, DIFF = -x, DOUBLED = 2x.
DIAMOND = ensemble("diamond", FP32_X, {"SUM": "FP32", "DIFF": "FP32", "DOUBLED": "FP32"}, [
    ("add_sub", {"INPUT0": "DOUBLED", "INPUT1": "tripled"}, {"OUTPUT0": "SUM",
                                                             "OUTPUT1": "DIFF"}),
    ("double", {"INPUT0": "X"}, {"OUTPUT0": "DOUBLED"}),
    ("triple", {"INPUT0": "X"}, {"OUTPUT0": "tripled"})])
# Its input takes any width; its step does not.
LOOSE = ensemble("loose", FP32_X, {"Y": "FP32"}, [("double", {"INPUT0": "X"}, {"OUTPUT0": "Y"})],
                 dims="[ -1 ]")
# On a model of its own, which the unload test unloads.
ALONE = ensemble("alone", FP32_X, {"Y": "FP32"}, [("double_b", {"INPUT0": "X"},
                                                   {"OUTPUT0": "Y"})])


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory, plans: dict[str, bytes]) -> Path:
    repo = tmp_path_factory.mktemp("ensembles") / "models"
    write_model(repo, "double", 1, "model.plan", plans["scale2"])
    write_model(repo, "double_b", 1, "model.plan", plans["scale2"])
    write_model(repo, "triple", 1, "model.plan", plans["scale3"])
    write_model(repo, "add_sub", 1, "model.plan", add_sub_plan(width=4), ADD_SUB)
    write_model(repo, "broken", 1, "model.plan", b"not a plan")
    for name, config in (("pipeline", PIPELINE), ("diamond", DIAMOND), ("loose", LOOSE),
                         ("alone", ALONE)):
        write_ensemble(repo, name, config)
    return repo


@pytest.fixture(scope="module")
def server(repository: Path) -> Iterator[RunningServer]:
    """Explicit model control; loading the ensembles loads the models of their steps."""
    with running_server(repository, load=("pipeline", "diamond", "loose")) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url, timeout=30) as c:
        yield c


@pytest.fixture
def stub(server: RunningServer) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(server.grpc_url) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def rest_infer(client: httpx.Client, model: str, inputs: dict[str, np.ndarray],
               outputs: list[str] | None = None) -> dict[str, np.ndarray]:
    body: dict[str, Any] = {"inputs": [json_input(n, a) for n, a in inputs.items()]}
    if outputs is not None:
        body["outputs"] = [{"name": n} for n in outputs]
    r = client.post(f"/v2/models/{model}/infer", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["model_name"] == model
    return {o["name"]: np.array(o["data"], np.float32).reshape(o["shape"])
            for o in r.json()["outputs"]}


def grpc_request(model: str, inputs: dict[str, np.ndarray],
                 outputs: tuple[str, ...] = ()) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor
    return pb.ModelInferRequest(
        model_name=model, raw_input_contents=[a.tobytes() for a in inputs.values()],
        inputs=[tensor(name=n, datatype="FP32", shape=list(a.shape)) for n, a in inputs.items()],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=n) for n in outputs])


def grpc_outputs(reply: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    return {o.name: np.frombuffer(raw, np.float32).reshape(list(o.shape))
            for o, raw in zip(reply.outputs, reply.raw_output_contents)}


def stats_of(client: httpx.Client, model: str) -> dict[str, Any]:
    stats: dict[str, Any] = client.get(f"/v2/models/{model}/stats").json()["model_stats"][0]
    return stats


RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 4)).astype(np.float32)
Y = RNG.standard_normal((3, 4)).astype(np.float32)


# -- inference ----------------------------------------------------------------------------------
def test_two_step_ensemble_over_rest(client: httpx.Client) -> None:
    got = rest_infer(client, "pipeline", {"X": X, "Y": Y})
    np.testing.assert_allclose(got["SUM"], 2 * X + Y, rtol=1e-6)
    np.testing.assert_allclose(got["DIFF"], 2 * X - Y, rtol=1e-6)
    # Binary tensors in and out, as for any model.
    body, headers = binary_request({"X": ("FP32", X), "Y": ("FP32", Y)},
                                   parameters={"binary_data_output": True})
    r = client.post("/v2/models/pipeline/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    got = split_binary_response(r)
    np.testing.assert_allclose(got["SUM"], 2 * X + Y, rtol=1e-6)
    np.testing.assert_allclose(got["DIFF"], 2 * X - Y, rtol=1e-6)


def test_two_step_ensemble_over_grpc(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    reply = stub.ModelInfer(grpc_request("pipeline", {"X": X, "Y": Y}))
    assert (reply.model_name, reply.model_version) == ("pipeline", "1")
    got = grpc_outputs(reply)
    np.testing.assert_allclose(got["SUM"], 2 * X + Y, rtol=1e-6)
    np.testing.assert_allclose(got["DIFF"], 2 * X - Y, rtol=1e-6)


class WaitingContext:
    """An execution context that runs only once ``event`` is set (or sets it)."""

    def __init__(self, inner: Any, event: threading.Event, sets: bool) -> None:
        self.inner, self.event, self.sets = inner, event, sets

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.sets:
            self.event.set()
        else:
            assert self.event.wait(20), "the other branch did not run meanwhile"
        return self.inner.infer(feeds)  # type: ignore[no-any-return]


def test_fan_out_and_fan_in_run_branches_concurrently(server: RunningServer,
                                                      client: httpx.Client) -> None:
    # 'double' waits until 'triple' has run: the ensemble finishes only if both branches
    # are under way at once.
    models = {name: server.plane.repository.get(name) for name in ("double", "triple")}
    contexts = {name: model.pools[0].contexts for name, model in models.items()
                if isinstance(model, ModelVersion)}
    inner = {name: queue.get() for name, queue in contexts.items()}
    triple_ran = threading.Event()
    for name in contexts:  # stand-ins for execution contexts
        contexts[name].put(WaitingContext(inner[name], triple_ran,  # type: ignore[arg-type]
                                          sets=name == "triple"))
    try:
        got = rest_infer(client, "diamond", {"X": X})
    finally:
        for name, queue in contexts.items():
            queue.get()
            queue.put(inner[name])
    np.testing.assert_allclose(got["SUM"], 5 * X, rtol=1e-6)
    np.testing.assert_allclose(got["DIFF"], -X, rtol=1e-6)
    np.testing.assert_allclose(got["DOUBLED"], 2 * X, rtol=1e-6)


def test_only_the_requested_output_and_the_steps_it_needs(
        client: httpx.Client, stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    before = {m: stats_of(client, m)["inference_stats"]["success"]["count"]
              for m in ("double", "triple", "add_sub")}
    got = rest_infer(client, "diamond", {"X": X}, outputs=["DOUBLED"])
    assert list(got) == ["DOUBLED"]
    np.testing.assert_allclose(got["DOUBLED"], 2 * X, rtol=1e-6)
    got = grpc_outputs(stub.ModelInfer(grpc_request("diamond", {"X": X}, ("DIFF",))))
    assert list(got) == ["DIFF"]
    np.testing.assert_allclose(got["DIFF"], -X, rtol=1e-6)
    after = {m: stats_of(client, m)["inference_stats"]["success"]["count"] for m in before}
    # DOUBLED needs 'double' alone; DIFF needs all three.
    assert {m: after[m] - before[m] for m in before} == {"double": 2, "triple": 1,
                                                         "add_sub": 1}
    # Binary for one output, JSON for the other.
    body, headers = binary_request({"X": ("FP32", X)}, outputs=[
        {"name": "SUM", "parameters": {"binary_data": True}}, {"name": "DOUBLED"}])
    r = client.post("/v2/models/diamond/infer", content=body, headers=headers)
    length = int(r.headers["Inference-Header-Content-Length"])
    header = json.loads(r.content[:length])
    assert [o["name"] for o in header["outputs"]] == ["SUM", "DOUBLED"]
    np.testing.assert_allclose(np.float32(header["outputs"][1]["data"]), (2 * X).ravel(),
                               rtol=1e-6)
    np.testing.assert_allclose(np.frombuffer(r.content[length:], np.float32), (5 * X).ravel(),
                               rtol=1e-6)


def test_a_step_error_is_the_ensembles_naming_the_step(
        client: httpx.Client, stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    wide = np.ones((1, 5), np.float32)  # the ensemble takes any width, 'double' takes 4
    r = client.post("/v2/models/loose/infer", json={"inputs": [json_input("X", wide)]})
    assert r.status_code == 400
    assert r.json()["error"].startswith("ensemble 'loose' step 0 (model 'double') failed: "
                                        "model 'double' input 'INPUT0': shape [1, 5]")
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(grpc_request("loose", {"X": wide}))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "step 0 (model 'double') failed" in str(info.value.details())
    # The ensemble's own checks come first, naming the ensemble.
    r = client.post("/v2/models/pipeline/infer", json={"inputs": [json_input("X", X)]})
    assert r.status_code == 400 and r.json()["error"] == \
        "model 'pipeline': inputs ['Y'] are missing"
    r = client.post("/v2/models/pipeline/infer", json={
        "inputs": [json_input("X", X), json_input("Y", Y)], "outputs": [{"name": "doubled"}]})
    assert r.status_code == 400 and "has no outputs ['doubled']" in r.json()["error"]


def test_statistics_count_the_ensemble_and_each_step(client: httpx.Client) -> None:
    names = ("pipeline", "double", "add_sub")
    before = {m: stats_of(client, m) for m in names}
    for _ in range(2):
        rest_infer(client, "pipeline", {"X": X, "Y": Y})
    client.post("/v2/models/pipeline/infer", json={"inputs": [json_input("X", X)]})  # fails
    after = {m: stats_of(client, m) for m in names}

    def grew(model: str, *path: str) -> int:
        old: Any = before[model]
        new: Any = after[model]
        for key in path:
            old, new = old[key], new[key]
        return int(new) - int(old)

    for model in names:  # Triton counts both the ensemble and its steps
        assert grew(model, "inference_stats", "success", "count") == 2, model
        assert grew(model, "inference_count") == 2 * len(X), model
    assert grew("pipeline", "inference_stats", "fail", "count") == 1
    assert grew("pipeline", "execution_count") == 2
    assert grew("pipeline", "inference_stats", "compute_infer", "ns") > 0
    assert after["pipeline"]["device_stats"] == []
    metrics = client.get("/metrics").text
    assert 'nv_inference_count{model="pipeline",version="1"}' in metrics
    assert 'nv_inference_request_success{model="pipeline",version="1"}' in metrics


# -- metadata, configuration, index ---------------------------------------------------------
def test_metadata_config_and_index_report_ensembles(
        client: httpx.Client, stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    meta = client.get("/v2/models/pipeline").json()
    assert meta["platform"] == "ensemble" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]},
                              {"name": "Y", "datatype": "FP32", "shape": [-1, 4]}]
    config = client.get("/v2/models/pipeline/config").json()
    assert config["platform"] == "ensemble" and "backend" not in config
    assert config["ensemble_scheduling"]["step"][1] == {
        "model_name": "add_sub", "model_version": -1,
        "input_map": {"INPUT0": "doubled", "INPUT1": "Y"},
        "output_map": {"OUTPUT0": "SUM", "OUTPUT1": "DIFF"}}
    assert config_from_json(config, "pipeline").to_json() == config  # reads back
    reply = stub.ModelConfig(pb.ModelConfigRequest(name="pipeline"))
    assert reply.config.platform == "ensemble"
    step = reply.config.ensemble_scheduling.step[0]
    assert (step.model_name, step.model_version, dict(step.input_map),
            dict(step.output_map)) == ("double", -1, {"INPUT0": "X"}, {"OUTPUT0": "doubled"})
    assert stub.ModelMetadata(pb.ModelMetadataRequest(name="pipeline")).platform == "ensemble"
    index = {m["name"]: m for m in client.post("/v2/repository/index").json()}
    assert index["pipeline"]["state"] == "READY" and index["double"]["state"] == "READY"


# -- loading ------------------------------------------------------------------------------------
TOO_WIDE = ensemble("e", FP32_X, {"Y": "FP32"}, [("double", {"INPUT0": "X"}, {"OUTPUT0": "Y"})],
                    dims="[ 5 ]")


@pytest.mark.parametrize("config, message", [
    (ensemble("e", FP32_X, {"Y": "FP32"}, [("nope", {"INPUT0": "X"}, {"OUTPUT0": "Y"})]),
     "ensemble 'e' step 0 (model 'nope'): unknown model 'nope'"),
    (ensemble("e", FP32_X, {"Y": "FP32"}, [
        ("double", {"INPUT0": "X"}, {"OUTPUT0": "t"}),
        ("triple", {"INPUT0": "u"}, {"OUTPUT0": "Y"})]),
     "step 1 (model 'triple') input 'INPUT0' is mapped from ensemble tensor 'u', which no "
     "ensemble input or step output produces"),
    (ensemble("e", FP32_X, {"Y": "FP32", "Z": "FP32"}, [
        ("double", {"INPUT0": "X"}, {"OUTPUT0": "Y"})]),
     "ensemble output 'Z' is produced by no step"),
    (ensemble("e", FP32_X, {"Y": "FP32"}, [
        ("add_sub", {"INPUT0": "X", "INPUT1": "b"}, {"OUTPUT0": "Y", "OUTPUT1": "a"}),
        ("double", {"INPUT0": "a"}, {"OUTPUT0": "b"})]),
     "model 'e' configuration: the steps form a cycle: step 0 (model 'add_sub') -['a']-> "
     "step 1 (model 'double') -['b']-> step 0 (model 'add_sub')"),
    (ensemble("e", {"X": "INT32"}, {"Y": "FP32"}, [
        ("double", {"INPUT0": "X"}, {"OUTPUT0": "Y"})]),
     "ensemble 'e' step 0 (model 'double'): ensemble tensor 'X': data type INT32 (ensemble "
     "'e' input 'X') differs from FP32 (model 'double' input 'INPUT0')"),
    (ensemble("e", FP32_X, {"Y": "INT32"}, [
        ("double", {"INPUT0": "X"}, {"OUTPUT0": "Y"})]),
     "ensemble tensor 'Y': data type INT32 (ensemble 'e' output 'Y') differs from FP32 "
     "(model 'double' output 'OUTPUT0')"),
    (TOO_WIDE,
     "ensemble 'e' step 0 (model 'double'): ensemble tensor 'X': shape [-1, 5] (ensemble 'e' "
     "input 'X') does not match [-1, 4] (model 'double' input 'INPUT0')"),
    (ensemble("e", FP32_X, {"Y": "FP32"}, [("double", {"INPUT0": "X"}, {"OUTPUT0": "Y"})],
              max_batch_size=16),
     "ensemble 'e' step 0 (model 'double'): the ensemble's max_batch_size 16 exceeds the "
     "model's (8)"),
    (ensemble("e", FP32_X, {"Y": "FP32"}, [("add_sub", {"INPUT0": "X"}, {"OUTPUT0": "Y"})]),
     "model 'add_sub' inputs ['INPUT1'] are mapped from no ensemble tensor"),
    (ensemble("e", FP32_X, {"Y": "FP32"}, [("double", {"IN": "X"}, {"OUTPUT0": "Y"})]),
     "maps ensemble tensor 'X' to 'IN', which is not an input of model 'double'"),
    (ensemble("e", FP32_X, {"Y": "FP32"}, [("broken", {"INPUT0": "X"}, {"OUTPUT0": "Y"})]),
     "ensemble 'e' step 0 (model 'broken'): model 'broken' is not ready"),
], ids=["unknown-model", "unproduced-tensor", "unproduced-output", "cycle", "input-type",
        "output-type", "shape", "max-batch-size", "unmapped-input", "unknown-input",
        "step-fails-to-load"])
def test_load_refuses_a_bad_ensemble(server: RunningServer, client: httpx.Client,
                                     repository: Path, config: str, message: str) -> None:
    write_ensemble(repository, "e", config)
    r = client.post("/v2/repository/models/e/load")
    assert r.status_code == 400 and message in r.json()["error"], r.text
    index = client.post("/v2/repository/index").json()
    assert any(m["name"] == "e" and m["state"] == "UNAVAILABLE" and message in m["reason"]
               for m in index), index
    assert client.get("/v2/models/e/ready").status_code == 503


def test_ensembles_that_step_into_each_other_are_refused(client: httpx.Client,
                                                         repository: Path) -> None:
    for name, other in (("ping", "pong"), ("pong", "ping")):
        write_ensemble(repository, name, ensemble(name, FP32_X, {"Y": "FP32"}, [
            (other, {"X": "X"}, {"Y": "Y"})]))
    r = client.post("/v2/repository/models/ping/load")
    assert r.status_code == 400
    assert "the ensembles form a cycle: ping -> pong -> ping" in r.json()["error"]


def test_loading_an_ensemble_loads_its_steps_and_unloading_one_stops_it(
        client: httpx.Client, stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    assert client.get("/v2/models/double_b/ready").status_code == 503
    assert client.post("/v2/repository/models/alone/load").status_code == 200
    assert client.get("/v2/models/double_b/ready").status_code == 200
    np.testing.assert_allclose(rest_infer(client, "alone", {"X": X})["Y"], 2 * X, rtol=1e-6)

    assert client.post("/v2/repository/models/double_b/unload").status_code == 200
    reason = ("ensemble 'alone' step 0 (model 'double_b'): model 'double_b' is not ready "
              "(version 1: UNAVAILABLE unloaded)")
    assert client.get("/v2/models/alone/ready").status_code == 503
    r = client.post("/v2/models/alone/infer", json={"inputs": [json_input("X", X)]})
    assert r.status_code == 503 and r.json()["error"] == reason
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(grpc_request("alone", {"X": X}))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE and info.value.details() == reason
    index = {m["name"]: m for m in client.post("/v2/repository/index").json()}
    assert index["alone"] == {"name": "alone", "version": "1", "state": "UNAVAILABLE",
                              "reason": reason}
    assert "alone" not in {m["name"] for m in
                           client.post("/v2/repository/index", json={"ready": True}).json()}

    assert client.post("/v2/repository/models/double_b/load").status_code == 200
    np.testing.assert_allclose(rest_infer(client, "alone", {"X": X})["Y"], 2 * X, rtol=1e-6)


def test_an_ensemble_of_an_ensemble(client: httpx.Client, repository: Path) -> None:
    write_ensemble(repository, "nested", ensemble(
        "nested", {"A": "FP32", "B": "FP32"}, {"OUT": "FP32"},
        [("pipeline", {"X": "A", "Y": "B"}, {"DIFF": "OUT"})]))
    assert client.post("/v2/repository/models/nested/load").status_code == 200
    np.testing.assert_allclose(rest_infer(client, "nested", {"A": X, "B": Y})["OUT"],
                               2 * X - Y, rtol=1e-6)


def test_an_ensemble_takes_no_model_files(client: httpx.Client,
                                          plans: dict[str, bytes]) -> None:
    r = client.post("/v2/repository/models/pipeline/upload?filename=model.plan",
                    content=plans["scale2"])
    assert r.status_code == 400 and "is an ensemble: it takes no model files" in r.json()["error"]


def test_startup_loads_an_ensemble_before_its_steps(tmp_path: Path,
                                                    plans: dict[str, bytes]) -> None:
    """Mode none loads models in name order: 'a_first' comes before its step 'double'."""
    repo = tmp_path / "models"
    write_model(repo, "double", 1, "model.plan", plans["scale2"])
    (repo / "a_first").mkdir(parents=True)  # no version directory at all: version 1
    (repo / "a_first" / "config.pbtxt").write_text(ALONE.replace('"alone"', '"a_first"')
                                                   .replace("double_b", "double"))
    with running_rest_server(model_repository=repo, plan_cache=tmp_path / "c") as (url, _):
        with httpx.Client(base_url=url) as client:
            np.testing.assert_allclose(rest_infer(client, "a_first", {"X": X})["Y"], 2 * X,
                                       rtol=1e-6)
