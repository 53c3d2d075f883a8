"""The channels-last fast paths of pooling (16-byte channel vectors) and reduction (a dense
run of reduced axes, e.g. ResNet's global average pool) against NumPy written here, and
against the generic kernels on the same values in C order."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from engine.kernels.backends import gpu_available

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not gpu_available(), reason="needs a GPU")

RNG = np.random.default_rng(8)


def _network_input(shape, dtype):
    network = trt.Builder(trt.Logger()).create_network(0)
    kind = trt.DataType.HALF if dtype == np.float16 else trt.DataType.FLOAT
    return network, network.add_input("x", kind, shape)


def _pool_reference(x, kind, window, stride, pad, exclude):
    n, c, h, w = x.shape
    padded = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (pad, pad), (pad, pad)],
                    constant_values=np.nan)
    oh, ow = (h + 2 * pad - window) // stride + 1, (w + 2 * pad - window) // stride + 1
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = padded[:, :, i * stride:i * stride + window, j * stride:j * stride + window]
            if kind == trt.PoolingType.MAX:
                out[:, :, i, j] = np.nanmax(win, axis=(2, 3))
            else:
                count = np.sum(~np.isnan(win[0, 0])) if exclude else window * window
                out[:, :, i, j] = np.nansum(win, axis=(2, 3)) / count
    return out


@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=["half", "float"])
@pytest.mark.parametrize("kind", [trt.PoolingType.MAX, trt.PoolingType.AVERAGE],
                         ids=["max", "average"])
def test_channels_last_pooling_in_vectors(dtype, kind):
    from engine.kernels.gpu.capabilities import channels_last, is_channels_last
    from engine.kernels.gpu.spatial import pooling_direct

    shape = (2, 16, 11, 9)
    x = RNG.standard_normal(shape).astype(dtype)
    network, t = _network_input(shape, dtype)
    layer = network.add_pooling_nd(t, kind, (3, 3))
    layer.stride_nd, layer.padding_nd = (2, 2), (1, 1)
    layer.average_count_excludes_padding = True
    [fast] = pooling_direct(layer, [channels_last(cupy.asarray(x))])
    [generic] = pooling_direct(layer, [cupy.asarray(x)])  # C order: the scalar kernel
    assert is_channels_last(fast)
    np.testing.assert_array_equal(cupy.asnumpy(fast), cupy.asnumpy(generic))
    want = _pool_reference(x, kind, 3, 2, 1, exclude=True)
    np.testing.assert_allclose(cupy.asnumpy(fast).astype(np.float64), want,
                               rtol=1e-3 if dtype == np.float16 else 1e-6, atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=["half", "float"])
@pytest.mark.parametrize("op", [trt.ReduceOperation.AVG, trt.ReduceOperation.SUM,
                                trt.ReduceOperation.MAX, trt.ReduceOperation.MIN])
@pytest.mark.parametrize("keep", [True, False], ids=["keep", "drop"])
def test_spatial_reduction_of_a_channels_last_tensor(dtype, op, keep):
    from engine.kernels.gpu.capabilities import channels_last
    from engine.kernels.gpu.math import _reduce_middle, reduce

    shape = (3, 32, 7, 5)
    x = RNG.standard_normal(shape).astype(dtype)
    network, t = _network_input(shape, dtype)
    layer = network.add_reduce(t, op, 0b1100, keep)
    d = channels_last(cupy.asarray(x))
    assert _reduce_middle(d, (2, 3), op, keep) is not None  # the fast path applies
    [got] = reduce(layer, [d])
    numpy_op = {trt.ReduceOperation.AVG: np.mean, trt.ReduceOperation.SUM: np.sum,
                trt.ReduceOperation.MAX: np.max, trt.ReduceOperation.MIN: np.min}[op]
    want = numpy_op(x.astype(np.float64), axis=(2, 3), keepdims=keep)
    assert got.shape == want.shape and got.dtype == dtype
    np.testing.assert_allclose(cupy.asnumpy(got).astype(np.float64), want,
                               rtol=2e-3 if dtype == np.float16 else 1e-5, atol=1e-3)


def test_reduction_of_leading_axes_in_c_order():
    """A C-order tensor reduced over a middle axis with a long contiguous tail."""
    from engine.kernels.gpu.math import reduce

    x = RNG.standard_normal((4, 10, 32)).astype(np.float32)
    network, t = _network_input(x.shape, np.float32)
    layer = network.add_reduce(t, trt.ReduceOperation.SUM, 0b010, False)
    [got] = reduce(layer, [cupy.asarray(x)])
    np.testing.assert_allclose(cupy.asnumpy(got), x.sum(axis=1), rtol=1e-5, atol=1e-5)


def test_int8_max_pooling_of_channels_last_codes():
    """The pooling of codes (after quantize_through_max_pool): 16 codes per vector, and the
    scalar kernel for C order, both equal to NumPy's maximum of the codes."""
    from engine.kernels.gpu.capabilities import channels_last, is_channels_last
    from engine.kernels.gpu.spatial import pooling_direct

    codes = RNG.integers(-128, 128, (2, 32, 9, 11)).astype(np.int8)
    network = trt.Builder(trt.Logger()).create_network(0)
    t = network.add_input("x", trt.DataType.INT8, codes.shape)
    layer = network.add_pooling_nd(t, trt.PoolingType.MAX, (3, 3))
    layer.stride_nd, layer.padding_nd = (2, 2), (1, 1)
    want = _pool_reference(codes.astype(np.float32), trt.PoolingType.MAX, 3, 2, 1, False)
    [fast] = pooling_direct(layer, [channels_last(cupy.asarray(codes))])
    [generic] = pooling_direct(layer, [cupy.asarray(codes)])
    assert is_channels_last(fast) and fast.dtype == np.int8
    np.testing.assert_array_equal(cupy.asnumpy(fast), want.astype(np.int8))
    np.testing.assert_array_equal(cupy.asnumpy(generic), want.astype(np.int8))
