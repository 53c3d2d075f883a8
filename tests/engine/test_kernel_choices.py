"""Choices tactics make while timed (engine.kernels.choices: which cuDNN execution plan a
graph runs): a build records the ones it makes or uses, the plan carries them, and loading
the plan restores them; a malformed set is refused like any malformed header field."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from engine.kernels import choices
from engine.plan.format import read_plan, write_plan
from tests.engine.test_plan import make_plan, refusal


def test_a_recording_collects_choices_made_and_used_while_it_lasts():
    choices.record("test used before", "plan a")
    with choices.recording(tune=True) as made:
        assert choices.tuning()
        choices.record("test made", "plan b")
        assert choices.lookup("test used before") == "plan a"
        assert choices.lookup("test never made") is None
    assert made == {"test made": "plan b", "test used before": "plan a"}
    choices.record("test after", "plan c")
    assert "test after" not in made
    with choices.recording(tune=False):
        assert not choices.tuning()


def test_a_plan_carries_its_build_choices_and_loading_it_restores_them():
    contents = read_plan(make_plan())
    assert contents.header["kernel_choices"] == {}  # the CPU tactics make none
    header = dict(contents.header)
    header.pop("arrays")
    header["kernel_choices"] = {"test restored": "plan d"}
    plan = write_plan(header, [np.array(a) for a in contents.arrays])
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(plan)
    assert engine is not None
    assert choices.lookup("test restored") == "plan d"


@pytest.mark.parametrize("bad", [["a"], {"key": 3}, "plan"])
def test_malformed_choices_are_refused(bad):
    contents = read_plan(make_plan())
    header = dict(contents.header)
    header.pop("arrays")
    header["kernel_choices"] = bad
    message = refusal(write_plan(header, [np.array(a) for a in contents.arrays]))
    assert "malformed plan header" in message and "kernel choices" in message


def test_the_timing_cache_carries_choices_to_builds_in_other_processes(monkeypatch):
    """A build stores the choices it made in its timing cache; a build from that cache
    (serialized, as in another process) starts with them, so its tactics time nothing again."""
    from engine.builder import build as build_module

    def make_network(builder):
        network = builder.create_network(0)
        x = network.add_input("x", trt.float32, (2, 3))
        network.mark_output(network.add_activation(x, trt.ActivationType.RELU).get_output(0))
        return network

    original = build_module._TacticChooser.choose

    def choose_and_record(self, layer, inputs):
        choices.record("test cached choice", "plan e")  # as a cuDNN graph's tuning would
        return original(self, layer, inputs)

    builder = trt.Builder(trt.Logger())
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    cache = config.create_timing_cache(b"")
    assert config.set_timing_cache(cache, ignore_mismatch=False)
    with monkeypatch.context() as patch:
        patch.setattr(build_module._TacticChooser, "choose", choose_and_record)
        assert builder.build_serialized_network(make_network(builder), config) is not None
    data = cache.serialize()
    assert b"test cached choice" in data

    monkeypatch.setattr(choices, "_CHOICES", {})  # another process
    second = builder.create_builder_config()
    second.default_device_type = trt.DeviceType.CPU
    assert second.set_timing_cache(second.create_timing_cache(data), ignore_mismatch=False)
    assert builder.build_serialized_network(make_network(builder), second) is not None
    assert choices.lookup("test cached choice") == "plan e"


def test_a_timing_cache_with_malformed_choices_is_refused():
    import json

    config = trt.Builder(trt.Logger()).create_builder_config()
    doc = json.loads(config.create_timing_cache(b"").serialize())
    doc["kernel_choices"] = {"key": 1}
    with pytest.raises(trt.BuildError, match="kernel_choices"):
        config.create_timing_cache(json.dumps(doc).encode())
