"""``BitCast_TRT``: the bytes of each element read as another type of the same width."""

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from tests.onnx.support import run_model
from tests.plugins.test_library import make_plugin, run_plugin


def test_float32_bits_read_as_int32():
    x = np.array([[1.0, -2.5, np.inf], [0.0, -0.0, 3e-40]], np.float32)
    (out,) = run_plugin("BitCast_TRT", {"x": x}, from_type=1, to=6)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, x.view(np.int32))


def test_uint32_carried_in_int64_becomes_int32():
    # UINT32 is carried in INT64: its values are converted back before the bytes are read.
    x = np.array([0, 2**31, 2**32 - 1], np.int64)
    (out,) = run_plugin("BitCast_TRT", {"x": x}, from_type=12, to=6)
    np.testing.assert_array_equal(out, [0, -2**31, -1])


def test_widths_must_match():
    with pytest.raises(ValueError, match="differ in width"):
        make_plugin("BitCast_TRT", from_type=1, to=7)


@pytest.mark.parametrize("source, target, values", [
    (TensorProto.INT32, TensorProto.FLOAT, np.array([1065353216, -1082130432, 1], np.int32)),
    (TensorProto.INT8, TensorProto.UINT8, np.array([-128, -1, 0, 127], np.int8)),
    (TensorProto.BOOL, TensorProto.UINT8, np.array([True, False, True])),
])
def test_onnx_bit_cast_matches_the_reference(source, target, values):
    graph = helper.make_graph(
        [helper.make_node("BitCast", ["x"], ["y"], to=target)], "g",
        [helper.make_tensor_value_info("x", source, list(values.shape))],
        [helper.make_tensor_value_info("y", target, list(values.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26)])
    got = run_model(model, {"x": values})["y"]
    (want,) = ReferenceEvaluator(model).run(None, {"x": values})
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
