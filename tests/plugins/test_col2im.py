"""``Col2Im_TRT`` and the ONNX Col2Im importer against onnx's reference evaluator."""

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from tests.onnx.support import run_model
from tests.plugins.test_library import make_plugin


@pytest.mark.parametrize("image, block, attrs", [
    ([5, 6], [2, 3], {}),
    ([7, 6], [3, 2], {"strides": [2, 1], "dilations": [1, 2], "pads": [1, 0, 0, 1]}),
    ([3, 4, 5], [1, 2, 2], {}),
])
def test_col2im_matches_the_reference(image, block, attrs):
    r = len(image)
    strides, dilations = attrs.get("strides", [1] * r), attrs.get("dilations", [1] * r)
    pads = attrs.get("pads", [0] * (2 * r))
    counts = [(image[d] + pads[d] + pads[r + d] - dilations[d] * (block[d] - 1) - 1)
              // strides[d] + 1 for d in range(r)]
    shape = [2, 2 * int(np.prod(block)), int(np.prod(counts))]
    node = helper.make_node("Col2Im", ["x", "image", "block"], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("image", TensorProto.INT64, [r], image),
         helper.make_tensor("block", TensorProto.INT64, [r], block)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = np.random.default_rng(5).normal(size=shape).astype(np.float32)
    got = run_model(model, {"x": x})["y"]
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_fields_need_one_entry_per_dimension():
    with pytest.raises(ValueError, match="one entry per spatial dimension"):
        make_plugin("Col2Im_TRT", image_shape=np.array([4, 4], np.int32),
                    block_shape=np.array([2], np.int32))
