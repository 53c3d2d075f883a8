"""Convolution tactics on cuDNN, through its frontend's graph API (``nvidia-cudnn-frontend``,
imported as ``cudnn``; TacticSource.CUDNN).

A convolution layer, or a fused convolution with its bias, residual and activation, becomes
one cuDNN operation graph: ``conv_fprop -> bias -> add(residual) -> activation``, which cuDNN
runs as one fused kernel where its engines allow (FP16 on tensor cores, FP32 accumulation).
Graphs are built once per layer geometry and thread (a cuDNN handle is per thread and
device), on the first call; later calls only bind pointers and enqueue on the current stream,
so they are captured into the engine's CUDA graphs like every other kernel.

The tactic exists only where the frontend imports and makes a handle (on the device machine
from a wheel, with the libcudnn that comes with the CUDA stack); elsewhere its ``supports``
says no and the builder keeps the cuBLAS tactics. A geometry cuDNN does not support fails
while timing, and the builder drops the tactic for that layer.
"""

from __future__ import annotations

import threading
from typing import Any

import cupy
import numpy as np

from engine.kernels.gpu.capabilities import contiguous
from engine.kernels.gpu.weights import device_weights
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.fused import IFusedConvolutionLayer
from engine.network.layers.math_pointwise import ActivationType
from engine.network.layers.spatial_conv import IConvolutionLayer
from engine.network.layers.spatial_window import PaddingMode, dilated_extent

_AVAILABLE: bool | None = None
_ACTIVATIONS = (ActivationType.RELU, ActivationType.SIGMOID, ActivationType.TANH,
                ActivationType.LEAKY_RELU)


def _cudnn() -> Any:
    import cudnn  # the frontend's Python module; optional

    return cudnn


def available() -> bool:
    """Whether cuDNN's frontend imports and makes a handle on the current device."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            _handle()
            _AVAILABLE = True
        except Exception:  # noqa: BLE001 - no frontend, no libcudnn, no device: no tactic
            _AVAILABLE = False
    return _AVAILABLE


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.handles: dict[int, Any] = {}
        self.graphs: dict[tuple, _Graph] = {}


_LOCAL = _PerThread()


def _handle() -> Any:
    device = cupy.cuda.Device().id
    handle = _LOCAL.handles.get(device)
    if handle is None:
        handle = _LOCAL.handles[device] = _cudnn().create_handle()
    return handle


class _Graph:
    """One built cuDNN graph and its tensors, for one geometry on one thread and device."""

    def __init__(self, x: tuple[int, ...], w: tuple[int, ...], out: tuple[int, ...],
                 pre: list[int], post: list[int], stride: list[int], dilation: list[int],
                 dtype: np.dtype, bias: bool, residual: bool,
                 activation: ActivationType | None, alpha: float) -> None:
        cudnn = _cudnn()
        io = cudnn.data_type.HALF if dtype == np.float16 else cudnn.data_type.FLOAT
        self.handle = _handle()
        graph = cudnn.pygraph(io_data_type=io, intermediate_data_type=cudnn.data_type.FLOAT,
                              compute_data_type=cudnn.data_type.FLOAT, handle=self.handle)
        self.x = graph.tensor(name="x", dim=list(x), stride=_strides(x), data_type=io)
        self.w = graph.tensor(name="w", dim=list(w), stride=_strides(w), data_type=io)
        y = graph.conv_fprop(image=self.x, weight=self.w, pre_padding=pre, post_padding=post,
                             stride=stride, dilation=dilation,
                             compute_data_type=cudnn.data_type.FLOAT)
        self.b = self.r = None
        if bias:
            shape = (1, w[0]) + (1,) * (len(w) - 2)
            self.b = graph.tensor(name="b", dim=list(shape), stride=_strides(shape),
                                  data_type=io)
            y = graph.bias(input=y, bias=self.b)
        if residual:
            self.r = graph.tensor(name="r", dim=list(out), stride=_strides(out), data_type=io)
            y = graph.add(a=y, b=self.r)
        if activation == ActivationType.RELU:
            y = graph.relu(input=y)
        elif activation == ActivationType.LEAKY_RELU:
            y = graph.leaky_relu(input=y, negative_slope=alpha)
        elif activation == ActivationType.SIGMOID:
            y = graph.sigmoid(input=y)
        elif activation == ActivationType.TANH:
            y = graph.tanh(input=y)
        y.set_output(True).set_data_type(io).set_dim(list(out)).set_stride(_strides(out))
        self.y = y
        graph.validate()
        graph.build_operation_graph()
        graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        if dtype == np.float32:  # FP32 stays FP32, as the cuBLAS tactics keep it (no TF32)
            graph.deselect_numeric_notes([cudnn.numerical_note.TENSOR_CORE])
        graph.check_support()
        graph.build_plans()
        self.graph = graph
        self.workspace_bytes = max(int(graph.get_workspace_size()), 1)

    def run(self, x: cupy.ndarray, w: cupy.ndarray, b: cupy.ndarray | None,
            r: cupy.ndarray | None, out: cupy.ndarray) -> None:
        cudnn = _cudnn()
        cudnn.set_stream(handle=self.handle, stream=cupy.cuda.get_current_stream().ptr)
        pack = {self.x: x, self.w: w, self.y: out}
        if self.b is not None:
            pack[self.b] = b
        if self.r is not None:
            pack[self.r] = r
        workspace = cupy.empty(self.workspace_bytes, cupy.uint8)
        self.graph.execute(pack, workspace, handle=self.handle)


def _strides(shape: tuple[int, ...]) -> list[int]:
    """Row-major strides of ``shape``, in elements."""
    out, step = [], 1
    for d in reversed(shape):
        out.append(step)
        step *= max(int(d), 1)
    return out[::-1]


def _fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConvolutionLayer)
    x = inputs[0]
    if x is None or x.dtype.name not in ("FLOAT", "HALF") or \
            any(t.name != x.dtype.name for t in layer._output_types.values()):
        return False
    if len(layer.kernel_size_nd) != 2 or layer.num_groups != 1 or \
            any(i is not None for i in inputs[1:3]) or not layer.check_weights(inputs):
        return False
    activation = getattr(layer, "activation", None)
    if activation is not None and ActivationType(activation) not in _ACTIVATIONS:
        return False
    spatial = x.shape[-2:]
    if any(d < 0 for d in spatial):
        # cuDNN sizes outputs by rounding down; the SAME modes pad so that it agrees
        if PaddingMode(layer.padding_mode) == PaddingMode.EXPLICIT_ROUND_UP:
            return False
    elif not _sizes_agree(layer, spatial):
        return False
    return available()


def _sizes_agree(layer: IConvolutionLayer, spatial: tuple[int, ...]) -> bool:
    """Whether cuDNN's output size, ``(in + pads - dilated kernel) // stride + 1``, is the
    layer's (a round-up padding mode can make it one larger)."""
    extents = dilated_extent(layer.kernel_size_nd, layer.dilation_nd)
    return all((size + pre + post - extent) // stride + 1 == out
               for size, (pre, post, out), extent, stride in
               zip(spatial, layer.geometry(spatial), extents, layer.stride_nd))


def run_convolution(layer: IConvolutionLayer, x: cupy.ndarray, residual: cupy.ndarray | None,
                    activation: ActivationType | None, alpha: float) -> cupy.ndarray:
    """``activation(conv(x) + bias + residual)`` for ``x`` ``[..., C, H, W]`` by one cuDNN
    graph; the output keeps ``x``'s leading axes."""
    lead = x.shape[:-3]
    x = contiguous(x.reshape((int(np.prod(lead)),) + x.shape[-3:]))
    if not _sizes_agree(layer, x.shape[2:]):
        raise ValueError(f"cuDNN cannot size the output of {x.shape} with padding mode "
                         f"{PaddingMode(layer.padding_mode).name}")
    geometry = layer.geometry(x.shape[2:])
    out_shape = (x.shape[0], layer.num_output_maps) + tuple(o for _, _, o in geometry)
    kernel_shape = (layer.num_output_maps, x.shape[1]) + tuple(layer.kernel_size_nd)
    has_bias = bool(layer.bias.size)
    key = (cupy.cuda.Device().id, x.shape, kernel_shape, tuple(geometry),
           tuple(layer.stride_nd), tuple(layer.dilation_nd), x.dtype.name, has_bias,
           residual is not None, activation, float(alpha))
    graph = _LOCAL.graphs.get(key)
    if graph is None:
        graph = _LOCAL.graphs[key] = _Graph(
            x.shape, kernel_shape, out_shape, [b for b, _, _ in geometry],
            [a for _, a, _ in geometry], list(layer.stride_nd), list(layer.dilation_nd),
            x.dtype, has_bias, residual is not None, activation, alpha)
    w = device_weights(layer.kernel, x.dtype).reshape(kernel_shape)
    b = device_weights(layer.bias, x.dtype) if has_bias else None
    if residual is not None:
        residual = contiguous(residual.reshape(out_shape))
    out = cupy.empty(out_shape, x.dtype)
    graph.run(x, w, b, residual, out)
    return out.reshape(lead + out_shape[1:])


@kernel(LayerType.CONVOLUTION, backend="gpu", name="gpu.conv_cudnn",
        supports=_fits, source="CUDNN")
def convolution(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IConvolutionLayer)
    return [run_convolution(layer, inputs[0], None, None, 0.0)]  # type: ignore[arg-type]


@kernel(LayerType.FUSED_CONVOLUTION, backend="gpu", name="gpu.fused_conv_cudnn",
        supports=_fits, source="CUDNN")
def fused_convolution(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedConvolutionLayer)
    residual = inputs[3] if len(inputs) > 3 else None
    activation = None if layer.activation is None else ActivationType(layer.activation)
    return [run_convolution(layer, inputs[0], residual, activation,  # type: ignore[arg-type]
                            layer.alpha)]
