"""The INT8 GPU tactics' integer sums against the CPU kernels' exact arithmetic: equal before
the final float rescale (tests/gpu/test_kernels.py compares the real outputs)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernels.backends import gpu_available
from engine.kernels.cpu.quantized import matmul_with_ops
from engine.kernels.cpu.spatial_conv import conv_im2col_gemm
from engine.network.layer import LayerType
from tests.gpu.kernel_cases import CASES
from tests.gpu.test_kernels import make_layer

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not gpu_available(), reason="needs a GPU")


def test_int8_gemm_sums_exactly_at_the_int8_extremes():
    from engine.kernels.gpu.gemm import int8_matmul_nt

    a = np.full((8, 4096), -128, np.int8)
    b = np.full((12, 4096), -128, np.int8)
    b[3] = 127
    got = cupy.asnumpy(int8_matmul_nt(cupy.asarray(a), cupy.asarray(b)))
    np.testing.assert_array_equal(got, a.astype(np.int64) @ b.astype(np.int64).T)


@pytest.mark.parametrize("case", CASES[LayerType.QUANTIZED_CONVOLUTION], ids=lambda c: c.name)
def test_convolution_sums_equal_the_cpu_integers(case):
    from engine.kernels.gpu.quantized import conv_int8_accumulators

    layer, (x,) = make_layer(case)
    acc, (oh, ow) = conv_int8_accumulators(layer, cupy.asarray(x))
    got = cupy.asnumpy(acc)[:, :, :oh * ow].reshape(x.shape[0], -1, oh, ow)
    want = conv_im2col_gemm(x.astype(np.float64), layer.kernel_codes().astype(np.float64),
                            layer.geometry(x.shape[2:]), tuple(layer.stride_nd),
                            tuple(layer.dilation_nd), 1)
    np.testing.assert_array_equal(got, want.astype(np.int64))


@pytest.mark.parametrize("case", CASES[LayerType.QUANTIZED_MATRIX_MULTIPLY],
                         ids=lambda c: c.name)
def test_matrix_multiply_sums_equal_the_cpu_integers(case):
    from engine.kernels.gpu.quantized import matmul_int8_accumulators

    layer, (x,) = make_layer(case)
    acc, cols = matmul_int8_accumulators(layer, cupy.asarray(x))
    want = matmul_with_ops(x.astype(np.float64), layer.op0,
                           layer.kernel_codes().astype(np.float64), layer.op1)
    got = cupy.asnumpy(acc)[:, :cols].reshape(want.shape)
    np.testing.assert_array_equal(got, want.astype(np.int64))


def test_input_quantization_rounds_half_to_even_and_saturates():
    import engine as trt
    from engine.kernels.registry import tactics_for
    from tests.gpu.kernel_cases import KernelCase

    x = np.array([[0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1000.0, -1000.0, 12.7, -12.8]],
                 np.float32) * 0.1

    def define(net, t):
        scale = net.add_constant((), np.array(0.1, np.float32)).get_output(0)
        return net.add_quantize(t["x"], scale, trt.DataType.INT8)

    layer, arrays = make_layer(KernelCase("q", {"x": x}, define))
    (got,) = tactics_for("gpu", LayerType.QUANTIZE)[0].run(layer, [cupy.asarray(arrays[0]),
                                                                   cupy.asarray(arrays[1])])
    (want,) = tactics_for("cpu", LayerType.QUANTIZE)[0].run(layer, arrays)
    np.testing.assert_array_equal(cupy.asnumpy(got), want)
    np.testing.assert_array_equal(want[0, :8], [0, 2, 2, 0, -2, -2, 127, -128])
