"""The quantized convolution on cuDNN's INT8 tensor-core kernels, through its frontend's graph
API (TacticSource.CUDNN): int8 input codes and int8 weight codes, INT32 accumulation, and
the dequantizing epilogue in the same kernel::

    conv_fprop(x codes, w codes) -> * (input_scale * kernel_scale[k]) -> + bias[k]
        [-> + residual -> activation -> / output_scale, stored as int8 codes]

(the bracketed part for the fused layer, ``IFusedQuantizedConvolutionLayer``, where its
attributes ask for it). Channels-last, as the FP16 cuDNN tactics: the input codes are read
NHWC (reformatted once where they come NCHW), the kernel codes are kept KRSC on the device,
and the output keeps the layer's logical shape with NHWC strides.

cuDNN's INT8 kernels want channel counts in multiples of 4: an input with fewer (the RGB
stem has 3) is copied channels-last with zero channels added, against zero kernel codes.
Geometries cuDNN has no INT8 engine for fail the graph build, and the builder keeps the
cuBLAS tactic; a dynamic shape cuDNN refuses at run time runs the cuBLAS tactic instead.

Measured on the H100 (cuDNN 9.19, frontend 1.32; batch 512, one convolution with the
dequantizing epilogue, against the same FP16 convolution): 1x1 256->64 at 56x56 1.87x,
3x3 128 at 28x28 1.85x, 3x3 256 at 14x14 1.94x, 1x1 512->2048 at 7x7 1.3x, but 3x3 64 at
56x56 0.9x; the builder times both and keeps the faster per layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cupy
import numpy as np

from engine.kernels.cpu.quantized import conv_channel_scale
from engine.kernels.gpu import cudnn_conv
from engine.kernels.gpu.capabilities import channels_last, empty_channels_last
from engine.kernels.gpu.capabilities import channels_last_strides as _nhwc
from engine.kernels.gpu.quantized import fused_quantized_convolution, quantized_convolution
from engine.kernels.gpu.weights import derived_constant
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.fused import epilogue_of
from engine.network.layers.math_pointwise import ActivationType
from engine.network.layers.quantized import (
    IFusedQuantizedConvolutionLayer,
    IQuantizedConvolutionLayer,
)
from engine.network.layers.spatial_window import PaddingMode
from engine.types import DataType, nptype


def _output_type(layer: IQuantizedConvolutionLayer) -> DataType:
    """The codes where the layer requantizes its result (INT8 for this tactic; FP8 codes are
    refused), else its float output type."""
    if _output_scale(layer) > 0:
        return DataType(getattr(layer, "output_codes", DataType.INT8))
    return DataType(layer.output_type)


def _residual_scale(layer: IQuantizedConvolutionLayer) -> float:
    """The fused layer's scale of INT8 residual codes; 0: a real residual (or none)."""
    return float(getattr(layer, "residual_scale", 0.0) or 0.0)


def _output_scale(layer: IQuantizedConvolutionLayer) -> float:
    """The fused layer's requantization scale; 0: none (and for the plain layer)."""
    return float(getattr(layer, "output_scale", 0.0) or 0.0)


_CUDNN_TYPES = {"int8": "INT8", "float16": "HALF", "float32": "FLOAT"}


class _Int8ConvGraph:
    def __init__(self, x: tuple[int, ...], w: tuple[int, ...], out: tuple[int, ...],
                 pre: list[int], post: list[int], stride: list[int], dilation: list[int],
                 residual: np.dtype | None, activation: ActivationType | None, alpha: float,
                 requantize: bool, out_dtype: np.dtype) -> None:
        cudnn = cudnn_conv._cudnn()
        types = cudnn.data_type
        graph = cudnn.pygraph(io_data_type=types.INT8, intermediate_data_type=types.FLOAT,
                              compute_data_type=types.FLOAT, handle=cudnn_conv._handle())
        self.x = graph.tensor(name="x", dim=list(x), stride=_nhwc(x), data_type=types.INT8)
        self.w = graph.tensor(name="w", dim=list(w), stride=_nhwc(w), data_type=types.INT8)
        y = graph.conv_fprop(image=self.x, weight=self.w, pre_padding=pre, post_padding=post,
                             stride=stride, dilation=dilation,
                             compute_data_type=types.INT32)
        channel = (1, w[0]) + (1,) * (len(w) - 2)

        def per_channel(name: str) -> Any:
            return graph.tensor(name=name, dim=list(channel), stride=_nhwc(channel),
                                data_type=types.FLOAT)

        self.scale, self.bias = per_channel("scale"), per_channel("bias")
        y = graph.add(a=graph.mul(a=y, b=self.scale), b=self.bias)
        self.r = self.residual_scale = None
        if residual is not None:
            self.r = graph.tensor(name="r", dim=list(out), stride=_nhwc(out),
                                  data_type=getattr(types, _CUDNN_TYPES[residual.name]))
            r = self.r
            if residual == np.int8:  # INT8 codes: dequantized (times residual_scale) first
                self.residual_scale = per_channel("residual_scale")
                r = graph.mul(a=r, b=self.residual_scale)
            y = graph.add(a=y, b=r)
        y = cudnn_conv.activate(cudnn, graph, y, activation, alpha)
        self.inverse = None
        if requantize:  # y / output_scale, divided as the quantize layer divides
            self.inverse = per_channel("output_scale")
            y = graph.div(a=y, b=self.inverse)
        y.set_output(True).set_data_type(getattr(types, _CUDNN_TYPES[out_dtype.name])) \
            .set_dim(list(out)).set_stride(_nhwc(out))
        self.y = y
        self.graph = graph
        self.workspace_bytes = cudnn_conv.finish_graph(cudnn, graph, np.dtype(np.int8), [
            t for t in (self.x, self.w, self.scale, self.bias, self.r, self.residual_scale,
                        self.inverse, y) if t is not None])


def _geometry(layer: IQuantizedConvolutionLayer, x_shape: tuple[int, ...]
              ) -> tuple[tuple[int, ...], tuple[int, ...], list[int], list[int]] | None:
    """(kernel shape, output shape, pre pads, post pads), or None where cuDNN's output size
    would not be the layer's."""
    if not cudnn_conv.sizes_agree(layer, x_shape[2:]):  # type: ignore[arg-type]
        return None
    geometry = layer.geometry(x_shape[2:])
    kernel_shape = (layer.num_output_maps, x_shape[1]) + tuple(layer.kernel_size_nd)
    out_shape = (x_shape[0], layer.num_output_maps) + tuple(o for _, _, o in geometry)
    return kernel_shape, out_shape, [b for b, _, _ in geometry], [a for _, a, _ in geometry]


def _padded(x_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The input shape cuDNN's INT8 kernels compute on: channels rounded up to a multiple of
    4 (they read 4 int8 channels at a time; an RGB stem has 3). The padding channels are
    zeros in the input and the kernel, so the sums are the layer's."""
    return (x_shape[0], -(-x_shape[1] // 4) * 4) + tuple(x_shape[2:])


def _padded_input(x: cupy.ndarray) -> cupy.ndarray:
    """``x`` channels-last, with zero channels up to ``_padded``'s count."""
    channels = _padded(tuple(x.shape))[1]
    if channels == x.shape[1]:
        return channels_last(x)
    padded = empty_channels_last((x.shape[0], channels) + tuple(x.shape[2:]), x.dtype)
    padded[:, x.shape[1]:] = 0
    padded[:, :x.shape[1]] = x
    return padded


def _graph(layer: IQuantizedConvolutionLayer, x_shape: tuple[int, ...],
           residual: np.dtype | None) -> _Int8ConvGraph | None:
    x_shape = _padded(x_shape)
    shapes = _geometry(layer, x_shape)
    if shapes is None:
        return None
    kernel_shape, out_shape, pre, post = shapes
    activation, alpha, _ = epilogue_of(layer)
    output_scale = _output_scale(layer)
    out_dtype = np.dtype(nptype(_output_type(layer)))
    key = ("int8 conv", tuple(x_shape), kernel_shape, tuple(pre), tuple(post),
           tuple(layer.stride_nd), tuple(layer.dilation_nd),
           None if residual is None else residual.name, activation, alpha, output_scale > 0,
           out_dtype.name)
    return cudnn_conv.cached_graph(key, lambda: _Int8ConvGraph(
        tuple(x_shape), kernel_shape, out_shape, pre, post, list(layer.stride_nd),
        list(layer.dilation_nd), residual, activation, alpha, output_scale > 0, out_dtype))


def _fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IQuantizedConvolutionLayer)
    x = inputs[0]
    if x is None or x.dtype != DataType.INT8 or layer.kernel.dtype != DataType.INT8 or \
            len(layer.kernel_size_nd) != 2 or layer.num_groups != 1 or \
            conv_channel_scale(layer) is None or len(x.shape) != 4:
        return False
    if _output_type(layer) not in (DataType.INT8, DataType.HALF, DataType.FLOAT):
        return False
    activation = epilogue_of(layer)[0]
    if activation is not None and activation not in cudnn_conv.ACTIVATIONS:
        return False
    residual = inputs[1] if len(inputs) > 1 else None
    if residual is not None and residual.dtype != (
            DataType.INT8 if _residual_scale(layer) > 0 else DataType(layer.output_type)):
        return False
    if not cudnn_conv.available():
        return False
    if any(d < 0 for d in x.shape):
        return PaddingMode(layer.padding_mode) != PaddingMode.EXPLICIT_ROUND_UP
    residual_dtype = None if residual is None else np.dtype(nptype(residual.dtype))
    return _graph(layer, tuple(x.shape), residual_dtype) is not None


def _krsc_codes(layer: IQuantizedConvolutionLayer, channels: int) -> cupy.ndarray:
    """The kernel codes on the device in KRSC order (``[K, R, S, C]`` memory), with zero
    codes for the padding channels up to ``channels``."""
    def make() -> np.ndarray:
        codes = layer.kernel_codes()
        pad = [(0, 0), (0, channels - codes.shape[1])] + [(0, 0)] * (codes.ndim - 2)
        return np.pad(codes, pad).transpose(0, 2, 3, 1)

    return derived_constant(layer, ("krsc codes", channels), make)


def _per_channel_constants(layer: IQuantizedConvolutionLayer) -> tuple[cupy.ndarray, ...]:
    """(input_scale * kernel_scale[k], bias[k], output_scale, residual_scale), float32 per
    channel."""
    maps = layer.num_output_maps

    def make() -> np.ndarray:
        per_channel = conv_channel_scale(layer)
        assert per_channel is not None
        scale = np.broadcast_to(float(layer.input_scale) * per_channel, (maps,))
        bias = np.zeros(maps, np.float32)
        if layer.bias.size:
            bias[:] = np.asarray(layer.bias.numpy(), np.float32).reshape(-1)
        output_scale = _output_scale(layer)
        divisor = np.full(maps, output_scale if output_scale > 0 else 1.0)
        residual_scale = np.full(maps, _residual_scale(layer))
        return np.stack([scale, bias, divisor, residual_scale]).astype(np.float32)

    table = derived_constant(layer, "cudnn int8 epilogue", make)
    return table[0], table[1], table[2], table[3]


def _run(layer: IQuantizedConvolutionLayer, inputs: list[cupy.ndarray | None],
         fallback: Callable[[], list[cupy.ndarray]]) -> list[cupy.ndarray]:
    x = inputs[0]
    assert x is not None
    residual = inputs[1] if len(inputs) > 1 else None
    graph = _graph(layer, tuple(x.shape), None if residual is None else residual.dtype)
    if graph is None:
        return fallback()
    shapes = _geometry(layer, _padded(tuple(x.shape)))
    assert shapes is not None
    out = empty_channels_last(shapes[1], nptype(_output_type(layer)))
    scale, bias, inverse, residual_scale = _per_channel_constants(layer)
    padded = _padded_input(x)
    pack = {graph.x: padded, graph.w: _krsc_codes(layer, padded.shape[1]), graph.scale: scale,
            graph.bias: bias, graph.y: out}
    if graph.r is not None:
        pack[graph.r] = channels_last(residual)
    if graph.inverse is not None:
        pack[graph.inverse] = inverse
    if graph.residual_scale is not None:
        pack[graph.residual_scale] = residual_scale
    cudnn_conv.execute(graph.graph, pack, graph.workspace_bytes)
    return [out]


def _channels_last_inputs(inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray | None]:
    """The inputs as a network of these tactics hands them over: channels-last (timing)."""
    return [a if a is None or a.ndim != 4 else channels_last(a) for a in inputs]


@kernel(LayerType.QUANTIZED_CONVOLUTION, backend="gpu", name="gpu.quantized_conv_int8_cudnn",
        supports=_fits, source="CUDNN")
def quantized_convolution_cudnn(layer: ILayer, inputs: list[cupy.ndarray | None]
                                ) -> list[cupy.ndarray]:
    assert isinstance(layer, IQuantizedConvolutionLayer)
    return _run(layer, inputs, lambda: quantized_convolution(layer, inputs))


quantized_convolution_cudnn.timing_inputs = _channels_last_inputs  # type: ignore[attr-defined]


@kernel(LayerType.FUSED_QUANTIZED_CONVOLUTION, backend="gpu",
        name="gpu.fused_quantized_conv_int8_cudnn", supports=_fits, source="CUDNN")
def fused_quantized_convolution_cudnn(layer: ILayer, inputs: list[cupy.ndarray | None]
                                      ) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedQuantizedConvolutionLayer)
    return _run(layer, inputs, lambda: fused_quantized_convolution(layer, inputs))


fused_quantized_convolution_cudnn.timing_inputs = _channels_last_inputs  # type: ignore[attr-defined]
