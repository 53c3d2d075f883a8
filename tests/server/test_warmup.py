"""``model_warmup``: samples run on every execution context before a model reports ready, from
zero, random or file data; what the configuration check refuses; and a failing warmup that
fails its model alone.

The models: ``add_sub`` (FP32 [-1, 16], two CPU instances) and ``wide``, an identity whose
width may vary from 1 to 8 (FP32 [-1, -1]), whose warmup fails when a sample is wider."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import engine as trt
from server.core.codec import InferInput, InferRequest
from server.core.config import config_from_pbtxt
from server.core.dataplane import DataPlane, ServerSettings
from server.core.errors import InvalidArgument
from server.core.warmup import warmup_feeds
from server.grpc.converters import message_to_json, model_config_to_proto
from tests.server.conftest import ADD_SUB_CONFIG, write_model


def warmup_input(name: str, source: str, dims: str = "[ 16 ]", data_type: str = "TYPE_FP32"
                 ) -> str:
    return (f'inputs {{ key: "{name}" value: {{ data_type: {data_type} dims: {dims} '
            f'{source} }} }}')


def sample(name: str, *inputs: str, batch_size: int = 1, count: int = 0) -> str:
    return (f'{{ name: "{name}" batch_size: {batch_size} count: {count} '
            f'{" ".join(inputs)} }}')


def add_sub_with(*samples: str) -> str:
    return ADD_SUB_CONFIG % f"model_warmup [ {', '.join(samples)} ]"


ZEROS = sample("zeros", warmup_input("INPUT0", "zero_data: true"),
               warmup_input("INPUT1", "zero_data: true"), batch_size=4, count=2)
RANDOM = sample("random", warmup_input("INPUT0", "random_data: true"),
                warmup_input("INPUT1", "random_data: true"))
FROM_FILE = sample("from file", warmup_input("INPUT0", 'input_data_file: "input0.bin"'),
                   warmup_input("INPUT1", 'input_data_file: "sub/input1.bin"'), batch_size=2)


def wide_plan() -> bytes:
    """OUTPUT0 = INPUT0, FP32 [-1, -1] with widths 1..8."""
    def define(network: trt.INetworkDefinition) -> None:
        x = network.add_input("INPUT0", trt.float32, (-1, -1))
        out = network.add_identity(x).get_output(0)
        assert out is not None
        out.name = "OUTPUT0"
        network.mark_output(out)

    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    network = builder.create_network(0)
    define(network)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    profile = builder.create_optimization_profile()
    profile.set_shape("INPUT0", (1, 1), (4, 4), (8, 8))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None
    return bytes(plan)


class ReadinessDuringWarmup(logging.Handler):
    """Notes, at each warmup iteration the model logs, which instance ran it and whether the
    model already reported ready."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.plane: DataPlane | None = None
        self.seen: list[tuple[str, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "is running warmup sample" in record.getMessage() and self.plane is not None:
            instance = str(record.args[2])  # type: ignore[index]
            self.seen.append((instance, self.plane.model_ready("add_sub")))


def serve(repo: Path, tmp_path: Path, scenario: Any, watcher: ReadinessDuringWarmup | None = None
          ) -> Any:
    """Start a data plane on ``repo`` (mode none: every model loads), run ``scenario(plane)``."""
    async def run() -> Any:
        plane = DataPlane(ServerSettings(model_repository=repo, device="cpu",
                                         plan_cache=tmp_path / "cache"))
        if watcher is not None:
            watcher.plane = plane
        await plane.start()
        try:
            return await scenario(plane)
        finally:
            await plane.stop()
    return asyncio.run(run())


def stats_of(plane: DataPlane, name: str) -> dict[str, Any]:
    (stats,) = plane.statistics(name)["model_stats"]
    return stats


def add_sub_request(a: np.ndarray) -> InferRequest:
    return InferRequest([InferInput("INPUT0", "FP32", a.shape, a),
                         InferInput("INPUT1", "FP32", a.shape, a)])


def test_warmup_runs_on_every_context_before_the_model_is_ready(
        tmp_path: Path, plans: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    repo = tmp_path / "models"
    write_model(repo, "add_sub", 1, "model.plan", plans["add_sub"], add_sub_with(ZEROS, RANDOM))
    watcher = ReadinessDuringWarmup()
    logger = logging.getLogger("server.model")
    logger.addHandler(watcher)

    async def scenario(plane: DataPlane) -> dict[str, Any]:
        before = stats_of(plane, "add_sub")
        await plane.infer("add_sub", None, add_sub_request(np.ones((1, 16), np.float32)))
        return before

    try:
        with caplog.at_level(logging.DEBUG, logger="server.model"):
            before = serve(repo, tmp_path, scenario, watcher)
    finally:
        logger.removeHandler(watcher)
    # Two instances, each: zeros twice (batch 4), random once (batch 1); none while ready.
    assert sorted(watcher.seen) == [("host #0", False)] * 3 + [("host #1", False)] * 3
    assert before["execution_count"] == 6 and before["inference_count"] == 2 * (2 * 4 + 1)
    assert before["inference_stats"]["success"]["count"] == 18  # Triton: one per batch item
    assert [d["execution_count"] for d in before["device_stats"]] == [6]
    assert {b["batch_size"]: b["compute_infer"]["count"] for b in before["batch_stats"]} == {
        1: 2, 4: 4}
    assert "warmup samples ['zeros', 'random'] ran on 2 instances" in caplog.text


def test_warmup_from_files(tmp_path: Path, plans: dict[str, bytes]) -> None:
    repo = tmp_path / "models"
    write_model(repo, "add_sub", 1, "model.plan", plans["add_sub"], add_sub_with(FROM_FILE))
    a = np.arange(16, dtype=np.float32)
    (repo / "add_sub" / "warmup" / "sub").mkdir(parents=True)
    (repo / "add_sub" / "warmup" / "input0.bin").write_bytes(a.astype("<f4").tobytes())
    (repo / "add_sub" / "warmup" / "sub" / "input1.bin").write_bytes((-a).astype("<f4").tobytes())
    config = config_from_pbtxt(add_sub_with(FROM_FILE), "add_sub")
    feeds = warmup_feeds(config, config.model_warmup[0], repo / "add_sub")
    np.testing.assert_array_equal(feeds["INPUT0"], [a, a])  # the item, batch_size times
    np.testing.assert_array_equal(feeds["INPUT1"], [-a, -a])

    async def scenario(plane: DataPlane) -> dict[str, Any]:
        return stats_of(plane, "add_sub")

    assert serve(repo, tmp_path, scenario)["execution_count"] == 2  # once per instance


def test_zero_and_random_data_take_the_declared_types() -> None:
    config = config_from_pbtxt(
        'name: "m" max_batch_size: 0\n'
        'input [ { name: "i" data_type: TYPE_INT32 dims: [ 3 ] },'
        '        { name: "b" data_type: TYPE_BOOL dims: [ 2, 2 ] },'
        '        { name: "s" data_type: TYPE_STRING dims: [ 2 ] } ]\n'
        'model_warmup [ { ' + warmup_input("i", "random_data: true", "[ 3 ]", "TYPE_INT32")
        + warmup_input("b", "random_data: true", "[ 2, 2 ]", "TYPE_BOOL")
        + warmup_input("s", "random_data: true", "[ 2 ]", "TYPE_STRING") + " } ]", "m")
    feeds = warmup_feeds(config, config.model_warmup[0], Path("."))
    assert feeds["i"].dtype == np.int32 and feeds["i"].shape == (3,)  # no batch dimension
    assert feeds["b"].dtype == np.bool_ and feeds["b"].shape == (2, 2)
    assert feeds["s"].tolist() == [b"", b""]  # random strings fall back to zeros (Triton)


@pytest.mark.parametrize("written, words", [
    (sample("s", warmup_input("INPUT0", "zero_data: true"),
            warmup_input("INPUT2", "zero_data: true")), ["sample 's'", "no inputs ['INPUT2']"]),
    (sample("s", warmup_input("INPUT0", "zero_data: true")), ["inputs ['INPUT1'] are missing"]),
    (sample("s", warmup_input("INPUT0", "zero_data: true", data_type="TYPE_INT32"),
            warmup_input("INPUT1", "zero_data: true")),
     ["input 'INPUT0'", "TYPE_INT32", "TYPE_FP32"]),
    (sample("s", warmup_input("INPUT0", "zero_data: true", dims="[ 4, 4 ]"),
            warmup_input("INPUT1", "zero_data: true")), ["input 'INPUT0'", "dims [4, 4]", "[16]"]),
    (sample("s", warmup_input("INPUT0", "zero_data: true"),
            warmup_input("INPUT1", "zero_data: true"), batch_size=9),
     ["batch_size 9", "max_batch_size 8"]),
    (sample("s", warmup_input("INPUT0", ""), warmup_input("INPUT1", "zero_data: true")),
     ["input 'INPUT0'", "exactly one data source", "none"]),
    (sample("s", warmup_input("INPUT0", "zero_data: true random_data: true"),
            warmup_input("INPUT1", "zero_data: true")), ["zero_data', 'random_data"]),
    (sample("s", warmup_input("INPUT0", "zero_data: false"),
            warmup_input("INPUT1", "zero_data: true")), ["exactly one data source"]),
    (sample("s", warmup_input("INPUT0", 'input_data_file: "../../secret"'),
            warmup_input("INPUT1", "zero_data: true")), ["'../../secret'", "warmup/ folder"]),
    (sample("s", warmup_input("INPUT0", 'input_data_file: "/etc/passwd"'),
            warmup_input("INPUT1", "zero_data: true")), ["'/etc/passwd'"]),
    (sample("s", warmup_input("INPUT0", "zero_data: true", dims="[ -1 ]"),
            warmup_input("INPUT1", "zero_data: true")), ["dims [-1]", "no variable"]),
    (sample("s", warmup_input("INPUT0", "zero_data: true"),
            warmup_input("INPUT1", "zero_data: true"), batch_size=0), ["batch_size must be >= 1"]),
    (sample("s", warmup_input("INPUT0", "zero_data: true", data_type="TYPE_FLOAT"),
            warmup_input("INPUT1", "zero_data: true")), ["input 'INPUT0'", "TYPE_FLOAT"]),
    ('{ inputs { key: "INPUT0" value { dims: [ 16 ] zero_data: true } } }',
     ["sample 'sample 0' input 'INPUT0'", "needs a data_type"]),
    ('{ name: "s" batch_sise: 2 }', ["batch_sise"]),
])
def test_configuration_check_names_the_problem(written: str, words: list[str]) -> None:
    with pytest.raises(InvalidArgument) as info:
        config_from_pbtxt(add_sub_with(written), "add_sub")
    for word in words:
        assert word in str(info.value)


def test_a_model_without_a_batch_dimension_warms_up_with_batch_size_1() -> None:
    text = ('name: "m" input [ { name: "x" data_type: TYPE_FP32 dims: [ 2 ] } ]\n'
            "model_warmup [ { batch_size: 2 " + warmup_input("x", "zero_data: true", "[ 2 ]")
            + " } ]")
    with pytest.raises(InvalidArgument, match="max_batch_size 0.*must be 1"):
        config_from_pbtxt(text, "m")


def test_an_ensemble_takes_no_warmup() -> None:
    text = ('name: "e" platform: "ensemble" input [ { name: "x" data_type: TYPE_FP32 dims: [1] } ]'
            ' output [ { name: "y" data_type: TYPE_FP32 dims: [1] } ]'
            ' ensemble_scheduling { step [ { model_name: "m" input_map { key: "a" value: "x" }'
            ' output_map { key: "b" value: "y" } } ] }'
            ' model_warmup [ { ' + warmup_input("x", "zero_data: true", "[ 1 ]") + " } ]")
    with pytest.raises(InvalidArgument, match="ensemble takes no model_warmup"):
        config_from_pbtxt(text, "e")


def test_failing_warmups_fail_their_model_alone(tmp_path: Path, plans: dict[str, bytes]) -> None:
    repo = tmp_path / "models"
    write_model(repo, "add_sub", 1, "model.plan", plans["add_sub"], add_sub_with(ZEROS))
    # Within the configuration's dims (-1), outside the engine's profile (widths 1..8).
    write_model(repo, "wide", 1, "model.plan", wide_plan(),
                'name: "wide"\nmodel_warmup [ '
                + sample("too wide", warmup_input("INPUT0", "zero_data: true", "[ 9 ]")) + " ]")
    # Checked once the engine has completed the configuration (no inputs declared).
    write_model(repo, "misnamed", 1, "model.plan", plans["scale2"],
                'name: "misnamed"\nmodel_warmup [ '
                + sample("typo", warmup_input("INPUT", "zero_data: true", "[ 4 ]")) + " ]")
    # The data file is one float short.
    write_model(repo, "short", 1, "model.plan", plans["add_sub"],
                add_sub_with(FROM_FILE).replace('"add_sub"', '"short"'))
    (repo / "short" / "warmup" / "sub").mkdir(parents=True)
    (repo / "short" / "warmup" / "input0.bin").write_bytes(bytes(60))
    (repo / "short" / "warmup" / "sub" / "input1.bin").write_bytes(bytes(64))
    # A link out of the warmup folder.
    write_model(repo, "escape", 1, "model.plan", plans["add_sub"],
                add_sub_with(FROM_FILE).replace('"add_sub"', '"escape"'))
    (repo / "escape" / "warmup").mkdir()
    (tmp_path / "outside.bin").write_bytes(bytes(64))
    (repo / "escape" / "warmup" / "input0.bin").symlink_to(tmp_path / "outside.bin")

    async def scenario(plane: DataPlane) -> tuple[dict[str, str], bool]:
        index = {m["name"]: m for m in plane.repository_index()}
        response = await plane.infer("add_sub", None,
                                     add_sub_request(np.ones((1, 16), np.float32)))
        np.testing.assert_array_equal(response.outputs[0].data, np.full((1, 16), 2))
        return {n: index[n]["reason"] for n in ("wide", "misnamed", "short", "escape")
                if index[n]["state"] == "UNAVAILABLE"}, plane.model_ready("wide")

    reasons, wide_ready = serve(repo, tmp_path, scenario)
    assert not wide_ready
    assert "model_warmup sample 'too wide' failed on instance host #0" in reasons["wide"]
    assert "input 'INPUT0'" in reasons["wide"] and "outside optimization profile" in \
        reasons["wide"]
    assert "sample 'typo'" in reasons["misnamed"] and "no inputs ['INPUT']" in \
        reasons["misnamed"]
    assert "sample 'from file' input 'INPUT0'" in reasons["short"]
    assert "holds 60 bytes" in reasons["short"] and "exactly 64" in reasons["short"]
    assert "sample 'from file' input 'INPUT0'" in reasons["escape"]
    assert "leads out of" in reasons["escape"]


def test_config_endpoint_reports_warmup_and_cache() -> None:
    text = add_sub_with(ZEROS) + "response_cache { enable: true }"
    config = config_from_pbtxt(text, "add_sub")
    written = config.to_json()
    assert written["response_cache"] == {"enable": True}
    (warm,) = written["model_warmup"]
    assert warm["name"] == "zeros" and warm["batch_size"] == 4 and warm["count"] == 2
    assert warm["inputs"]["INPUT0"] == {"data_type": "TYPE_FP32", "dims": [16],
                                        "zero_data": True}
    assert message_to_json(model_config_to_proto(written).config)["model_warmup"][0][
        "inputs"]["INPUT1"]["zero_data"] is True
