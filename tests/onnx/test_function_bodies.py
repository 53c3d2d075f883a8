"""Ops expanded through their ONNX function bodies, against onnx's reference evaluator."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from tests.onnx.support import parse, run_model


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


def test_flex_attention_expands_from_the_preview_domain_with_its_score_mod():
    rng = np.random.default_rng(1)
    score_mod = helper.make_graph(
        [helper.make_node("Add", ["scores", "bias"], ["scores_out"])], "score_mod",
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["B", "H", "L", "S"])],
        [helper.make_tensor_value_info("scores_out", TensorProto.FLOAT, ["B", "H", "L", "S"])],
        [helper.make_tensor("bias", TensorProto.FLOAT, [], [0.5])])
    node = helper.make_node("FlexAttention", ["q", "k", "v"], ["y"], domain="ai.onnx.preview",
                            score_mod=score_mod)
    shape = [1, 2, 3, 4]
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "qkv"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26),
                                                    helper.make_opsetid("ai.onnx.preview", 1)])
    feeds = {n: rng.normal(size=shape).astype(np.float32) for n in "qkv"}
    got = run_model(model, feeds)
    q, k, v = feeds["q"], feeds["k"], feeds["v"]
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(4) + 0.5
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    want = probs / probs.sum(-1, keepdims=True) @ v
    np.testing.assert_allclose(got["y"], want, rtol=1e-5, atol=1e-5)


def test_an_op_of_an_unknown_domain_is_still_refused():
    node = helper.make_node("FlexAttention", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)])
    ok, _, parser = parse(model)
    assert not ok
    assert "no importer and no plugin for op FlexAttention (domain 'com.example')" in \
        parser.get_error(0).desc()
