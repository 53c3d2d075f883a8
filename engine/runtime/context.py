"""``IExecutionContext``: per-invocation state (input shapes, tensor addresses) and execution.

>>> import engine as trt, numpy as np
>>> builder = trt.Builder(trt.Logger())
>>> network = builder.create_network(0)
>>> x = network.add_input("x", trt.float32, (2,))
>>> network.mark_output(network.add_identity(x).get_output(0))
>>> plan = builder.build_serialized_network(network, builder.create_builder_config())
>>> context = trt.Runtime(trt.Logger()).deserialize_cuda_engine(plan).create_execution_context()
>>> context.infer({"x": np.array([1, 2], np.float32)})  # doctest: +NORMALIZE_WHITESPACE
{'(Unnamed Layer* 0) [Identity]_output': array([1., 2.], dtype=float32)}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.error_recorder import ErrorCodeTRT, record_error
from engine.errors import EngineError, ExecutionError, NetworkError
from engine.logger import Severity, log
from engine.network.inference import infer_all
from engine.network.layer import TensorInfo
from engine.network.tensor import ITensor
from engine.plugins.execution import running_context
from engine.runtime.device_cpu import CpuExecution, host_array  # noqa: F401 - host_array re-exported
from engine.runtime.engine import ICudaEngine
from engine.runtime.output_allocator import (
    execute_with_allocators,
    read_shape_inputs,
    set_shape_input_values,
    shape_input_value,
)
from engine.runtime.profiler import IDebugListener, IProfiler, report
from engine.types import Dims, TensorIOMode, nbytes_of


class _ProfileEngine:
    """The engine as one of its optimization profiles runs it: that profile's tactics."""

    def __init__(self, engine: ICudaEngine, profile: int) -> None:
        self._base = engine
        self._steps = engine._profile_steps[profile]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


def execution_for(engine: ICudaEngine, profile: int = 0) -> Any:
    """The device layer that runs ``engine``'s layers for one context (per backend), with
    the tactics chosen for optimization profile ``profile``."""
    view: Any = engine if profile == 0 else _ProfileEngine(engine, profile)
    if engine._backend == "gpu":
        from engine.runtime.device_gpu import GpuExecution

        return GpuExecution(view)
    return CpuExecution(view)


class IExecutionContext:
    """Runs an engine. Each context has its own shapes and addresses; several contexts of one
    engine may run at the same time from different threads."""

    def __init__(self, engine: ICudaEngine) -> None:
        self._engine = engine
        self.name = ""
        self.debug_sync = False
        self._profile = 0
        self._shapes: dict[str, tuple[int, ...]] = {}
        for t in engine._input_tensors():
            if all(d >= 0 for d in t.shape):
                self._shapes[t.name] = tuple(t.shape)
        self._addresses: dict[str, int] = {}
        self._values: dict[str, tuple[int, ...]] = {}  # shape-input values of the next run
        self._allocators: dict[str, Any] = {}
        # Keyed by the input shapes, the shape-input values and the weights' generation.
        self._resolved: dict[tuple[tuple[int, ...] | int, ...], dict[ITensor, TensorInfo]] = {}
        self._logger: Any = engine._logger
        self.error_recorder: Any = getattr(engine, "error_recorder", None)  # IErrorRecorder
        self._execution = execution_for(engine)
        self._profiler: IProfiler | None = None
        self._last_layer_times: list[tuple[str, float]] | None = None
        # True: each run reports its layer times to the profiler; False: the times wait
        # for report_to_profiler().
        self.enqueue_emits_profile = True
        self._debug_listener: IDebugListener | None = None
        self._debug_active: set[str] = set()  # debug tensors whose values the listener gets

    @property
    def engine(self) -> ICudaEngine:
        return self._engine

    # -- profiles ---------------------------------------------------------------------------
    @property
    def active_optimization_profile(self) -> int:
        return self._profile

    def set_optimization_profile_async(self, profile_index: int, stream_handle: int) -> bool:
        if not 0 <= profile_index < self._engine.num_optimization_profiles:
            return self._error(f"profile index {profile_index} out of range (engine has "
                               f"{self._engine.num_optimization_profiles})")
        if profile_index != self._profile:
            event = self.get_input_consumed_event()
            self._profile = profile_index
            self._execution = execution_for(self._engine, profile_index)
            if event:  # the event set on the context stays set
                self._execution.input_consumed_event = event
        return True

    # -- shapes -----------------------------------------------------------------------------
    def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
        """Set the shape of input ``name`` for the next run; False (error logged) if invalid."""
        try:
            self._check_input_shape(name, tuple(int(d) for d in shape))
        except ExecutionError as exc:
            return self._error(str(exc))
        self._shapes[name] = tuple(int(d) for d in shape)
        return True

    def _check_input_shape(self, name: str, shape: tuple[int, ...]) -> None:
        engine = self._engine
        if engine.get_tensor_mode(name) != TensorIOMode.INPUT:
            inputs = [t.name for t in engine._input_tensors()]
            raise ExecutionError(f"'{name}' is not an input of this engine; inputs: {inputs}")
        declared = tuple(engine.get_tensor_shape(name))
        if len(shape) != len(declared) or any(
                d >= 0 and d != s for d, s in zip(declared, shape)) or any(s < 0 for s in shape):
            raise ExecutionError(f"input '{name}': shape {shape} does not match the engine's "
                                 f"{declared} (-1 marks the dimensions that may vary)")
        lo, _, hi = engine.get_tensor_profile_shape(name, self._profile)
        if any(not a <= s <= b for a, s, b in zip(lo, shape, hi)):
            raise ExecutionError(f"input '{name}': shape {shape} is outside optimization profile "
                                 f"{self._profile}: min {tuple(lo)}, max {tuple(hi)}")

    def get_tensor_shape(self, name: str) -> Dims:
        mode = self._engine.get_tensor_mode(name)
        if mode == TensorIOMode.INPUT:
            return Dims(self._shapes.get(name, self._engine.get_tensor_shape(name)))
        if mode == TensorIOMode.OUTPUT and self.all_binding_shapes_specified:
            try:
                read_shape_inputs(self)
                infos = self._resolve()
            except ExecutionError:
                return self._engine.get_tensor_shape(name)
            return Dims(infos[self._engine._tensors[name]].shape)
        return self._engine.get_tensor_shape(name)

    def get_tensor_strides(self, name: str) -> Dims:
        """Element strides of I/O tensor ``name`` at its current shape: row major (every I/O
        format is linear); -1 where a dimension is not known yet."""
        shape = tuple(self.get_tensor_shape(name))
        strides, step = [], 1
        for d in reversed(shape):
            strides.append(step if step >= 0 else -1)
            step = step * d if d >= 0 and step >= 0 else -1
        return Dims(tuple(reversed(strides)))

    @property
    def all_binding_shapes_specified(self) -> bool:
        return all(t.name in self._shapes for t in self._engine._input_tensors())

    @property
    def all_shape_inputs_specified(self) -> bool:
        return self.all_binding_shapes_specified

    def infer_shapes(self) -> list[str]:
        """Names of inputs whose shapes are still unspecified (empty once all are set)."""
        missing = [t.name for t in self._engine._input_tensors() if t.name not in self._shapes]
        if not missing:
            self._resolve()
        return missing

    def _resolve(self) -> dict[ITensor, TensorInfo]:
        inputs = self._engine._input_tensors()
        # A refit changes the values inference keeps for small constants: a new generation
        # of weights resolves again.
        key = tuple(self._shapes[t.name] for t in inputs) + tuple(
            self._values.get(t.name, ()) for t in inputs) + (
            getattr(self._engine, "_weights_generation", 0),)
        infos = self._resolved.get(key)
        if infos is None:
            try:
                infos = infer_all(self._engine._network._layers, {
                    t: TensorInfo(self._shapes[t.name], t.dtype, shape_input_value(
                        self._values.get(t.name), self._shapes[t.name], t.dtype))
                    for t in inputs})
            except NetworkError as exc:
                raise ExecutionError(f"shapes {dict(zip([t.name for t in inputs], key))}: "
                                     f"{exc}") from None
            self._resolved[key] = infos
        return infos

    # -- addresses --------------------------------------------------------------------------
    def set_tensor_address(self, name: str, memory: int) -> bool:
        if self._engine.get_tensor_mode(name) == TensorIOMode.NONE:
            return self._error(f"'{name}' is not an I/O tensor of this engine")
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    # -- profiling --------------------------------------------------------------------------
    @property
    def profiler(self) -> IProfiler | None:
        """The ``IProfiler`` that receives each layer's time after a run; None: no timing."""
        return self._profiler

    @profiler.setter
    def profiler(self, profiler: IProfiler | None) -> None:
        if profiler is not None and not callable(getattr(profiler, "report_layer_time", None)):
            raise TypeError(f"profiler: expected an IProfiler (with report_layer_time), got "
                            f"{type(profiler).__name__}")
        self._profiler = profiler
        self._execution.profiling = profiler is not None
        self._last_layer_times = None

    def report_to_profiler(self) -> bool:
        """Report the last profiled run's layer times to the profiler (for
        ``enqueue_emits_profile`` False); False (error logged) when there is none."""
        if self._profiler is None:
            return self._error("report_to_profiler: no profiler is set")
        if self._last_layer_times is None:
            return self._error("report_to_profiler: no run since the profiler was set")
        report(self._profiler, self._last_layer_times)
        return True

    # -- debug tensors ----------------------------------------------------------------------
    def set_debug_listener(self, listener: IDebugListener | None) -> bool:
        """The ``IDebugListener`` that receives the active debug tensors' values during runs
        (None: none)."""
        if listener is not None and not callable(getattr(listener, "process_debug_tensor",
                                                         None)):
            return self._error(f"set_debug_listener: expected an IDebugListener (with "
                               f"process_debug_tensor), got {type(listener).__name__}")
        self._debug_listener = listener
        self._sync_debug()
        return True

    def get_debug_listener(self) -> IDebugListener | None:
        return self._debug_listener

    def set_tensor_debug_state(self, name: str, flag: bool) -> bool:
        """Turn the reporting of debug tensor ``name`` (``network.mark_debug``) on or off;
        False (error logged) for a tensor the engine does not keep as a debug tensor."""
        if name not in self._engine._debug_tensors:
            return self._error(f"set_tensor_debug_state: '{name}' is not a debug tensor of "
                               f"this engine (network.mark_debug before the build); its debug "
                               f"tensors: {sorted(self._engine._debug_tensors)}")
        if flag:
            self._debug_active.add(name)
        else:
            self._debug_active.discard(name)
        self._sync_debug()
        return True

    def get_debug_state(self, name: str) -> bool:
        return name in self._debug_active

    def set_all_tensors_debug_state(self, flag: bool) -> bool:
        self._debug_active = set(self._engine._debug_tensors) if flag else set()
        self._sync_debug()
        return True

    def _sync_debug(self) -> None:
        """What the execution reports: the active debug tensors, while a listener is set."""
        tensors = self._engine._debug_tensors
        self._execution.debug = {} if self._debug_listener is None else {
            tensors[name]: name for name in self._debug_active}
        self._execution.debug_listener = self._debug_listener

    def _after_run(self) -> None:
        """Collect the run's layer times and, unless asked to wait, report them."""
        timer = getattr(self._execution, "timer", None)
        if self._profiler is None or timer is None:
            return
        self._last_layer_times = timer.times()
        if self.enqueue_emits_profile:
            report(self._profiler, self._last_layer_times)

    # -- execution --------------------------------------------------------------------------
    def execute_async_v3(self, stream_handle: int) -> bool:
        """Run with the addresses set by ``set_tensor_address``; False (error logged) when the
        run is refused or fails.

        On the GPU target the work is enqueued on ``stream_handle`` (a CUDA stream as an int:
        ``cupy_stream.ptr``, ``torch_stream.cuda_stream``, or 0 for the default stream) and
        the call returns without waiting: synchronize the stream before reading the outputs.
        Addresses are device pointers (``cupy_array.data.ptr``), or host pointers for I/O
        tensors whose location is ``TensorLocation.HOST``. On the CPU target addresses are
        host pointers and the run completes before returning."""
        try:
            with running_context(self):
                self._execute_at_addresses(int(stream_handle))
        except EngineError as exc:
            return self._error(str(exc), ErrorCodeTRT.FAILED_EXECUTION)
        self._after_run()
        return True

    def execute_v2(self, bindings: Sequence[int]) -> bool:
        """Run synchronously with ``bindings[i]`` the address of I/O tensor ``i``."""
        if len(bindings) != self._engine.num_io_tensors:
            return self._error(f"execute_v2: {len(bindings)} bindings for "
                               f"{self._engine.num_io_tensors} I/O tensors")
        for index, address in enumerate(bindings):
            self._addresses[self._engine.get_tensor_name(index)] = int(address)
        return self.execute_async_v3(0)

    def _execute_at_addresses(self, stream_handle: int) -> None:
        engine = self._engine
        engine._require_weights()
        for t in engine._input_tensors():
            if t.name not in self._shapes:
                raise ExecutionError(f"input '{t.name}': shape not set; call "
                                     f"set_input_shape('{t.name}', shape)")
            self._check_input_shape(t.name, self._shapes[t.name])
        read_shape_inputs(self)
        infos = self._resolve()
        if self._allocators or any(any(d < 0 for d in infos[t].shape)
                                   for t in engine._output_tensors()):
            execute_with_allocators(self, infos, stream_handle)
            return
        for t in engine._input_tensors() + engine._output_tensors():
            shape = infos[t].shape
            if not self._addresses.get(t.name) and nbytes_of(t.dtype, [max(d, 0) for d in shape]):
                raise ExecutionError(f"tensor '{t.name}': no address set; call "
                                     f"set_tensor_address('{t.name}', pointer)")
        self._execution.execute(infos, self._addresses, stream_handle)

    def infer(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """Convenience: run on arrays, return the outputs by name.

        On the CPU target feeds and outputs are NumPy arrays. On the GPU target feeds may be
        NumPy or CuPy arrays and the outputs are CuPy arrays; the run uses the context's own
        stream (after work already queued on the current stream) and is complete when
        ``infer`` returns.

        Raises ``ExecutionError`` naming the tensor for unknown or missing inputs, a wrong
        dtype or a shape the engine does not accept.
        """
        engine = self._engine
        engine._require_weights()
        inputs = engine._input_tensors()
        unknown = sorted(set(feeds) - {t.name for t in inputs})
        if unknown:
            raise ExecutionError(f"unknown inputs {unknown}; the engine's inputs are "
                                 f"{[t.name for t in inputs]}")
        arrays: dict[ITensor, Any] = {}
        for t in inputs:
            if t.name not in feeds:
                raise ExecutionError(f"input '{t.name}' is missing")
            arr = self._execution.accept_input(t.name, feeds[t.name])
            want = np.dtype(self._execution.storage_dtype(t.dtype))
            if arr.dtype != want:
                raise ExecutionError(f"input '{t.name}': dtype {arr.dtype}, the engine expects "
                                     f"{want} ({t.dtype.name})")
            self._check_input_shape(t.name, tuple(arr.shape))
            self._shapes[t.name] = tuple(arr.shape)
            if engine.is_shape_inference_io(t.name):
                set_shape_input_values(self, t.name, arr)
            arrays[t] = arr
        with running_context(self):
            results = self._execution.infer(arrays, self._resolve())
        self._after_run()
        return {t.name: results[t] for t in engine._output_tensors()}

    # -- output allocators ------------------------------------------------------------------
    def set_output_allocator(self, name: str, output_allocator: Any) -> bool:
        """Let ``output_allocator`` (an ``IOutputAllocator``) provide the memory of output
        ``name`` once its shape is known; needed for data-dependent shapes on the pointer
        path."""
        if self._engine.get_tensor_mode(name) != TensorIOMode.OUTPUT:
            return self._error(f"'{name}' is not an output of this engine")
        if output_allocator is None:
            self._allocators.pop(name, None)
        else:
            self._allocators[name] = output_allocator
        return True

    def get_output_allocator(self, name: str) -> Any:
        return self._allocators.get(name)

    # -- CUDA graphs (an extension) ---------------------------------------------------------
    @property
    def use_cuda_graphs(self) -> bool:
        """Whether GPU runs are captured into a CUDA graph per input-shape signature and
        replayed (on by default on the GPU target where every kernel can be captured)."""
        return bool(self._execution.use_cuda_graphs)

    @use_cuda_graphs.setter
    def use_cuda_graphs(self, value: bool) -> None:
        self._execution.use_cuda_graphs = bool(value)

    # -- input consumed event -----------------------------------------------------------------
    def set_input_consumed_event(self, event: int) -> bool:
        """A CUDA event (its handle as an int, e.g. ``cupy.cuda.Event().ptr``; 0 for none)
        that ``execute_async_v3`` records on its stream once the run has read its inputs, so
        the caller may refill the input buffers before the run ends (with a CUDA graph that
        copies its inputs, right after the copies). The CPU target reads its inputs before
        ``execute_async_v3`` returns and has no CUDA events: it accepts 0 only."""
        event = int(event)
        if not hasattr(self._execution, "input_consumed_event"):
            if event:
                return self._error("set_input_consumed_event: the CPU target has no CUDA "
                                   "events; its runs have read their inputs when "
                                   "execute_async_v3 returns")
            return True
        self._execution.input_consumed_event = event
        return True

    def get_input_consumed_event(self) -> int:
        return int(getattr(self._execution, "input_consumed_event", 0))

    def _error(self, message: str,
                code: ErrorCodeTRT = ErrorCodeTRT.INVALID_ARGUMENT) -> bool:
        log(self._logger, Severity.ERROR, message)
        record_error(self.error_recorder, code, message)
        return False

    def __enter__(self) -> IExecutionContext:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
