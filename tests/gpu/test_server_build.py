"""The server builds an ONNX model for a GPU in a child process (its default isolation) and
serves the plan on the device: the result matches, and the model's engine runs there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.core import build
from server.core.config import ModelConfig
from server.core.devices import Device
from tests.server.test_build_isolation import _add_one_model

cupy = pytest.importorskip("cupy")


def test_gpu_build_in_a_child_process_serves_on_the_device(tmp_path: Path) -> None:
    path = _add_one_model(tmp_path / "add_one" / "1" / "model.onnx")
    device = Device("gpu", 0)
    engines, _ = build.engines_for(path, ModelConfig(name="add_one"), [device], None, True)
    engine = engines[device]
    assert engine.target["backend"] == "gpu"
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with device.placed():
        y = engine.create_execution_context().infer({"x": x})["y"]
    np.testing.assert_array_equal(device.to_host(y), x + 1)
