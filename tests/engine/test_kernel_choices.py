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
