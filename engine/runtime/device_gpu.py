"""The GPU target's device layer: device memory views, streams, weights, and CUDA graphs.

- Weights are uploaded once per engine (``upload_engine_weights``, when the engine is made).
- ``execute`` wraps the caller's stream handle (``cupy.cuda.ExternalStream``) and enqueues
  every kernel on it without waiting. Tensor addresses are device pointers, wrapped as CuPy
  arrays that do not own their memory; I/O tensors located on the HOST are staged through
  pinned buffers.
- Per input-shape signature, the first run is eager (it compiles kernels and makes weight
  copies); the second captures the layers into a CUDA graph, which later runs replay. A graph
  reads from and writes to its own buffers (allocated from a memory pool private to it, so no
  other work can reuse them), so a replay costs a copy in, one graph launch and a copy out.
  Graphs are used only when every kernel of the engine can be captured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cupy
import numpy as np

from engine.errors import EngineError, ExecutionError
from engine.kernels.gpu.capabilities import contiguous, is_capturable
from engine.kernels.gpu.float_fallback import forget_twin
from engine.kernels.gpu.storage import host_storage, storage_dtype, to_storage
from engine.kernels.gpu.stream_gate import StreamGate
from engine.kernels.gpu.weights import forget_derived, upload_weights
from engine.kernels.math_mode import allow_tf32
from engine.kernels.registry import KernelFn
from engine.network.layer import ILayer, TensorInfo
from engine.network.tensor import ITensor
from engine.runtime.device_cpu import host_array
from engine.runtime.profiler import LayerTimer
from engine.types import Dims, TensorLocation, from_numpy_dtype, nbytes_of, nptype

if TYPE_CHECKING:
    from engine.runtime.engine import ICudaEngine


def upload_engine_weights(engine: ICudaEngine) -> int:
    """Put the engine's weights on the device (once per engine, and again after a refit);
    returns their bytes. Contexts drop their CUDA graphs when the weights change, since a
    graph holds the addresses of the weights it was captured with."""
    engine._weights_generation = getattr(engine, "_weights_generation", 0) + 1
    for layer, _ in engine._steps:
        forget_twin(layer)  # a BF16/FP8 layer's FLOAT twin holds a copy of the old weights
        forget_derived(layer)  # kernel layouts (KRSC, padded codes) made from the old ones
    return upload_weights(layer for layer, _ in engine._steps)


def _elapsed(start: cupy.cuda.Event, end: cupy.cuda.Event) -> Callable[[], float]:
    """Milliseconds between two recorded events, read once the later one has completed."""
    def read() -> float:
        end.synchronize()
        return float(cupy.cuda.get_elapsed_time(start, end))
    return read


def device_array(address: int, shape: tuple[int, ...], dtype: Any, owner: Any = None
                 ) -> cupy.ndarray:
    """A CuPy array over device memory at ``address`` that it does not own."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes == 0:
        return cupy.empty(shape, dtype)
    memory = cupy.cuda.UnownedMemory(address, nbytes, owner)
    return cupy.ndarray(shape, dtype, cupy.cuda.MemoryPointer(memory, 0))


class _StreamHandle:
    """A raw ``cudaStream_t`` presented through the CUDA stream protocol."""

    def __init__(self, handle: int) -> None:
        self.handle = handle

    def __cuda_stream__(self) -> tuple[int, int]:
        return (0, self.handle)


def stream_from_handle(handle: int) -> cupy.cuda.Stream:
    """The CuPy stream for a CUDA stream handle (0: the legacy default stream)."""
    if not handle:
        return cupy.cuda.Stream.null
    from_external = getattr(cupy.cuda.Stream, "from_external", None)
    if from_external is not None:  # CuPy 14 deprecates ExternalStream for this
        return from_external(_StreamHandle(handle))
    return cupy.cuda.ExternalStream(handle)


_DIRECT_GRAPHS = 4  # graphs on callers' buffers kept per input-shape signature


@dataclass
class _Graph:
    """A captured graph with the buffers it reads and writes and the pool that owns them."""

    graph: Any
    pool: Any
    inputs: dict[ITensor, cupy.ndarray]
    outputs: dict[ITensor, cupy.ndarray]


@dataclass
class _Signature:
    """Everything fixed by one set of input shapes."""

    infos: Mapping[ITensor, TensorInfo]
    steps: list[tuple[ILayer, KernelFn]]
    known: dict[ITensor, np.ndarray]          # values inference knows (shape arithmetic)
    constants: dict[ITensor, cupy.ndarray]    # device copies of those consumed as data
    last_use: dict[ITensor, int]
    eager_runs: int = 0
    graph: _Graph | None = None
    graph_failed: str | None = None
    direct: dict[tuple[int, ...], _Graph] = field(default_factory=dict)
    keep: list[Any] = field(default_factory=list)


class _Staging:
    """A pinned host buffer for one HOST-located I/O tensor, reused once its last copy is
    done."""

    def __init__(self, nbytes: int) -> None:
        self.memory = cupy.cuda.alloc_pinned_memory(max(nbytes, 1))
        self.nbytes = nbytes
        self.done: cupy.cuda.Event | None = None

    def array(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        if self.done is not None:
            self.done.synchronize()
        count = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(self.memory, np.dtype(dtype), count).reshape(shape)


class GpuExecution:
    """Per-context execution on the GPU."""

    def __init__(self, engine: ICudaEngine) -> None:
        self._engine = engine
        self._capturable = all(is_capturable(run) for _, run in engine._steps)
        self._use_graphs = True
        self._signatures: dict[tuple[tuple[int, ...], ...], _Signature] = {}
        self._staging: dict[str, _Staging] = {}
        self._streams: dict[int, cupy.cuda.Stream] = {}
        self._weights_generation = getattr(engine, "_weights_generation", 0)
        self._infer_stream: cupy.cuda.Stream | None = None
        self._capture_stream: cupy.cuda.Stream | None = None
        # The end of this context's last run: a run on another stream waits for it, since
        # graph buffers and pinned staging buffers are reused from run to run.
        self._last_run: cupy.cuda.Event | None = None
        self.profiling = False  # a profiler is set on the context: time every layer
        self.timer: LayerTimer | None = None  # the last run's layer times, when profiling
        self._gate: StreamGate | None = None
        # context.set_input_consumed_event: a CUDA event recorded once a run has read its
        # inputs (0: none), and whether this run has recorded it yet
        self.input_consumed_event = 0
        self._consumed_recorded = False
        self.debug: dict[ITensor, str] = {}  # debug tensors reported to debug_listener
        self.debug_listener: Any = None

    @property
    def use_cuda_graphs(self) -> bool:
        return self._use_graphs and self._capturable

    @use_cuda_graphs.setter
    def use_cuda_graphs(self, value: bool) -> None:
        self._use_graphs = bool(value)

    # -- the two entry points ---------------------------------------------------------------
    def accept_input(self, name: str, value: Any) -> Any:
        """``context.infer``'s feed: CuPy arrays as they are, anything else as NumPy (it is
        copied to the device with the run)."""
        return value if isinstance(value, cupy.ndarray) else host_storage(np.asarray(value))

    @staticmethod
    def storage_dtype(dtype: Any) -> np.dtype:
        """The array type ``infer`` takes and gives for a tensor of ``dtype`` (BF16, FP8: their
        bit patterns as uint16, uint8, as the device holds them)."""
        return storage_dtype(dtype)

    def infer(self, feeds: dict[ITensor, Any],
              infos: Mapping[ITensor, TensorInfo]) -> dict[ITensor, cupy.ndarray]:
        if self._infer_stream is None:
            self._infer_stream = cupy.cuda.Stream(non_blocking=True)
        stream = self._infer_stream
        # Feeds made on the caller's stream must be ready before this stream reads them.
        stream.wait_event(cupy.cuda.get_current_stream().record())
        with stream:
            self._after_last_run(stream)
            arrays = {t: cupy.asarray(a) for t, a in feeds.items()}
            results, static = self._run(self._signature(infos), arrays)
            outputs = {t: (r.copy() if static else r) for t, r in results.items()}
            self._last_run = stream.record()
        stream.synchronize()
        return outputs

    def execute(self, infos: Mapping[ITensor, TensorInfo], addresses: Mapping[str, int],
                stream_handle: int) -> None:
        """The pointer path: enqueue on ``stream_handle``; returns without waiting."""
        engine = self._engine
        stream = self._streams.get(stream_handle)
        if stream is None:
            stream = self._streams[stream_handle] = stream_from_handle(stream_handle)
        # The plan's math mode also while a graph is captured on the caller's buffers.
        with stream, allow_tf32(self._engine._allows_tf32):
            self._after_last_run(stream)
            self._consumed_recorded = False
            signature = self._signature(infos)
            if not (self.profiling or self.debug) and \
                    self._replay_direct(signature, addresses, stream):
                self._inputs_consumed(stream)  # the graph reads them until it ends
                self._last_run = stream.record()
                return
            feeds = {}
            for t in engine._input_tensors():
                shape, dtype = infos[t].shape, storage_dtype(t.dtype)
                address = addresses.get(t.name, 0)
                if engine.get_tensor_location(t.name) == TensorLocation.HOST:
                    feeds[t] = self._stage_in(t, address, shape, dtype, stream)
                else:
                    feeds[t] = device_array(address, shape, dtype)
            results, _ = self._run(signature, feeds)
            for t in engine._output_tensors():
                result = contiguous(results[t])
                address = addresses.get(t.name, 0)
                if engine.get_tensor_location(t.name) == TensorLocation.HOST:
                    self._stage_out(t, address, result, stream)
                elif result.nbytes:
                    target = device_array(address, result.shape, result.dtype)
                    target.data.copy_from_device_async(result.data, result.nbytes, stream)
            # After the output copies: an output may be a view of an input (a reshape).
            self._inputs_consumed(stream)
            self._last_run = stream.record()

    # -- graphs on the caller's buffers --------------------------------------------------------
    def _replay_direct(self, signature: _Signature, addresses: Mapping[str, int],
                       stream: cupy.cuda.Stream) -> bool:
        """Replay (capturing it first if need be) a graph that reads the inputs from and
        writes the outputs to the caller's device buffers: one launch, no copies. Used from
        the second run with the same addresses; at most ``_DIRECT_GRAPHS`` address sets per
        signature (callers that move their buffers every run take the copying graph)."""
        engine = self._engine
        if not self.use_cuda_graphs or signature.graph_failed is not None or \
                signature.eager_runs == 0:
            return False
        tensors = engine._input_tensors() + engine._output_tensors()
        if any(engine.get_tensor_location(t.name) == TensorLocation.HOST for t in tensors):
            return False
        key = tuple(int(addresses.get(t.name, 0)) for t in tensors)
        graph = signature.direct.get(key)
        if graph is None:
            if len(signature.direct) >= _DIRECT_GRAPHS or not all(key):
                return False
            graph = self._capture_direct(signature, addresses)
            if graph is None:
                return False
            signature.direct[key] = graph
        graph.graph.launch(stream)
        return True

    def _capture_direct(self, signature: _Signature, addresses: Mapping[str, int]
                        ) -> _Graph | None:
        engine = self._engine
        if self._capture_stream is None:
            self._capture_stream = cupy.cuda.Stream(non_blocking=True)
        stream = self._capture_stream
        pool = cupy.cuda.MemoryPool()
        feeds = {t: device_array(addresses[t.name], signature.infos[t].shape,
                                 storage_dtype(t.dtype))
                 for t in engine._input_tensors()}
        with cupy.cuda.using_allocator(pool.malloc), stream:
            stream.begin_capture()
            try:
                results = self._enqueue(signature, feeds)
                outputs = {}
                for t in engine._output_tensors():
                    result = contiguous(results[t])
                    target = device_array(addresses[t.name], result.shape, result.dtype)
                    if result.nbytes:
                        target.data.copy_from_device_async(result.data, result.nbytes, stream)
                    outputs[t] = target
            except Exception as exc:  # noqa: BLE001 - any failure: run this signature eagerly
                try:
                    stream.end_capture()
                except Exception:  # noqa: BLE001, S110 - the capture is already invalid
                    pass
                signature.graph_failed = f"{type(exc).__name__}: {exc}"
                return None
            graph = stream.end_capture()
        return _Graph(graph, pool, feeds, outputs)

    def _after_last_run(self, stream: cupy.cuda.Stream) -> None:
        if self._last_run is not None:
            stream.wait_event(self._last_run)

    # -- host-located I/O ---------------------------------------------------------------------
    def _staging_for(self, name: str, nbytes: int) -> _Staging:
        staging = self._staging.get(name)
        if staging is None or staging.nbytes < nbytes:
            staging = self._staging[name] = _Staging(nbytes)
        return staging

    def _stage_in(self, t: ITensor, address: int, shape: tuple[int, ...], dtype: Any,
                  stream: cupy.cuda.Stream) -> cupy.ndarray:
        staging = self._staging_for(t.name, nbytes_of(t.dtype, shape))
        pinned = staging.array(shape, dtype)
        np.copyto(pinned, host_storage(host_array(address, shape, t.dtype)))
        device = cupy.empty(shape, dtype)
        device.set(pinned, stream)
        staging.done = stream.record()
        return device

    def _stage_out(self, t: ITensor, address: int, result: cupy.ndarray,
                   stream: cupy.cuda.Stream) -> None:
        staging = self._staging_for(t.name, result.nbytes)
        pinned = staging.array(result.shape, result.dtype)
        result.get(stream=stream, out=pinned)
        target = host_storage(host_array(address, result.shape, t.dtype))
        # The copy to the caller's host memory runs once the stream reaches it (no waiting).
        stream.launch_host_func(lambda _: np.copyto(target, pinned), None)
        staging.done = stream.record()

    # -- signatures, eager runs and graphs ----------------------------------------------------
    def _signature(self, infos: Mapping[ITensor, TensorInfo]) -> _Signature:
        engine = self._engine
        generation = getattr(engine, "_weights_generation", 0)
        if generation != self._weights_generation:  # refitted: graphs hold old weights
            self._signatures.clear()
            self._weights_generation = generation
        key = tuple(infos[t].shape for t in engine._input_tensors())
        signature = self._signatures.get(key)
        if signature is not None:
            return signature
        known: dict[ITensor, np.ndarray] = {}
        steps: list[tuple[ILayer, KernelFn]] = []
        for layer, run in engine._steps:
            values = [infos[t].value for t in layer._outputs]
            if all(v is not None for v in values):
                known.update(zip(layer._outputs, values))  # type: ignore[arg-type]
            else:
                steps.append((layer, run))
        consumed = {t for layer, _ in steps for i, t in enumerate(layer._inputs)
                    if t is not None and i not in layer._shape_inputs}
        consumed |= set(engine._output_tensors())
        constants = {t: cupy.asarray(host_storage(np.asarray(v, nptype(t.dtype))))
                     for t, v in known.items() if t in consumed}
        last_use: dict[ITensor, int] = {}
        for index, (layer, _) in enumerate(steps):
            for t in layer._inputs:
                if t is not None:
                    last_use[t] = index
        signature = _Signature(infos, steps, known, constants, last_use)
        self._signatures[key] = signature
        return signature

    def _run(self, signature: _Signature, feeds: dict[ITensor, cupy.ndarray]
             ) -> tuple[dict[ITensor, cupy.ndarray], bool]:
        """Enqueue one run on the current stream; returns the outputs and whether they are a
        graph's buffers (valid until the next run of this context). Kernels enqueue in the
        math mode the plan was built for (TF32 where its BuilderFlag.TF32 allowed it)."""
        with allow_tf32(self._engine._allows_tf32):
            return self._run_in_mode(signature, feeds)

    def _run_in_mode(self, signature: _Signature, feeds: dict[ITensor, cupy.ndarray]
                     ) -> tuple[dict[ITensor, cupy.ndarray], bool]:
        stream = cupy.cuda.get_current_stream()
        if self.profiling:  # layer by layer between events, behind a gate: no graph
            self.timer = LayerTimer()
            self._gate = StreamGate()  # kept until the next profiled run: the report waits for it
            try:
                return self._enqueue(signature, feeds, self.timer), False
            finally:
                self._gate.open()
        self.timer = None
        if self.debug:  # the listener is called between layers: no graph
            return self._enqueue(signature, feeds), False
        if not self.use_cuda_graphs or signature.graph_failed is not None:
            return self._enqueue(signature, feeds), False
        if signature.graph is None:
            if signature.eager_runs == 0:
                signature.eager_runs += 1
                return self._enqueue(signature, feeds), False
            self._capture(signature, feeds)
            if signature.graph is None:
                return self._enqueue(signature, feeds), False
        graph = signature.graph
        for t, array in feeds.items():
            source = contiguous(array)
            if source.nbytes:
                graph.inputs[t].data.copy_from_device_async(source.data, source.nbytes, stream)
        self._inputs_consumed(stream)  # the graph reads its own copies: the caller's are free
        graph.graph.launch(stream)
        return graph.outputs, True

    def _inputs_consumed(self, stream: cupy.cuda.Stream) -> None:
        """Record the input-consumed event on ``stream`` (once per run) if one is set."""
        if self.input_consumed_event and not self._consumed_recorded:
            cupy.cuda.runtime.eventRecord(self.input_consumed_event, stream.ptr)
            self._consumed_recorded = True

    def _capture(self, signature: _Signature, feeds: dict[ITensor, cupy.ndarray]) -> None:
        if self._capture_stream is None:
            self._capture_stream = cupy.cuda.Stream(non_blocking=True)
        stream = self._capture_stream
        pool = cupy.cuda.MemoryPool()
        with cupy.cuda.using_allocator(pool.malloc), stream:
            inputs = {t: cupy.empty(a.shape, a.dtype) for t, a in feeds.items()}
            stream.begin_capture()
            try:
                outputs = self._enqueue(signature, inputs)
            except Exception as exc:  # noqa: BLE001 - any failure: run this signature eagerly
                try:
                    stream.end_capture()
                except Exception:  # noqa: BLE001, S110 - the capture is already invalid
                    pass
                signature.graph_failed = f"{type(exc).__name__}: {exc}"
                return
            graph = stream.end_capture()
        signature.graph = _Graph(graph, pool, inputs, outputs)

    def _enqueue(self, signature: _Signature, feeds: dict[ITensor, cupy.ndarray],
                 timer: LayerTimer | None = None) -> dict[ITensor, cupy.ndarray]:
        """Enqueue every layer on the current stream; returns the network outputs. A
        ``timer`` gets each layer's time between two events on the stream."""
        env: dict[ITensor, Any] = dict(signature.constants)
        env.update(feeds)
        outputs = set(self._engine._output_tensors())
        for index, (layer, run) in enumerate(signature.steps):
            args: list[Any] = []
            for position, t in enumerate(layer._inputs):
                if t is None:
                    args.append(None)
                elif position in layer._shape_inputs and t in signature.known:
                    args.append(signature.known[t])
                else:
                    args.append(env[t])
            start = None if timer is None else cupy.cuda.get_current_stream().record()
            try:
                results = run(layer, args)
            except EngineError:
                raise
            except Exception as exc:  # a kernel failing on these inputs: report, do not crash
                raise ExecutionError(f"layer '{layer.name}' ({layer.layer_type.name}) failed "
                                     f"on the GPU: {type(exc).__name__}: {exc}") from exc
            if timer is not None:
                timer.add(layer.name, _elapsed(start, cupy.cuda.get_current_stream().record()))
            for t, value in zip(layer._outputs, results):
                value = value if isinstance(value, cupy.ndarray) else \
                    cupy.asarray(host_storage(np.asarray(value)))
                env[t] = to_storage(value, t.dtype)
                if t in self.debug:
                    shown = contiguous(env[t])  # alive until the listener returns
                    self.debug_listener.process_debug_tensor(
                        shown.data.ptr, TensorLocation.DEVICE, from_numpy_dtype(shown.dtype),
                        Dims(shown.shape), self.debug[t], cupy.cuda.get_current_stream().ptr)
            for t in layer._inputs:
                if t is not None and signature.last_use.get(t) == index and t not in outputs:
                    env.pop(t, None)
        return {t: env[t] for t in self._engine._output_tensors()}
