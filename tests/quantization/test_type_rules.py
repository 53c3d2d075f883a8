"""UINT8 is for network I/O only (TensorRT's rule), checked by ``refuse_misused_uint8``; BOOL
and UINT8 are refused by the layers that do not take them."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from engine.builder.passes.quantize_type_rules import refuse_misused_uint8
from engine.builder.pipeline import run_passes


def network():
    return trt.Builder(trt.Logger()).create_network(0)


def test_uint8_input_through_a_cast_and_uint8_output_from_a_cast_pass():
    net = network()
    x = net.add_input("image", trt.uint8, (1, 4))
    y = net.add_cast(net.add_cast(x, trt.float32).get_output(0), trt.uint8).get_output(0)
    net.mark_output(y)
    assert run_passes(net, [refuse_misused_uint8]) == []


def test_uint8_input_read_by_another_layer_is_refused():
    net = network()
    x = net.add_input("image", trt.uint8, (1, 4))
    shuffle = net.add_shuffle(x)
    shuffle.name = "flatten"
    net.mark_output(shuffle.get_output(0))
    with pytest.raises(trt.BuildError, match=r"input 'image' is UINT8.*Cast to FLOAT or HALF.*"
                                             r"'flatten' \(SHUFFLE\)"):
        run_passes(net, [refuse_misused_uint8])


def test_uint8_output_not_from_a_float_cast_is_refused():
    net = network()
    x = net.add_input("x", trt.int32, (4,))
    cast = net.add_cast(x, trt.uint8)
    cast.name = "to_u8"
    net.mark_output(cast.get_output(0))
    with pytest.raises(trt.BuildError, match=r"output .* is UINT8.*'to_u8' \(CAST\)"):
        run_passes(net, [refuse_misused_uint8])


def test_uint8_constant_is_refused():
    net = network()
    constant = net.add_constant((4,), trt.Weights(np.arange(4, dtype=np.uint8)))
    constant.name = "lut"
    net.mark_output(net.add_cast(constant.get_output(0), trt.float32).get_output(0))
    with pytest.raises(trt.BuildError, match=r"constant layer 'lut' holds UINT8"):
        run_passes(net, [refuse_misused_uint8])


@pytest.mark.parametrize("dtype", [trt.uint8, trt.bool])
def test_quantize_refuses_uint8_and_bool(dtype):
    net = network()
    x = net.add_input("x", dtype, (4,))
    scale = net.add_constant((), trt.Weights(np.array(0.1, np.float32))).get_output(0)
    layer = net.add_quantize(x, scale, trt.int8)
    with pytest.raises(trt.NetworkError, match=rf"input type {dtype.name} is not one of"):
        layer.get_output(0).shape  # noqa: B018 - reading the shape runs the checks


def test_quantize_to_uint8_is_refused():
    net = network()
    x = net.add_input("x", trt.float32, (4,))
    scale = net.add_constant((), trt.Weights(np.array(0.1, np.float32))).get_output(0)
    layer = net.add_quantize(x, scale, trt.uint8)
    with pytest.raises(trt.NetworkError, match=r"to_type UINT8 is not one of"):
        layer.get_output(0).shape  # noqa: B018


def test_convolution_refuses_bool_input():
    net = network()
    x = net.add_input("x", trt.bool, (1, 1, 4, 4))
    with pytest.raises(trt.NetworkError, match=r"input type BOOL is not supported"):
        net.add_convolution_nd(x, 1, (3, 3), np.ones((1, 1, 3, 3), np.float32), None)


def test_bool_works_where_it_is_accepted():
    from tests.support import run_network

    a = np.array([1.0, -2.0, 3.0, -4.0], np.float32)

    def define(net, t):
        zero = net.add_constant((4,), trt.Weights(np.zeros(4, np.float32))).get_output(0)
        positive = net.add_elementwise(t["a"], zero, trt.ElementWiseOperation.GREATER)
        chosen = net.add_select(positive.get_output(0), t["a"], zero)
        return [positive.get_output(0), chosen.get_output(0)]

    mask, chosen = run_network(define, {"a": a})
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, a > 0)
    np.testing.assert_array_equal(chosen, np.where(a > 0, a, 0))
