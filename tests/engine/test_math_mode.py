"""The math mode (engine.kernels.math_mode): TF32 allowed only inside a build whose
configuration has BuilderFlag.TF32 (TensorRT's default) and inside runs of such engines."""

from __future__ import annotations

import engine as trt
from engine.kernels import math_mode


def test_the_mode_is_scoped_and_exact_fp32_by_default():
    assert not math_mode.tf32_allowed()
    with math_mode.allow_tf32(True):
        assert math_mode.tf32_allowed()
        with math_mode.allow_tf32(False):
            assert not math_mode.tf32_allowed()
        assert math_mode.tf32_allowed()
    assert not math_mode.tf32_allowed()


def test_a_build_times_its_tactics_in_the_mode_its_flags_ask_for(monkeypatch):
    from engine.builder import build as build_module

    seen = []
    original = build_module._TacticChooser.choose

    def choose(self, layer, inputs):
        seen.append(math_mode.tf32_allowed())
        return original(self, layer, inputs)

    monkeypatch.setattr(build_module._TacticChooser, "choose", choose)
    builder = trt.Builder(trt.Logger())
    for tf32 in (True, False):
        network = builder.create_network(0)
        x = network.add_input("x", trt.float32, (2, 3))
        network.mark_output(network.add_activation(x, trt.ActivationType.RELU).get_output(0))
        config = builder.create_builder_config()
        config.default_device_type = trt.DeviceType.CPU
        assert config.get_flag(trt.BuilderFlag.TF32)  # on by default, as in TensorRT
        if not tf32:
            config.clear_flag(trt.BuilderFlag.TF32)
        seen.clear()
        assert builder.build_serialized_network(network, config) is not None
        assert seen and set(seen) == {tf32}
    assert not math_mode.tf32_allowed()
