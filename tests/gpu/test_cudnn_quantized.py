"""The cuDNN INT8 convolution tactics (``gpu.[fused_]quantized_conv_int8_cudnn``, CUDNN source)
in an explicitly quantized (Q/DQ) residual block, built with cuDNN as the only convolution
source, against the same network on the CPU target (whose INT8 sums are exact). Skips itself
where cuDNN's frontend is missing."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from tests.gpu.gpu_support import build_gpu_engine, only_source, run_on_both

cupy = pytest.importorskip("cupy")
cudnn_conv = pytest.importorskip("engine.kernels.gpu.cudnn_conv")
cudnn_quantized = pytest.importorskip("engine.kernels.gpu.cudnn_quantized")

RNG = np.random.default_rng(5)
SCALE = 4.0 / 127


def _constant(net: trt.INetworkDefinition, array: np.ndarray) -> trt.ITensor:
    return net.add_constant(array.shape, trt.Weights(array)).get_output(0)


def _qdq(net: trt.INetworkDefinition, x: trt.ITensor, scale: np.ndarray, axis: int,
         dtype: np.dtype) -> trt.ITensor:
    s = _constant(net, scale.astype(dtype))
    q = net.add_quantize(x, s, trt.DataType.INT8)
    dq = net.add_dequantize(q.get_output(0), s, trt.DataType.HALF if dtype == np.float16
                            else trt.DataType.FLOAT)
    q.axis = dq.axis = axis
    return dq.get_output(0)


def _conv(net: trt.INetworkDefinition, rng: np.random.Generator, x: trt.ITensor, maps: int,
          kernel: int, dtype: np.dtype, residual: trt.ITensor | None = None) -> trt.ITensor:
    channels = x.shape[1]
    w = (rng.standard_normal((maps, channels, kernel, kernel)) *
         np.sqrt(2.0 / (channels * kernel * kernel))).astype(dtype)
    b = (rng.standard_normal(maps) * 0.1).astype(dtype)
    x = _qdq(net, x, np.array(SCALE), -1, dtype)
    scale = np.abs(w.astype(np.float32)).reshape(maps, -1).max(axis=1) / 127
    layer = net.add_convolution_nd(x, maps, (kernel, kernel), trt.Weights(), trt.Weights(b))
    layer.set_input(1, _qdq(net, _constant(net, w), scale, 0, dtype))
    layer.padding_nd = (kernel // 2, kernel // 2)
    y = layer.get_output(0)
    if residual is not None:
        y = net.add_elementwise(y, residual, trt.ElementWiseOperation.SUM).get_output(0)
    return net.add_activation(y, trt.ActivationType.RELU).get_output(0)


def block(dtype: np.dtype, quantized_residual: bool = False):
    """Three quantized convolutions, the last with the block input as its residual, through
    Q/DQ with ``quantized_residual`` (read as INT8 codes by the fused layer)."""
    def define(net: trt.INetworkDefinition, t: dict[str, trt.ITensor]):
        rng = np.random.default_rng(11)  # the same weights in every network defined
        x = t["x"]
        a = _conv(net, rng, x, 32, 1, dtype)
        b = _conv(net, rng, a, 32, 3, dtype)
        residual = _qdq(net, x, np.array(SCALE), -1, dtype) if quantized_residual else x
        return [_conv(net, rng, b, 64, 1, dtype, residual=residual)]

    return define


def cudnn_convolutions(fp16: bool):  # noqa: ANN201
    return only_source(trt.TacticSource.CUDNN, fp16)


@pytest.mark.parametrize("quantized_residual", [False, True], ids=["real-residual",
                                                                  "int8-residual"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=["half", "float"])
def test_quantized_block_on_cudnn_int8_matches_the_cpu(dtype: np.dtype,
                                                       quantized_residual: bool) -> None:
    if not cudnn_conv.available():
        pytest.skip("cuDNN's frontend (nvidia-cudnn-frontend) is not installed")
    inputs = {"x": np.abs(RNG.standard_normal((4, 64, 14, 14))).astype(dtype)}
    hook = cudnn_convolutions(dtype == np.float16)
    define = block(dtype, quantized_residual)
    engine = build_gpu_engine(define, inputs, flags=1 << int(
        trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED), config_hook=hook)
    tactics = [tactic for _, _, tactic in engine.layer_tactics]
    assert sum("int8_cudnn" in t for t in tactics) == 3, tactics
    fused = [layer for layer in engine._network._layers
             if layer.layer_type == trt.LayerType.FUSED_QUANTIZED_CONVOLUTION]
    assert (max(float(la.residual_scale) for la in fused) > 0) == quantized_residual
    by_gpu, by_cpu = run_on_both(define, inputs, flags=1 << int(
        trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED), config_hook=hook)
    got = cupy.asnumpy(by_gpu[0]).astype(np.float32)
    want = by_cpu[0].astype(np.float32)
    # Equal INT32 sums; the float epilogues may round differently, and a requantized value
    # one code apart moves the next convolution's sums by one weight.
    tolerance = 2e-2 if dtype == np.float16 else 1e-3
    np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance * np.abs(want).max())
