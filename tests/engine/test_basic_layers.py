import numpy as np
import pytest

import engine as trt
from tests.support import run_network


def test_identity_copies_its_input():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    (y,) = run_network(lambda net, t: [net.add_identity(t["x"]).get_output(0)], {"x": x})
    np.testing.assert_array_equal(y, x)


def test_identity_with_output_type_converts():
    x = np.array([1.5, -2.25, 3.0], np.float32)

    def define(net, t):
        layer = net.add_identity(t["x"])
        layer.set_output_type(0, trt.float16)
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x})
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, x.astype(np.float16))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.int64, np.int8,
                                   np.bool_])
def test_constant_holds_its_weights(dtype):
    w = (np.arange(12) % 2).astype(dtype).reshape(3, 4)
    x = np.zeros((1,), np.float32)

    def define(net, t):
        return [net.add_constant((3, 4), trt.Weights(w)).get_output(0),
                net.add_identity(t["x"]).get_output(0)]

    c, _ = run_network(define, {"x": x})
    np.testing.assert_array_equal(c, w)


def test_constant_with_wrong_count_is_refused_with_its_name():
    net = trt.Builder(trt.Logger()).create_network(0)
    with pytest.raises(trt.NetworkError, match=r"Constant.*holds 6 values but the weights have 4"):
        net.add_constant((2, 3), np.zeros(4, np.float32))
    assert net.num_layers == 0
