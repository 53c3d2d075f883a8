"""TensorRT's per-tensor format and memory queries on an engine and a context: formats are
linear (row major), strides follow the context's shapes, and activation memory is the same
for every profile."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from tests.support import build_engine


def _engine(dynamic: bool = False) -> trt.ICudaEngine:
    def define(net, t):  # noqa: ANN001, ANN202
        cast = net.add_cast(t["x"], trt.DataType.HALF)
        return [net.add_unary(t["x"], trt.UnaryOperation.NEG).get_output(0),
                cast.get_output(0)]

    x = np.ones((2, 3, 4), np.float32)
    return build_engine(define, {"x": x}, dynamic={"x": (-1, 3, 4)} if dynamic else None)


def test_formats_are_linear_and_described() -> None:
    engine = _engine()
    assert engine.get_tensor_format("x") == trt.TensorFormat.LINEAR
    assert engine.get_tensor_format_desc("x") == "Row major linear FP32 format (kLINEAR)"
    assert engine.get_tensor_format_desc("out1") == "Row major linear FP16 format (kLINEAR)"
    assert engine.get_tensor_format_desc("nothing") == ""
    assert engine.get_tensor_bytes_per_component("x") == 4
    assert engine.get_tensor_bytes_per_component("out1") == 2
    assert engine.get_tensor_bytes_per_component("nothing") == -1
    assert engine.get_tensor_components_per_element("x") == 1
    assert engine.get_tensor_components_per_element("nothing") == -1
    assert engine.get_tensor_vectorized_dim("x") == -1


def test_strides_follow_the_context_shapes() -> None:
    engine = _engine(dynamic=True)
    context = engine.create_execution_context()
    # the batch is not set yet, and no stride depends on it
    assert tuple(context.get_tensor_shape("x")) == (-1, 3, 4)
    assert tuple(context.get_tensor_strides("x")) == (12, 4, 1)
    assert context.set_input_shape("x", (2, 3, 4))
    assert tuple(context.get_tensor_strides("x")) == (12, 4, 1)
    assert tuple(context.get_tensor_strides("out0")) == (12, 4, 1)
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(context.infer({"x": x})["out0"], -x)
    assert tuple(context.get_tensor_strides("x")) == (12, 4, 1)


def test_device_memory_for_each_profile() -> None:
    engine = _engine(dynamic=True)
    assert engine.get_device_memory_size_for_profile(0) == engine.device_memory_size
    assert engine.get_device_memory_size_for_profile_v2(0) == engine.device_memory_size_v2
    with pytest.raises(IndexError, match="profile index 1 out of range"):
        engine.get_device_memory_size_for_profile(1)


def test_strides_outside_an_unknown_dimension_are_unknown() -> None:
    def define(net, t):  # noqa: ANN001, ANN202
        return [net.add_unary(t["x"], trt.UnaryOperation.NEG).get_output(0)]

    engine = build_engine(define, {"x": np.ones((2, 3, 4), np.float32)},
                          dynamic={"x": (2, -1, 4)})
    context = engine.create_execution_context()
    assert tuple(context.get_tensor_strides("x")) == (-1, 4, 1)
    assert context.set_input_shape("x", (2, 3, 4))
    assert tuple(context.get_tensor_strides("x")) == (12, 4, 1)
