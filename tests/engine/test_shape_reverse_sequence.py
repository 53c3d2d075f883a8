"""The reverse sequence layer against onnx's ReferenceEvaluator (ReverseSequence) and, for the
axes ONNX does not have, NumPy written for the test."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import engine as trt
from tests.engine.test_spatial_layers import onnx_op
from tests.support import build_engine, run_network

RNG = np.random.default_rng(5)


def reversed_sequences(x, lens, batch_axis, sequence_axis):
    out = x.copy()
    for b, n in enumerate(lens):
        n = min(max(int(n), 0), x.shape[sequence_axis])
        index = [slice(None)] * x.ndim
        index[batch_axis], index[sequence_axis] = b, slice(0, n)
        # the batch index drops an axis: the sequence axis moves down if it came after it
        out[tuple(index)] = np.flip(x[tuple(index)],
                                    axis=sequence_axis - (sequence_axis > batch_axis))
    return out


def reverse(batch_axis=None, sequence_axis=None):
    def define(net, t):
        layer = net.add_reverse_sequence(t["x"], t["lens"])
        if batch_axis is not None:
            layer.batch_axis = batch_axis
        if sequence_axis is not None:
            layer.sequence_axis = sequence_axis
        return [layer.get_output(0)]
    return define


@pytest.mark.parametrize("batch_axis, time_axis", [(1, 0), (0, 1)])
@pytest.mark.parametrize("shape", [(4, 4), (4, 4, 3)])
def test_reverse_sequence_matches_onnx(batch_axis, time_axis, shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    lens = np.array([4, 1, 0, 3], np.int64)
    (y,) = run_network(reverse(batch_axis, time_axis), {"x": x, "lens": lens})
    want = onnx_op("ReverseSequence", [x, lens], opset=10, batch_axis=batch_axis,
                   time_axis=time_axis)
    np.testing.assert_array_equal(y, want)


def test_defaults_reverse_along_axis_0_per_entry_of_axis_1():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    lens = np.array([2, 4, 1], np.int32)
    net = trt.Builder(trt.Logger()).create_network(0)
    layer = net.add_reverse_sequence(net.add_input("x", trt.float32, x.shape),
                                     net.add_input("lens", trt.int32, lens.shape))
    assert (layer.batch_axis, layer.sequence_axis) == (1, 0)
    assert layer.type == trt.LayerType.REVERSE_SEQUENCE
    (y,) = run_network(reverse(), {"x": x, "lens": lens})
    np.testing.assert_array_equal(y, [[3, 10, 2], [0, 7, 5], [6, 4, 8], [9, 1, 11]])


@pytest.mark.parametrize("batch_axis, sequence_axis", [(2, 0), (0, 3), (3, 1)])
def test_any_two_axes_of_a_rank_4_input(batch_axis, sequence_axis):
    x = RNG.standard_normal((3, 4, 5, 6)).astype(np.float32)
    lens = RNG.integers(0, x.shape[sequence_axis] + 1, x.shape[batch_axis]).astype(np.int32)
    (y,) = run_network(reverse(batch_axis, sequence_axis), {"x": x, "lens": lens})
    np.testing.assert_array_equal(y, reversed_sequences(x, lens, batch_axis, sequence_axis))


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.int32, np.int64,
                                   np.int8, np.bool_])
def test_every_type_moves_unchanged(dtype):
    x = (RNG.standard_normal((5, 3, 2)) * 4).astype(dtype)
    lens = np.array([5, 2, 3], np.int64)
    (y,) = run_network(reverse(), {"x": x, "lens": lens})
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y, reversed_sequences(x, lens, 1, 0))


def test_lengths_out_of_range_are_clamped():
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    lens = np.array([9, -2, 4], np.int32)
    (y,) = run_network(reverse(), {"x": x, "lens": lens})
    np.testing.assert_array_equal(y, reversed_sequences(x, [4, 0, 4], 1, 0))


def test_dynamic_shapes():
    x = RNG.standard_normal((2, 6, 3)).astype(np.float32)
    lens = np.array([6, 3], np.int32)
    (y,) = run_network(reverse(0, 1), {"x": x, "lens": lens},
                       dynamic={"x": (-1, -1, 3), "lens": (-1,)})
    np.testing.assert_array_equal(y, reversed_sequences(x, lens, 0, 1))


def test_attributes_survive_the_plan():
    x = RNG.standard_normal((2, 5, 3)).astype(np.float32)
    lens = np.array([3, 5], np.int32)
    engine = build_engine(reverse(0, 1), {"x": x, "lens": lens})
    (restored,) = [layer for layer in engine._network._layers
                   if isinstance(layer, trt.IReverseSequenceLayer)]
    assert restored.attributes() == {"batch_axis": 0, "sequence_axis": 1}


def new_layer(x_shape=(4, 3), lens_shape=(3,), x_type=trt.float32, lens_type=trt.int32):
    net = trt.Builder(trt.Logger()).create_network(0)
    return net.add_reverse_sequence(net.add_input("x", x_type, x_shape),
                                    net.add_input("lens", lens_type, lens_shape))


@pytest.mark.parametrize("x_shape, lens_shape, lens_type, message", [
    ((4,), (1,), trt.int32, r"input must have rank 2 or more, got shape \(4,\)"),
    ((4, 3), (3, 1), trt.int32, r"sequence_lens must be 1-D, got shape \(3, 1\)"),
    ((4, 3), (3,), trt.float32, r"sequence_lens \(input 1\) has type FLOAT"),
])
def test_refusals_when_added(x_shape, lens_shape, lens_type, message):
    with pytest.raises(trt.NetworkError, match=message):
        new_layer(x_shape, lens_shape, lens_type=lens_type)


@pytest.mark.parametrize("batch_axis, sequence_axis, message", [
    (1, 1, "batch_axis and sequence_axis are both 1; they must differ"),
    (2, 0, r"batch_axis 2 is out of range \[0, 1\]"),
    (1, -1, r"sequence_axis -1 is out of range \[0, 1\]"),
    (0, 1, r"sequence_lens has 3 lengths but the input has 4 batch entries \(axis 0 of "
           r"\(4, 3\)\)"),
])
def test_axis_refusals_when_the_output_is_read(batch_axis, sequence_axis, message):
    layer = new_layer()
    layer.batch_axis, layer.sequence_axis = batch_axis, sequence_axis
    with pytest.raises(trt.NetworkError, match=message):
        _ = layer.get_output(0).shape
