"""Tool tests: small ONNX models written with onnx.helper, as a user would bring them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

IN, OUT = 16, 8
WEIGHTS = (np.arange(IN * OUT, dtype=np.float32).reshape(IN, OUT) - 60) / 100
BIAS = np.linspace(-1, 1, OUT, dtype=np.float32)


def mlp_reference(x: np.ndarray) -> np.ndarray:
    """What the model computes, in NumPy: relu(x @ W + b)."""
    return np.maximum(x @ WEIGHTS + BIAS, 0)


def write_mlp(path: Path, batch: int | str = "N") -> Path:
    """y = Relu(x @ W + b); x: [batch, 16] (a dynamic batch by default), y: [batch, 8]."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]),
         helper.make_node("Add", ["h", "B"], ["a"]),
         helper.make_node("Relu", ["a"], ["y"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, IN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, OUT])],
        [numpy_helper.from_array(WEIGHTS, "W"), numpy_helper.from_array(BIAS, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def mlp_onnx(tmp_path: Path) -> Path:
    return write_mlp(tmp_path / "mlp.onnx")


@pytest.fixture
def static_onnx(tmp_path: Path) -> Path:
    return write_mlp(tmp_path / "static.onnx", batch=2)
