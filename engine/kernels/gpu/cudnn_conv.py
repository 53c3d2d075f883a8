"""Convolution tactics on cuDNN, through its frontend's graph API (``nvidia-cudnn-frontend``,
imported as ``cudnn``; TacticSource.CUDNN).

A convolution layer, or a fused convolution with its bias, residual and activation, becomes
one cuDNN operation graph: ``conv_fprop -> bias -> add(residual) -> activation``, which cuDNN
runs as one fused kernel where its engines allow (FP16 and BF16 on tensor cores, FP32
accumulation; BF16 tensors are their uint16 patterns, see ``bf16.py``).
Graphs are built once per layer geometry and thread (a cuDNN handle is per thread and
device), on the first call; later calls only bind pointers and enqueue on the current stream,
so they are captured into the engine's CUDA graphs like every other kernel.

Format: the tactic computes channels-last (NHWC), where cuDNN's tensor-core kernels are
fastest. Its output keeps the layer's logical shape ``[N, K, H, W]`` with NHWC strides (a
transposed view, as PyTorch's ``channels_last``), so the next cuDNN convolution reads it
without a reformat; an input in NCHW order is reformatted once, and kernels that need C
order copy (``contiguous``). The kernel is kept in KRSC order on the device.

The tactic exists only where the frontend imports and makes a handle (on the device machine
from a wheel, with the libcudnn that comes with the CUDA stack); elsewhere its ``supports``
says no and the builder keeps the cuBLAS tactics. A geometry cuDNN does not support fails
while timing, and the builder drops the tactic for that layer.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import cupy
import ml_dtypes
import numpy as np

from engine.kernels import choices
from engine.kernels.gpu import bf16
from engine.kernels.gpu.capabilities import (
    channels_last,
    empty_channels_last,
    probe,
)
from engine.kernels.gpu.capabilities import channels_last_strides as _nhwc
from engine.kernels.gpu.fused_conv import (
    convolution_columns,
    fused_convolution_columns,
    uniform_float_2d_convolution,
)
from engine.kernels.gpu.stream_gate import StreamGate
from engine.kernels.gpu.weights import derived_constant, device_weights
from engine.kernels.math_mode import tf32_allowed
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.fused import IFusedConvolutionLayer, epilogue_of
from engine.network.layers.math_pointwise import ActivationType
from engine.network.layers.spatial_conv import IConvolutionLayer
from engine.network.layers.spatial_window import PaddingMode, dilated_extent

ACTIVATIONS = (ActivationType.RELU, ActivationType.SIGMOID, ActivationType.TANH,
               ActivationType.LEAKY_RELU, ActivationType.GELU_ERF, ActivationType.GELU_TANH)


def _cudnn() -> Any:
    import cudnn  # the frontend's Python module; optional

    return cudnn


@functools.cache
def available() -> bool:
    """Whether cuDNN's frontend imports and makes a handle on the current device (asked once)."""
    return probe(_handle)


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.handles: dict[int, Any] = {}
        self.graphs: dict[tuple, Any] = {}  # built graphs (of any kind); None: cuDNN has none
        self.choice_key: str | None = None  # the plan choice of the graph being built


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
        cudnn, graph, io = new_graph(dtype)
        self.x = graph.tensor(name="x", dim=list(x), stride=_nhwc(x), data_type=io)
        self.w = graph.tensor(name="w", dim=list(w), stride=_nhwc(w), data_type=io)
        y = graph.conv_fprop(image=self.x, weight=self.w, pre_padding=pre, post_padding=post,
                             stride=stride, dilation=dilation,
                             compute_data_type=cudnn.data_type.FLOAT)
        self.b = self.r = None
        if bias:
            shape = (1, w[0]) + (1,) * (len(w) - 2)
            self.b = graph.tensor(name="b", dim=list(shape), stride=_nhwc(shape),
                                  data_type=io)
            y = graph.bias(input=y, bias=self.b)
        if residual:
            self.r = graph.tensor(name="r", dim=list(out), stride=_nhwc(out), data_type=io)
            y = graph.add(a=y, b=self.r)
        y = activate(cudnn, graph, y, activation, alpha)
        y.set_output(True).set_data_type(io).set_dim(list(out)).set_stride(_nhwc(out))
        self.y = y
        self.graph = graph
        self.workspace_bytes = finish_graph(
            cudnn, graph, dtype, [t for t in (self.x, self.w, self.b, self.r, y) if t is not None])

    def run(self, x: cupy.ndarray, w: cupy.ndarray, b: cupy.ndarray | None,
            r: cupy.ndarray | None, out: cupy.ndarray) -> None:
        pack = {self.x: x, self.w: w, self.y: out}
        if self.b is not None:
            pack[self.b] = b
        if self.r is not None:
            pack[self.r] = r
        execute(self.graph, pack, self.workspace_bytes)


def cached_graph(key: tuple, build: Callable[[], Any]) -> Any:
    """This thread's built graph for ``key`` (the device is part of it), or None where cuDNN
    has no engine for it (remembered, so it is asked once). ``build`` ends in
    ``finish_graph``, which picks the graph's execution plan under ``key``."""
    key = (tf32_allowed(),) + key  # FP32 graphs differ in the engines they may use
    device_key = (cupy.cuda.Device().id,) + key
    if device_key not in _LOCAL.graphs:
        _LOCAL.choice_key = _choice_key(key)
        try:
            _LOCAL.graphs[device_key] = build()
        except Exception:  # noqa: BLE001 - cuDNN has no engine for it: not this tactic's
            _LOCAL.graphs[device_key] = None
        finally:
            _LOCAL.choice_key = None
    elif _LOCAL.graphs[device_key] is not None and choices.recording_in_progress():
        choices.lookup(_choice_key(key))  # a build in progress records the plan it uses
    return _LOCAL.graphs[device_key]


def _choice_key(key: tuple) -> str:
    """The name of a graph's plan choice: its geometry, and the cuDNN version that ranks
    the plans (a plan name is only meaningful to the library that listed it)."""
    return f"cudnn {_cudnn().backend_version()} {key!r}"


def new_graph(dtype: np.dtype) -> tuple[Any, Any, Any]:
    """(cudnn module, an empty graph on this thread's handle computing in FP32, io type:
    HALF for float16, BFLOAT16 for uint16 (BF16 patterns), else FLOAT)."""
    cudnn = _cudnn()
    io = {np.dtype(np.float16): cudnn.data_type.HALF,
          bf16.STORAGE: cudnn.data_type.BFLOAT16}.get(np.dtype(dtype), cudnn.data_type.FLOAT)
    graph = cudnn.pygraph(io_data_type=io, intermediate_data_type=cudnn.data_type.FLOAT,
                          compute_data_type=cudnn.data_type.FLOAT, handle=_handle())
    return cudnn, graph, io


def activate(cudnn: Any, graph: Any, y: Any, activation: ActivationType | None,
             alpha: float) -> Any:
    """``activation`` of graph tensor ``y`` (one of ``ACTIVATIONS``)."""
    if activation == ActivationType.RELU:
        return graph.relu(input=y)
    if activation == ActivationType.LEAKY_RELU:
        return graph.leaky_relu(input=y, negative_slope=alpha)
    if activation == ActivationType.SIGMOID:
        return graph.sigmoid(input=y)
    if activation == ActivationType.TANH:
        return graph.tanh(input=y)
    if activation == ActivationType.GELU_ERF:
        return graph.gelu(input=y)
    if activation == ActivationType.GELU_TANH:
        return graph.gelu_approx_tanh(input=y)
    return y


# The heuristics whose plans a graph ranks, in order. Without a recorded choice the first
# plan that builds runs (the heuristics' pick); a build above optimization level 0 times
# the first AUTOTUNE_PLANS plans that build and records the fastest (engine.kernels.choices;
# the plan carries it). benchmarks/cudnn_plans.py times every plan against the pick.
PLAN_HEURISTICS = ("A", "B", "FALLBACK")
AUTOTUNE_PLANS = 8


def finish_graph(cudnn: Any, graph: Any, dtype: np.dtype, tensors: list[Any]) -> int:
    """Validate, lower, rank the plans and build the chosen one (see PLAN_HEURISTICS);
    ``tensors``: the graph's inputs and outputs (scratch buffers for timing are made from
    them). Returns the chosen plan's workspace bytes."""
    graph.validate()
    graph.build_operation_graph()
    graph.create_execution_plans([getattr(cudnn.heur_mode, h) for h in PLAN_HEURISTICS])
    if dtype == np.float32 and not tf32_allowed():  # exact FP32 unless TF32 is allowed
        graph.deselect_numeric_notes([cudnn.numerical_note.TENSOR_CORE])
    graph.check_support()
    key = getattr(_LOCAL, "choice_key", None)
    wanted = None if key is None else choices.lookup(key)
    if wanted is not None and _build_named_plan(graph, wanted):
        return max(int(graph.get_workspace_size()), 1)
    if key is not None and choices.tuning() and \
            not cupy.cuda.get_current_stream().is_capturing():
        name = _fastest_plan(graph, tensors)
        if name is not None:
            choices.record(key, name)
            return max(int(graph.get_workspace_size()), 1)
    graph.build_plans()
    return max(int(graph.get_workspace_size()), 1)


def _build_named_plan(graph: Any, name: str) -> bool:
    """Build and select the plan called ``name``; False where the graph has none (a choice
    recorded by another cuDNN build) or it does not build."""
    for index in range(graph.get_execution_plan_count()):
        if graph.get_plan_name_at_index(index) == name:
            try:
                graph.build_plan_at_index(index)
            except Exception:  # noqa: BLE001 - fall back to the heuristics' pick
                return False
            return True
    return False


_DTYPES = {"HALF": np.float16, "FLOAT": np.float32, "INT8": np.int8, "INT32": np.int32,
           "BFLOAT16": np.uint16, "UINT8": np.uint8, "INT64": np.int64}


def _scratch(tensor: Any) -> cupy.ndarray:
    """Zeros with the dims, strides and type of graph tensor ``tensor``."""
    dims, strides = list(tensor.get_dim()), list(tensor.get_stride())
    dtype = np.dtype(_DTYPES[str(tensor.get_data_type()).rsplit(".", 1)[-1]])
    extent = 1 + sum((d - 1) * s for d, s in zip(dims, strides) if d > 0)
    base = cupy.zeros(extent, dtype)
    return cupy.ndarray(tuple(dims), dtype, base.data,
                        strides=tuple(s * dtype.itemsize for s in strides))


def _fastest_plan(graph: Any, tensors: list[Any]) -> str | None:
    """Time the first AUTOTUNE_PLANS plans that build (device time, behind a stream gate, on
    scratch buffers) and build and select the fastest; its name, or None if none built."""
    pack = {t: _scratch(t) for t in tensors}
    handle = _handle()
    _cudnn().set_stream(handle=handle, stream=cupy.cuda.get_current_stream().ptr)
    timed: list[tuple[float, int]] = []
    for index in range(graph.get_execution_plan_count()):
        if len(timed) == AUTOTUNE_PLANS:
            break
        try:
            graph.build_plan_at_index(index)
            workspace = cupy.empty(max(int(graph.get_workspace_size_plan_at_index(index)), 1),
                                   cupy.uint8)

            def run(i: int = index, w: cupy.ndarray = workspace) -> None:
                graph.execute_plan_at_index(pack, w, i, handle=handle)

            run()
            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            gate = StreamGate()
            try:
                start.record()
                for _ in range(5):
                    run()
                end.record()
            finally:
                gate.open()
            end.synchronize()
            timed.append((cupy.cuda.get_elapsed_time(start, end), index))
        except Exception:  # noqa: BLE001, S112 - a plan that cannot run here is no candidate
            continue
    if not timed:
        return None
    best = min(timed)[1]
    graph.build_plan_at_index(best)
    return str(graph.get_plan_name_at_index(best))


def execute(graph: Any, pack: dict[Any, cupy.ndarray], workspace_bytes: int) -> None:
    """Enqueue ``graph`` on the current stream with ``pack``'s device buffers."""
    handle = _handle()
    _cudnn().set_stream(handle=handle, stream=cupy.cuda.get_current_stream().ptr)
    graph.execute(pack, cupy.empty(workspace_bytes, cupy.uint8), handle=handle)


def _graph(layer: IConvolutionLayer, x_shape: tuple[int, ...], dtype: np.dtype,
           residual: bool, activation: ActivationType | None, alpha: float) -> _Graph | None:
    geometry = layer.geometry(x_shape[2:])
    out_shape = (x_shape[0], layer.num_output_maps) + tuple(o for _, _, o in geometry)
    kernel_shape = (layer.num_output_maps, x_shape[1]) + tuple(layer.kernel_size_nd)
    has_bias = bool(layer.bias.size)
    key = ("conv", tuple(x_shape), kernel_shape, tuple(geometry), tuple(layer.stride_nd),
           tuple(layer.dilation_nd), np.dtype(dtype).name, has_bias, residual, activation,
           float(alpha))
    return cached_graph(key, lambda: _Graph(
        tuple(x_shape), kernel_shape, out_shape, [b for b, _, _ in geometry],
        [a for _, a, _ in geometry], list(layer.stride_nd), list(layer.dilation_nd),
        np.dtype(dtype), has_bias, residual, activation, alpha))


_STORAGE: dict[str, np.dtype] = {"FLOAT": np.dtype(np.float32), "HALF": np.dtype(np.float16),
                                  "BF16": bf16.STORAGE}


def _fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConvolutionLayer)
    x = inputs[0]
    if x is None or not uniform_float_2d_convolution(layer, inputs, ACTIVATIONS,
                                                     tuple(_STORAGE)):
        return False
    if x.dtype.name == "BF16" and any(d < 0 for d in x.shape):
        return False  # no cuBLAS fallback in BF16 for shapes cuDNN refuses: the @fp32 form
    spatial = x.shape[-2:]
    if any(d < 0 for d in spatial):
        # cuDNN sizes outputs by rounding down; the SAME modes pad so that it agrees
        return PaddingMode(layer.padding_mode) != PaddingMode.EXPLICIT_ROUND_UP and available()
    if not sizes_agree(layer, spatial) or not available():
        return False
    if any(d < 0 for d in x.shape):
        return True  # a dynamic batch: geometries cuDNN refuses run the cuBLAS fallback
    flat = (int(np.prod(x.shape[:-3])),) + tuple(x.shape[-3:])
    residual = len(inputs) > 3 and inputs[3] is not None
    activation, alpha, _ = epilogue_of(layer)
    return _graph(layer, flat, _STORAGE[x.dtype.name], residual, activation, alpha) is not None


def sizes_agree(layer: IConvolutionLayer, spatial: tuple[int, ...]) -> bool:
    """Whether cuDNN's output size, ``(in + pads - dilated kernel) // stride + 1``, is the
    layer's (a round-up padding mode can make it one larger)."""
    extents = dilated_extent(layer.kernel_size_nd, layer.dilation_nd)
    return all((size + pre + post - extent) // stride + 1 == out
               for size, (pre, post, out), extent, stride in
               zip(spatial, layer.geometry(spatial), extents, layer.stride_nd))


def _krsc(layer: IConvolutionLayer, channels: int, dtype: np.dtype) -> cupy.ndarray:
    """The kernel on the device in KRSC order (``[K, *kernel, C]`` memory), as ``dtype``
    (BF16 as its patterns, rounded to nearest even)."""
    def make() -> np.ndarray:
        k = layer.kernel.numpy().reshape((layer.num_output_maps, channels) +
                                         tuple(layer.kernel_size_nd))
        return _as_storage(k.transpose((0,) + tuple(range(2, k.ndim)) + (1,)), dtype)

    return derived_constant(layer, ("krsc", np.dtype(dtype).name), make)


def _as_storage(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Host ``values`` as the device holds a tensor of ``dtype`` (BF16: rounded patterns)."""
    if np.dtype(dtype) == bf16.STORAGE:
        return np.asarray(values).astype(ml_dtypes.bfloat16).view(bf16.STORAGE)
    return np.asarray(values).astype(dtype)


def _bias(layer: IConvolutionLayer, dtype: np.dtype) -> cupy.ndarray | None:
    if not layer.bias.size:
        return None
    if np.dtype(dtype) != bf16.STORAGE:
        return device_weights(layer.bias, dtype)
    return derived_constant(layer, ("bias", "bf16"),
                            lambda: _as_storage(layer.bias.numpy(), dtype))


@kernel(LayerType.CONVOLUTION, backend="gpu", name="gpu.conv_cudnn",
        supports=_fits, source="CUDNN")
def convolution(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IConvolutionLayer)
    return _run(layer, inputs, lambda: convolution_columns(layer, inputs))


@kernel(LayerType.FUSED_CONVOLUTION, backend="gpu", name="gpu.fused_conv_cudnn",
        supports=_fits, source="CUDNN")
def fused_convolution(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedConvolutionLayer)
    return _run(layer, inputs, lambda: fused_convolution_columns(layer, inputs))


def _channels_last_inputs(inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray | None]:
    """The inputs as a network of these tactics hands them over: channels-last (timing)."""
    return [a if a is None or a.ndim < 3 else channels_last(a) for a in inputs]


convolution.timing_inputs = _channels_last_inputs  # type: ignore[attr-defined]
fused_convolution.timing_inputs = _channels_last_inputs  # type: ignore[attr-defined]


def _run(layer: IConvolutionLayer, inputs: list[cupy.ndarray | None],
         fallback: Callable[[], list[cupy.ndarray]]) -> list[cupy.ndarray]:
    """``activation(conv(x) + bias + residual)`` by one cuDNN graph, channels-last; a shape
    cuDNN refuses (met only with dynamic shapes) runs ``fallback`` (cuBLAS)."""
    x = inputs[0]
    assert x is not None
    residual = inputs[3] if len(inputs) > 3 else None
    activation, alpha, _ = epilogue_of(layer)
    lead = x.shape[:-3]
    flat = x if len(lead) == 1 else x.reshape((int(np.prod(lead)),) + x.shape[-3:])
    graph = _graph(layer, flat.shape, x.dtype, residual is not None, activation, alpha) \
        if sizes_agree(layer, flat.shape[2:]) else None
    if graph is None:
        if x.dtype == bf16.STORAGE:  # _fits takes BF16 only where a graph exists
            raise ValueError(f"cuDNN has no BF16 graph for input shape {flat.shape}")
        return fallback()
    out_shape = (flat.shape[0], layer.num_output_maps) + tuple(
        o for _, _, o in layer.geometry(flat.shape[2:]))
    b = _bias(layer, x.dtype)
    if residual is not None:
        residual = channels_last(residual.reshape(out_shape))
    out = empty_channels_last(out_shape, x.dtype)
    graph.run(channels_last(flat), _krsc(layer, flat.shape[1], x.dtype), b, residual, out)
    return [out if len(lead) == 1 else out.reshape(lead + out_shape[1:])]
