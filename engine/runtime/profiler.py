"""Per-layer timing of execution contexts, as TensorRT's ``IProfiler``, and the debug
tensor listener, ``IDebugListener``.

A context with a profiler (``context.profiler = MyProfiler()``) times every layer of each
run and, after the run (``enqueue_emits_profile`` True, the default), calls
``profiler.report_layer_time(layer_name, ms)`` once per layer in execution order; with
``enqueue_emits_profile`` False the times are kept and ``context.report_to_profiler()``
reports the last run's. Layer names are the engine's (fused layers are named after the
layers they replaced, "conv1 + relu1").

On the CPU target a layer's time is the wall clock around its kernel. On the GPU target
profiling runs the layers one by one, without CUDA graphs, between CUDA events on the run's
stream, enqueued behind a gate (a kernel holding the stream until the host has enqueued the
whole run) so that the events time the device, not Python's launch latency; the report
waits for the stream: a profiled ``execute_async_v3`` returns only when the run is complete,
as in TensorRT, where profiling serializes the work.

>>> import engine as trt
>>> class Printer(trt.IProfiler):
...     def report_layer_time(self, layer_name, ms):
...         print(layer_name, ms >= 0)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class IProfiler:
    """Receives the time of each layer of a run; subclass it and implement
    ``report_layer_time``."""

    def report_layer_time(self, layer_name: str, ms: float) -> None:
        raise NotImplementedError(f"{type(self).__name__}.report_layer_time")


class LayerTimer:
    """One run's layer times, in execution order: wall-clock times (CPU), or pairs of CUDA
    events read when the times are asked for (GPU)."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, Any]] = []

    @contextmanager
    def wall_clock(self, layer_name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._entries.append((layer_name, (time.perf_counter() - start) * 1000.0))

    def add(self, layer_name: str, milliseconds: float | Callable[[], float]) -> None:
        """A layer's time, or a function that gives it once the run is complete."""
        self._entries.append((layer_name, milliseconds))

    def times(self) -> list[tuple[str, float]]:
        return [(name, float(ms() if callable(ms) else ms)) for name, ms in self._entries]


def report(profiler: IProfiler, times: list[tuple[str, float]]) -> None:
    for name, ms in times:
        profiler.report_layer_time(name, ms)


class IDebugListener:
    """Receives the value of each active debug tensor (``network.mark_debug``,
    ``context.set_tensor_debug_state``) during a run, as TensorRT's ``IDebugListener``:
    ``process_debug_tensor(addr, location, type, shape, name, stream)`` with the address of
    the value (a host pointer on the CPU target, a device pointer on the GPU, valid during
    the call; on the GPU the value is complete once ``stream`` reaches the call's point),
    its ``TensorLocation``, ``DataType``, ``Dims`` and name. Subclass it and implement
    ``process_debug_tensor``; its result is ignored."""

    def process_debug_tensor(self, addr: int, location: Any, type: Any,  # noqa: A002
                             shape: Any, name: str, stream: int) -> bool:
        raise NotImplementedError(f"{self.__class__.__name__}.process_debug_tensor")
