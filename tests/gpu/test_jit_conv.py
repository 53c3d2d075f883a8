"""The implicit-GEMM convolution tactics (TacticSource.JIT_CONVOLUTIONS, compiled with NVRTC
at build time): a residual network built with no other convolution source, against the CPU
target; single convolutions over geometries, channel counts that are not multiples of the
tiles, batches and odd spatial sizes; every activation with and without a residual; inputs
in channels-last order. Each single layer is compared with the CPU kernel."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from engine.kernels.registry import get_tactic
from engine.network.layer import LayerType
from engine.network.layers.fused import IFusedConvolutionLayer
from tests.gpu.gpu_support import build_gpu_engine, only_source, run_on_both
from tests.gpu.kernel_cases import KernelCase

cupy = pytest.importorskip("cupy")
jit_conv = pytest.importorskip("engine.kernels.gpu.jit_conv")
from tests.gpu.test_kernels import check_tactic_against_cpu  # noqa: E402 - needs CuPy

RNG = np.random.default_rng(5)
A = trt.ActivationType
PLAIN, FUSED = "gpu.conv_jit_implicit_gemm", "gpu.fused_conv_jit_implicit_gemm"


def weights(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


# -- a residual network, every convolution on the JIT tactics ----------------------------------
W1, B1 = weights(17, 5, 7, 7), weights(17)
W2, B2 = weights(17, 17, 3, 3), weights(17)
WS, BS = weights(17, 5, 1, 1), weights(17)
W3, B3 = weights(8, 17, 1, 1), weights(8)


def residual_network(net: trt.INetworkDefinition, t: dict[str, trt.ITensor]):
    x = t["x"]

    def conv(inp, w, b, stride, padding):
        layer = net.add_convolution_nd(inp, w.shape[0], w.shape[2:], w, b)
        layer.stride_nd, layer.padding_nd = stride, padding
        return layer.get_output(0)

    stem = conv(x, W1, B1, (2, 2), (3, 3))
    a = net.add_activation(stem, A.RELU).get_output(0)
    b = conv(a, W2, B2, (1, 1), (1, 1))
    shortcut = conv(x, WS, BS, (2, 2), (0, 0))
    summed = net.add_elementwise(b, shortcut, trt.ElementWiseOperation.SUM).get_output(0)
    c = net.add_activation(summed, A.RELU).get_output(0)
    pool = net.add_pooling_nd(c, trt.PoolingType.MAX, (2, 2))
    pool.stride_nd = (2, 2)
    d = conv(pool.get_output(0), W3, B3, (1, 1), (0, 0))
    mean = net.add_reduce(d, trt.ReduceOperation.AVG, 0b1100, keep_dims=False).get_output(0)
    return [mean, c]


def jit_only(fp16: bool):  # noqa: ANN201
    return only_source(trt.TacticSource.JIT_CONVOLUTIONS, fp16)


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_residual_network_on_jit_convolutions_matches_the_cpu(fp16: bool) -> None:
    inputs = {"x": RNG.standard_normal((3, 5, 15, 13)).astype(np.float32)}
    engine = build_gpu_engine(residual_network, inputs, config_hook=jit_only(fp16))
    convolutions = [tactic for _, _, tactic in engine.layer_tactics if "conv" in tactic]
    # stem + relu, conv + residual + relu (fused), the shortcut and the last convolution
    assert sorted(convolutions) == [PLAIN] * 2 + [FUSED] * 2, convolutions
    by_gpu, by_cpu = run_on_both(residual_network, inputs, config_hook=jit_only(fp16))
    tolerance = 2e-2 if fp16 else 1e-4
    for got, want in zip(by_gpu, by_cpu):
        np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=tolerance, atol=tolerance)


# -- single convolutions against the CPU kernel ------------------------------------------------
GEOMETRIES = {  # name: (kernel, stride, pre padding, post padding, dilation)
    "1x1": ((1, 1), (1, 1), (0, 0), (0, 0), (1, 1)),
    "1x1-stride2": ((1, 1), (2, 2), (0, 0), (0, 0), (1, 1)),
    "3x3-pad1": ((3, 3), (1, 1), (1, 1), (1, 1), (1, 1)),
    "7x7-stride2-pad3": ((7, 7), (2, 2), (3, 3), (3, 3), (1, 1)),
    "3x3-dilation2": ((3, 3), (1, 1), (2, 2), (2, 2), (2, 2)),
    "asymmetric-pads": ((3, 2), (2, 1), (0, 2), (1, 0), (1, 2)),
}
CHANNELS = [(3, 17), (17, 64), (64, 130), (130, 3)]  # (input channels, output maps)
BATCHES = {"batch1-13x11": (1, (13, 11)), "batch5-9x10": (5, (9, 10))}
DTYPES = {"fp32": np.float32, "fp16": np.float16}
TOLERANCE = {"float32": 1e-4, "float16": 2e-2}


def convolution(maps: int, geometry: tuple, w: np.ndarray, b: np.ndarray | None):
    kernel, stride, pre, post, dilation = geometry

    def define(net: trt.INetworkDefinition, t: dict[str, trt.ITensor]) -> trt.ILayer:
        layer = net.add_convolution_nd(t["x"], maps, kernel, w, b)
        layer.stride_nd, layer.dilation_nd = stride, dilation
        layer.pre_padding, layer.post_padding = pre, post
        return layer
    return define


def check(layer_type: LayerType, name: str, case: KernelCase) -> None:
    tactic = get_tactic("gpu", layer_type, name)
    assert check_tactic_against_cpu(tactic, case), f"{name} refused {case.name}"


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("batch", BATCHES.values(), ids=BATCHES.keys())
@pytest.mark.parametrize("channels", CHANNELS, ids=[f"c{c}-k{k}" for c, k in CHANNELS])
@pytest.mark.parametrize("geometry", GEOMETRIES.values(), ids=GEOMETRIES.keys())
def test_convolution_geometries(geometry: tuple, channels: tuple[int, int],
                                batch: tuple[int, tuple[int, int]], dtype: type) -> None:
    (c, k), (n, spatial) = channels, batch
    w, b = weights(k, c, *geometry[0]), weights(k)
    x = RNG.standard_normal((n, c, *spatial)).astype(dtype)
    case = KernelCase("geometry", {"x": x}, convolution(k, geometry, w, b),
                      {np.dtype(dtype).name: TOLERANCE[np.dtype(dtype).name]})
    check(LayerType.CONVOLUTION, PLAIN, case)


def fused(maps: int, geometry: tuple, activation: trt.ActivationType | None, residual: bool,
          w: np.ndarray, b: np.ndarray | None):
    plain = convolution(maps, geometry, w, b)

    def define(net: trt.INetworkDefinition, t: dict[str, trt.ITensor]) -> trt.ILayer:
        return IFusedConvolutionLayer.from_convolution(
            plain(net, t), t["r"] if residual else None, activation, 0.1, 0.0)
    return define


ACTIVATIONS = [None, A.RELU, A.LEAKY_RELU, A.SIGMOID, A.TANH, A.GELU_ERF, A.GELU_TANH]


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("residual", [False, True], ids=["no-residual", "residual"])
@pytest.mark.parametrize("activation", ACTIVATIONS,
                         ids=[a.name if a is not None else "none" for a in ACTIVATIONS])
def test_fused_epilogues(activation: trt.ActivationType | None, residual: bool,
                         dtype: type) -> None:
    geometry = ((3, 3), (2, 2), (1, 1), (1, 1), (1, 1))
    w, b = weights(130, 17, 3, 3), weights(130)
    inputs = {"x": RNG.standard_normal((5, 17, 11, 9)).astype(dtype)}
    if residual:
        inputs["r"] = RNG.standard_normal((5, 130, 6, 5)).astype(dtype)
    case = KernelCase("epilogue", inputs, fused(130, geometry, activation, residual, w, b),
                      {np.dtype(dtype).name: TOLERANCE[np.dtype(dtype).name]})
    check(LayerType.FUSED_CONVOLUTION, FUSED, case)


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_convolution_without_bias(dtype: type) -> None:
    geometry = GEOMETRIES["3x3-pad1"]
    x = RNG.standard_normal((2, 17, 7, 9)).astype(dtype)
    case = KernelCase("no-bias", {"x": x}, convolution(64, geometry, weights(64, 17, 3, 3), None),
                      {np.dtype(dtype).name: TOLERANCE[np.dtype(dtype).name]})
    check(LayerType.CONVOLUTION, PLAIN, case)


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_channels_last_inputs_give_the_c_order_result(dtype: type) -> None:
    """A cuDNN producer hands over NHWC-strided views; the tactic reads them in C order."""
    network = trt.Builder(trt.Logger()).create_network(0)
    x = RNG.standard_normal((2, 17, 7, 9)).astype(dtype)
    residual = RNG.standard_normal((2, 64, 7, 9)).astype(dtype)
    dt = trt.DataType.HALF if dtype == np.float16 else trt.DataType.FLOAT
    tensors = {"x": network.add_input("x", dt, x.shape),
               "r": network.add_input("r", dt, residual.shape)}
    layer = fused(64, GEOMETRIES["3x3-pad1"], A.RELU, True, weights(64, 17, 3, 3),
                  weights(64))(network, tensors)
    tactic = get_tactic("gpu", LayerType.FUSED_CONVOLUTION, FUSED)

    def nhwc(a: np.ndarray):
        return cupy.asarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)

    (want,) = tactic.run(layer, [cupy.asarray(x), None, None, cupy.asarray(residual)])
    (got,) = tactic.run(layer, [nhwc(x), None, None, nhwc(residual)])
    assert got.flags.c_contiguous and got.shape == (2, 64, 7, 9)
    cupy.testing.assert_array_equal(got, want)
