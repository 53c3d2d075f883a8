"""config.pbtxt / config.json: the strict reader and the validation both share."""

from __future__ import annotations

import pytest

from server.core.config import config_from_json, config_from_pbtxt
from server.core.errors import InvalidArgument

FULL = """
# a comment
name: "m"
platform: "onnxruntime_onnx"
max_batch_size: 8
version_policy: { specific: { versions: [1, 3] } }
input [ { name: "x", data_type: TYPE_FP32, dims: [ 3, -1 ] } ]
output [ { name: "y" data_type: TYPE_STRING dims: [ 1 ] } ]
instance_group [ { count: 2, kind: KIND_CPU }, { count: 1 kind: KIND_CPU gpus: [0] } ]
dynamic_batching { preferred_batch_size: [ 2, 4 ] max_queue_delay_microseconds: 100
                   default_queue_policy { max_queue_size: 5 } }
parameters { key: "precision" value: { string_value: "fp16" } }
parameters { key: "profile.x" value: { string_value: "1x3x1:4x3x8:8x3x16" } }
"""


def test_full_config() -> None:
    c = config_from_pbtxt(FULL, "m")
    assert c.platform == "onnxruntime_onnx" and c.max_batch_size == 8
    assert c.version_policy.select([1, 2, 3, 4]) == [1, 3]
    assert c.inputs[0].datatype == "FP32" and c.inputs[0].dims == (3, -1)
    assert c.outputs[0].datatype == "BYTES"
    assert [g.count for g in c.instance_groups] == [2, 1]
    assert c.dynamic_batching is not None
    assert c.dynamic_batching.preferred_batch_size == (2, 4) and c.max_queue_size == 5
    assert c.precision == "fp16"
    assert c.profile("x") == ((1, 3, 1), (4, 3, 8), (8, 3, 16))
    # The JSON form reads back to the same configuration (Triton writes int64 as strings).
    again = c.to_json()
    again["input"][0]["dims"] = ["3", "-1"]
    assert config_from_json(again, "m") == c


@pytest.mark.parametrize("text, words", [
    ('name: "m" max_batch_sise: 4', ["line 1", "max_batch_sise"]),
    ('name: "other"', ["differs", "m"]),
    ('max_batch_size: "4"', ["integer"]),
    ('max_batch_size: 1.5', ["integer"]),
    ('input [ { name: "x" data_type: TYPE_FLOAT dims: [1] } ]', ["TYPE_FLOAT", "TYPE_FP32"]),
    ('input [ { name: "x" data_type: TYPE_FP32 dims: [1] }', ["end of file"]),
    ('platform: "pytorch_libtorch"', ["platform", "tensorrt_plan"]),
    ('instance_group [ { kind: KIND_TPU } ]', ["KIND_TPU"]),
    ('max_batch_size: 2 dynamic_batching { preferred_batch_size: [4] }', ["1..max_batch_size"]),
    ('parameters { key: "precision" value { string_value: "fp7" } }', ["fp7"]),
    ('name: "m" name: "m"', ["given twice"]),
    ('name: "m" $', ["unexpected character"]),
])
def test_bad_configs_name_the_problem(text: str, words: list[str]) -> None:
    with pytest.raises(InvalidArgument) as info:
        config_from_pbtxt(text, "m")
    for word in words:
        assert word in str(info.value)


def test_json_config_checks_shapes() -> None:
    with pytest.raises(InvalidArgument, match="unknown field 'inputs'"):
        config_from_json({"inputs": []}, "m")
    with pytest.raises(InvalidArgument, match="must be a list"):
        config_from_json({"input": {"name": "x"}}, "m")


ENSEMBLE = """
name: "m" platform: "ensemble" max_batch_size: 4
input [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "Y" data_type: TYPE_FP32 dims: [ 4 ] } ]
ensemble_scheduling { step [
  { model_name: "a" model_version: -1
    input_map { key: "INPUT0" value: "X" } output_map { key: "OUTPUT0" value: "t" } },
  { model_name: "b" model_version: 2
    input_map { key: "INPUT0" value: "t" } output_map { key: "OUTPUT0" value: "Y" } } ] }
"""


def test_ensemble_config() -> None:
    c = config_from_pbtxt(ENSEMBLE, "m")
    assert c.platform == "ensemble" and c.ensemble_scheduling is not None
    first, second = c.ensemble_scheduling.steps
    assert (first.model_name, first.model_version, first.input_map, first.output_map) == \
        ("a", -1, (("INPUT0", "X"),), (("OUTPUT0", "t"),))
    assert second.model_version == 2
    # Its JSON form (Triton writes int64 as strings) reads back to the same configuration.
    again = c.to_json()
    assert "backend" not in again and again["ensemble_scheduling"]["step"][1] == {
        "model_name": "b", "model_version": 2, "input_map": {"INPUT0": "t"},
        "output_map": {"OUTPUT0": "Y"}}
    again["ensemble_scheduling"]["step"][1]["model_version"] = "2"
    assert config_from_json(again, "m") == c


@pytest.mark.parametrize("change, words", [
    (('platform: "ensemble"', ""), ["ensemble_scheduling is set", "platform is not set"]),
    (("ensemble_scheduling {", "ensemble_schedulin {"), ["line 5", "ensemble_schedulin"]),
    (("max_batch_size: 4", "max_batch_size: 4 instance_group [ { count: 2 } ]"),
     ["takes no instance_group"]),
    (("max_batch_size: 4", "max_batch_size: 4 dynamic_batching { }"),
     ["takes no dynamic_batching"]),
    (('output_map { key: "OUTPUT0" value: "t" }',
      'output_map { key: "OUTPUT0" value: "t" } output_map { key: "OUTPUT0" value: "u" }'),
     ["map 'output_map' gives key 'OUTPUT0' twice"]),
    (('value: "Y" } } ]', 'value: "t" } } ]'), ["ensemble tensor 't' is produced by both "
                                                "step 0 (model 'a') and step 1 (model 'b')"]),
    (('dims: [ 4 ] } ]\noutput', 'dims: [ 4 ] }, { name: "Z" data_type: TYPE_FP32 '
                                 'dims: [ 4 ] } ]\noutput'),
     ["ensemble input 'Z' is used by no step"]),
    (('output_map { key: "OUTPUT0" value: "t" }',
      'output_map { key: "OUTPUT0" value: "t" } output_map { key: "OUTPUT1" value: "u" }'),
     ["ensemble tensor 'u' (an output of step 0 (model 'a')) is used by no step"]),
    (('value: "Y" } } ]', 'value: "X" } } ]'), ["maps its output 'OUTPUT0' to 'X', which is "
                                                "an ensemble input"]),
    (('input_map { key: "INPUT0" value: "X" }', 'input_map { key: "INPUT0" value: "Y" }'),
     ["the steps form a cycle: step 0 (model 'a') -['t']-> step 1 (model 'b') -['Y']-> "
      "step 0 (model 'a')"]),
    (("model_version: 2", "model_version: 0"), ["step 1 (model 'b'): model_version 0"]),
    (('{ model_name: "a" model_version: -1', '{ model_version: -1'),
     ["step 0 needs a model_name"]),
    (('input_map { key: "INPUT0" value: "t" }', ""), ["step 1 (model 'b') needs an input_map"]),
])
def test_bad_ensembles_name_the_problem(change: tuple[str, str], words: list[str]) -> None:
    assert change[0] in ENSEMBLE
    with pytest.raises(InvalidArgument) as info:
        config_from_pbtxt(ENSEMBLE.replace(*change), "m")
    for word in words:
        assert word in str(info.value)
    with pytest.raises(InvalidArgument, match="needs ensemble_scheduling"):
        config_from_pbtxt('platform: "ensemble"', "m")
