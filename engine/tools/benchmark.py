"""Timing an engine as trtexec does: per inference, the host-to-device copy of the inputs,
the compute, and the device-to-host copy of the outputs; then throughput and latency
statistics, and the per-inference trace ``--exportTimes`` writes.

On the CPU target "device" buffers are host buffers bound to the context, so H2D and D2H
measure the staging copies a server makes. On the GPU target every context uses the default
stream; with ``streams > 1`` the contexts run from as many host threads.

>>> options = RunOptions(iterations=20, duration_s=0)                # doctest: +SKIP
>>> result = run_benchmark(engine, options, ToolLogger())            # doctest: +SKIP
>>> print("\\n".join(performance_summary(result, "cpu")))            # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import engine as trt
from engine.kernels.backends import load_backend
from engine.tools.errors import ToolError, UsageError
from engine.tools.options import read_input_file
from engine.tools.tool_logger import ToolLogger


@dataclass
class RunOptions:
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    load_inputs: dict[str, Path] = field(default_factory=dict)
    iterations: int = 10
    duration_s: float = 3.0
    warm_up_ms: float = 200.0
    use_cuda_graph: bool = False
    streams: int = 1
    data_transfers: bool = True
    seed: int = 1


@dataclass(frozen=True)
class InferenceTime:
    """One inference, in milliseconds since the benchmark started (trtexec's trace fields)."""

    start_in: float
    end_in: float
    start_compute: float
    end_enqueue: float
    end_compute: float
    start_out: float
    end_out: float

    @property
    def in_ms(self) -> float:
        return self.end_in - self.start_in

    @property
    def compute_ms(self) -> float:
        return self.end_compute - self.start_compute

    @property
    def out_ms(self) -> float:
        return self.end_out - self.start_out

    @property
    def enqueue_ms(self) -> float:
        return self.end_enqueue - self.start_compute

    @property
    def latency_ms(self) -> float:
        return self.in_ms + self.compute_ms + self.out_ms

    @property
    def end_to_end_ms(self) -> float:
        return self.end_out - self.start_in

    def to_json(self) -> dict[str, float]:
        return {"startInMs": self.start_in, "endInMs": self.end_in,
                "startComputeMs": self.start_compute, "endComputeMs": self.end_compute,
                "startOutMs": self.start_out, "endOutMs": self.end_out,
                "inMs": self.in_ms, "computeMs": self.compute_ms, "outMs": self.out_ms,
                "latencyMs": self.latency_ms, "endToEndMs": self.end_to_end_ms}


class _Transfers:
    """Allocation and copies on the engine's backend."""

    def __init__(self, backend: str) -> None:
        self.module = load_backend(backend)
        self.gpu = backend == "gpu"

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return self.module.to_device(np.zeros(shape, dtype))

    def address(self, array: Any) -> int:
        return int(array.data.ptr) if self.gpu else int(array.ctypes.data)

    def upload(self, device: Any, host: np.ndarray) -> None:
        if self.gpu:
            device.set(host)
        else:
            np.copyto(device, host)

    def download(self, host: np.ndarray, device: Any) -> None:
        if self.gpu:
            device.get(out=host)
        else:
            np.copyto(host, device)

    def synchronize(self) -> None:
        self.module.synchronize()


def input_shapes(engine: trt.ICudaEngine, shapes: dict[str, tuple[int, ...]],
                 logger: ToolLogger) -> dict[str, tuple[int, ...]]:
    """The shape of each input for the run: ``--shapes``, else the profile's opt shape."""
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    unknown = sorted(set(shapes) - set(inputs))
    if unknown:
        raise UsageError(f"--shapes: {unknown} are not inputs of the engine; inputs: {inputs}")
    result = {}
    for name in inputs:
        if name in shapes:
            result[name] = shapes[name]
            continue
        declared = tuple(engine.get_tensor_shape(name))
        if any(d < 0 for d in declared):
            opt = tuple(engine.get_tensor_profile_shape(name, 0)[1])
            logger.info(f"Input '{name}': no --shapes given, using the profile's opt shape "
                        f"{'x'.join(map(str, opt))}")
            result[name] = opt
        else:
            result[name] = declared
    return result


def make_inputs(engine: trt.ICudaEngine, shapes: dict[str, tuple[int, ...]],
                files: dict[str, Path], seed: int) -> dict[str, np.ndarray]:
    """Input values: from ``--loadInputs`` files, else random (as trtexec: uniform in [-1, 1]
    for floats, small integers, random booleans)."""
    unknown = sorted(set(files) - set(shapes))
    if unknown:
        raise UsageError(f"--loadInputs: {unknown} are not inputs of the engine; inputs: "
                         f"{sorted(shapes)}")
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in shapes.items():
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
        if name in files:
            values[name] = read_input_file(name, files[name], shape, dtype)
        elif dtype.kind == "f" or dtype.kind == "V":
            values[name] = rng.uniform(-1, 1, shape).astype(dtype)
        elif dtype.kind == "b":
            values[name] = rng.integers(0, 2, shape).astype(bool)
        else:
            values[name] = rng.integers(0, 5, shape).astype(dtype)
    return values


class _Stream:
    """One execution context with its bound buffers, as one trtexec inference stream."""

    def __init__(self, engine: trt.ICudaEngine, values: dict[str, np.ndarray],
                 transfers: _Transfers, options: RunOptions, logger: ToolLogger) -> None:
        self.context = engine.create_execution_context()
        self.transfers = transfers
        self.logger = logger
        self.data_transfers = options.data_transfers
        if transfers.gpu:
            self.context.use_cuda_graphs = options.use_cuda_graph
        self.host_in = values
        self.device_in = {}
        for name, value in values.items():
            if not self.context.set_input_shape(name, value.shape):
                raise ToolError(f"input '{name}': {logger.last_error}")
            self.device_in[name] = transfers.allocate(value.shape, value.dtype)
            transfers.upload(self.device_in[name], value)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.host_out: dict[str, np.ndarray] = {}
        self.device_out = {}
        for name in names:
            if engine.get_tensor_mode(name) != trt.TensorIOMode.OUTPUT:
                continue
            shape = tuple(self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ToolError(f"output '{name}' has a data-dependent shape {shape}; "
                                f"benchmarking such engines is not supported yet")
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            self.host_out[name] = np.zeros(shape, dtype)
            self.device_out[name] = transfers.allocate(shape, dtype)
        for name, array in {**self.device_in, **self.device_out}.items():
            self.context.set_tensor_address(name, transfers.address(array))

    def infer(self, clock: float) -> InferenceTime:
        now = time.perf_counter
        start_in = now()
        if self.data_transfers:
            for name, host in self.host_in.items():
                self.transfers.upload(self.device_in[name], host)
            self.transfers.synchronize()
        end_in = start_compute = now()
        if not self.context.execute_async_v3(0):
            raise ToolError(f"inference failed: {self.logger.last_error}")
        end_enqueue = now()
        self.transfers.synchronize()
        end_compute = start_out = now()
        if self.data_transfers:
            for name, host in self.host_out.items():
                self.transfers.download(host, self.device_out[name])
            self.transfers.synchronize()
        end_out = now()
        ms = [1000.0 * (t - clock) for t in (start_in, end_in, start_compute, end_enqueue,
                                             end_compute, start_out, end_out)]
        return InferenceTime(*ms)

    def outputs(self) -> dict[str, np.ndarray]:
        for name, host in self.host_out.items():
            self.transfers.download(host, self.device_out[name])
        self.transfers.synchronize()
        return dict(self.host_out)


@dataclass
class BenchmarkResult:
    times: list[InferenceTime]
    walltime_s: float
    outputs: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]


def run_benchmark(engine: trt.ICudaEngine, options: RunOptions, logger: ToolLogger
                  ) -> BenchmarkResult:
    """Warm up for ``warm_up_ms``, then infer until both ``iterations`` inferences and
    ``duration_s`` seconds are done, on ``streams`` contexts at once."""
    if options.iterations < 1 or options.streams < 1 or options.duration_s < 0 \
            or options.warm_up_ms < 0:
        raise UsageError("--iterations and --infStreams must be >= 1; --duration and --warmUp "
                         "must be >= 0")
    transfers = _Transfers(engine.target["backend"])
    if options.use_cuda_graph and not transfers.gpu:
        raise ToolError("--useCudaGraph: CUDA graphs need an engine built for the GPU target; "
                        "this one targets the CPU")
    shapes = input_shapes(engine, options.shapes, logger)
    values = make_inputs(engine, shapes, options.load_inputs, options.seed)
    streams = [_Stream(engine, values, transfers, options, logger)
               for _ in range(options.streams)]

    clock = time.perf_counter()
    warm_until = clock + options.warm_up_ms / 1000.0
    warm_ups = 0
    while time.perf_counter() < warm_until:
        for stream in streams:
            stream.infer(clock)
        warm_ups += 1
    logger.info(f"Warmup completed {warm_ups * len(streams)} queries over "
                f"{options.warm_up_ms:g} ms")

    times: list[InferenceTime] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = time.perf_counter()
    stop_at = start + options.duration_s

    def loop(stream: _Stream) -> None:
        try:
            while True:
                with lock:
                    if errors or (len(times) >= options.iterations
                                  and time.perf_counter() >= stop_at):
                        return
                record = stream.infer(start)
                with lock:
                    times.append(record)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            with lock:
                errors.append(exc)

    if len(streams) == 1:
        loop(streams[0])
    else:
        threads = [threading.Thread(target=loop, args=(s,)) for s in streams]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    walltime = time.perf_counter() - start
    if errors:
        raise errors[0]
    times.sort(key=lambda t: t.start_in)
    return BenchmarkResult(times, walltime, streams[0].outputs(), shapes)


def percentile(sorted_ms: list[float], percent: float) -> float:
    """trtexec's percentile: the value with ``(100 - percent)%`` of the samples above it."""
    count = len(sorted_ms)
    exclude = int((1 - percent / 100) * count)
    return sorted_ms[max(count - 1 - exclude, 0)]


def statistics(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"min": ordered[0], "max": ordered[-1], "mean": float(np.mean(ordered)),
            "median": float(np.median(ordered)), "p90": percentile(ordered, 90),
            "p95": percentile(ordered, 95), "p99": percentile(ordered, 99)}


def _stats_line(label: str, values: list[float]) -> str:
    s = statistics(values)
    return (f"{label}: min = {s['min']:.5g} ms, max = {s['max']:.5g} ms, mean = "
            f"{s['mean']:.5g} ms, median = {s['median']:.5g} ms, percentile(90%) = "
            f"{s['p90']:.5g} ms, percentile(95%) = {s['p95']:.5g} ms, percentile(99%) = "
            f"{s['p99']:.5g} ms")


def performance_summary(result: BenchmarkResult, backend: str) -> list[str]:
    """trtexec's ``=== Performance summary ===`` block, one string per line."""
    times = result.times
    device = "GPU" if backend == "gpu" else "CPU"
    compute_total = sum(t.compute_ms for t in times) / 1000.0
    return [
        "=== Performance summary ===",
        f"Throughput: {len(times) / result.walltime_s:.5g} qps",
        _stats_line("Latency", [t.latency_ms for t in times]),
        _stats_line("Enqueue Time", [t.enqueue_ms for t in times]),
        _stats_line("H2D Latency", [t.in_ms for t in times]),
        _stats_line(f"{device} Compute Time", [t.compute_ms for t in times]),
        _stats_line("D2H Latency", [t.out_ms for t in times]),
        f"Total Host Walltime: {result.walltime_s:.5g} s",
        f"Total {device} Compute Time: {compute_total:.5g} s",
    ]


class _ProfileAccumulator(trt.IProfiler):
    def __init__(self) -> None:
        super().__init__()
        self.times: dict[str, list[float]] = {}

    def report_layer_time(self, layer_name: str, ms: float) -> None:
        self.times.setdefault(layer_name, []).append(ms)


def profile_layers(engine: trt.ICudaEngine, options: RunOptions, logger: ToolLogger
                   ) -> list[dict[str, Any]]:
    """Per-layer times over ``options.iterations`` profiled inferences in a run of their own
    (trtexec's ``--separateProfileRun``: profiling runs layer by layer, without CUDA graphs,
    so it does not disturb the timed run): per layer, in execution order, its name, count,
    total, average and median milliseconds and share of the total."""
    shapes = input_shapes(engine, options.shapes, logger)
    values = make_inputs(engine, shapes, options.load_inputs, options.seed)
    context = engine.create_execution_context()
    context.infer(dict(values))  # warm-up: kernels compiled, weights in place
    accumulator = _ProfileAccumulator()
    context.profiler = accumulator
    for _ in range(max(1, options.iterations)):
        context.infer(dict(values))
    total = sum(sum(ms) for ms in accumulator.times.values()) or 1.0
    return [{"name": name, "timeMs": sum(ms), "averageMs": sum(ms) / len(ms),
             "medianMs": float(np.median(ms)), "percentage": 100.0 * sum(ms) / total,
             "count": len(ms)} for name, ms in accumulator.times.items()]


def profile_table(rows: list[dict[str, Any]]) -> list[str]:
    """trtexec's ``--dumpProfile`` table, the largest share first."""
    lines = [f"{'Time(ms)':>10} {'Avg.(ms)':>10} {'Median(ms)':>11} {'Time(%)':>8}   Layer"]
    for row in sorted(rows, key=lambda r: -r["timeMs"]):
        lines.append(f"{row['timeMs']:10.3f} {row['averageMs']:10.4f} {row['medianMs']:11.4f} "
                     f"{row['percentage']:8.1f}   {row['name']}")
    total = sum(r["timeMs"] for r in rows)
    count = max((r["count"] for r in rows), default=0)
    lines.append(f"{total:10.3f} {total / max(count, 1):10.4f} {'':>11} {100.0:8.1f}   Total")
    return lines
