"""Ops expanded through their ONNX function bodies, against onnx's reference evaluator."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from tests.onnx.support import run_model


@pytest.mark.parametrize("activation", ["none", "silu"])
def test_causal_conv_with_state_body_reads_the_static_channel_count(activation):
    # The schema builds the body only from static shapes: its Conv's group is the channel count.
    rng = np.random.default_rng(0)
    node = helper.make_node("CausalConvWithState", ["x", "w", "b", "past"], ["y", "present"],
                            activation=activation)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 6]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 1, 3]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info("past", TensorProto.FLOAT, [2, 4, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 6]),
         helper.make_tensor_value_info("present", TensorProto.FLOAT, [2, 4, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 27)])
    feeds = {"x": rng.normal(size=(2, 4, 6)), "w": rng.normal(size=(4, 1, 3)),
             "b": rng.normal(size=4), "past": rng.normal(size=(2, 4, 2))}
    feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
    got = run_model(model, feeds)
    want = ReferenceEvaluator(model).run(None, feeds)
    np.testing.assert_allclose(got["y"], want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got["present"], want[1])
