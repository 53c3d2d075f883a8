"""Per model-version statistics (Triton's statistics extension) and their Prometheus view
under Triton's metric names.

Durations are cumulative nanoseconds in the statistics and cumulative microseconds in the
metrics, as Triton reports them. Each request in a batched execution is charged the whole
execution's compute durations (Triton does the same).

Executions are also counted per device the model's instances are placed on
(``device_stats``, an extension of the statistics object; in the metrics, the execution
counters carry Triton's ``gpu_uuid`` label for instances of KIND_GPU groups). Request counters
(success, failure, request and queue durations) are counted per model version. An ensemble has
no instances: its execution counters are its model version's.

Response cache hits count as successful requests (with no queue wait) but not as executions or
inferences, and add to ``cache_hit``; misses add to ``cache_miss`` (Triton's extension, and its
``nv_cache_*_per_model`` metrics). A model's warmup runs are counted as requests and
executions, as Triton counts them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client.core import CollectorRegistry, Metric
from prometheus_client.exposition import generate_latest

from server.core.devices import Device


@dataclass
class Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += ns

    def to_json(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass
class BatchDurations:
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)


@dataclass
class DeviceStatistics:
    """What one model version's instances on one device have run."""

    device: str  # "gpu:0", a host stand-in "cpu:1", or "host" (KIND_CPU instances)
    kind: str  # the instance groups' kind: KIND_CPU or KIND_GPU
    gpu_uuid: str | None  # Triton's metric label, for KIND_GPU instances
    instances: int
    inference_count: int = 0
    execution_count: int = 0
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "device": self.device, "kind": self.kind, "instances": self.instances,
            "inference_count": self.inference_count, "execution_count": self.execution_count,
            "compute_input": self.compute_input.to_json(),
            "compute_infer": self.compute_infer.to_json(),
            "compute_output": self.compute_output.to_json()}
        if self.gpu_uuid is not None:
            out["gpu_uuid"] = self.gpu_uuid
        return out


class ModelStatistics:
    """What one model version has done since it was loaded."""

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self._lock = threading.Lock()
        self.success = Duration()
        self.fail = Duration()
        self.queue = Duration()
        self.compute_input = Duration()
        self.compute_infer = Duration()
        self.compute_output = Duration()
        self.cache_hit = Duration()
        self.cache_miss = Duration()
        self.inference_count = 0
        self.execution_count = 0
        self.last_inference_ms = 0
        self.batches: dict[int, BatchDurations] = {}
        self.devices: list[DeviceStatistics] = []

    def add_device(self, device: str, kind: str, gpu_uuid: str | None,
                   instances: int) -> DeviceStatistics:
        """The counters of the instances on ``device``, to pass to ``record_execution``."""
        stats = DeviceStatistics(device, kind, gpu_uuid, instances)
        self.devices.append(stats)
        return stats

    def record_request(self, ok: bool, request_ns: int, queue_ns: int = 0) -> None:
        with self._lock:
            (self.success if ok else self.fail).add(request_ns)
            if ok:
                self.queue.add(queue_ns)
            self.last_inference_ms = int(time.time() * 1000)

    def record_cache_hit(self, ns: int) -> None:
        with self._lock:
            self.cache_hit.add(ns)

    def record_cache_miss(self, ns: int) -> None:
        with self._lock:
            self.cache_miss.add(ns)

    def record_execution(self, batch_size: int, requests: int, input_ns: int, infer_ns: int,
                         output_ns: int, on: DeviceStatistics | None = None) -> None:
        with self._lock:
            if on is not None:
                on.execution_count += 1
                on.inference_count += batch_size
                on.compute_input.add(input_ns * requests, requests)
                on.compute_infer.add(infer_ns * requests, requests)
                on.compute_output.add(output_ns * requests, requests)
            self.execution_count += 1
            self.inference_count += batch_size
            self.compute_input.add(input_ns * requests, requests)
            self.compute_infer.add(infer_ns * requests, requests)
            self.compute_output.add(output_ns * requests, requests)
            batch = self.batches.setdefault(batch_size, BatchDurations())
            batch.compute_input.add(input_ns)
            batch.compute_infer.add(infer_ns)
            batch.compute_output.add(output_ns)

    def to_json(self) -> dict[str, Any]:
        """Triton's ``$model_stat`` object."""
        with self._lock:
            return {
                "name": self.name, "version": self.version,
                "last_inference": self.last_inference_ms,
                "inference_count": self.inference_count,
                "execution_count": self.execution_count,
                "inference_stats": {
                    "success": self.success.to_json(), "fail": self.fail.to_json(),
                    "queue": self.queue.to_json(),
                    "compute_input": self.compute_input.to_json(),
                    "compute_infer": self.compute_infer.to_json(),
                    "compute_output": self.compute_output.to_json(),
                    "cache_hit": self.cache_hit.to_json(),
                    "cache_miss": self.cache_miss.to_json()},
                "batch_stats": [
                    {"batch_size": size, "compute_input": b.compute_input.to_json(),
                     "compute_infer": b.compute_infer.to_json(),
                     "compute_output": b.compute_output.to_json()}
                    for size, b in sorted(self.batches.items())],
                "device_stats": [d.to_json() for d in self.devices],
            }


# Triton's per-model counters: (name, help, value read from a ModelStatistics).
_REQUEST_COUNTERS: list[tuple[str, str, Callable[[ModelStatistics], float]]] = [
    ("nv_inference_request_success", "Number of successful inference requests, all batch sizes",
     lambda s: s.success.count),
    ("nv_inference_request_failure", "Number of failed inference requests, all batch sizes",
     lambda s: s.fail.count),
    ("nv_inference_request_duration_us", "Cumulative inference request duration in "
     "microseconds (includes cached requests)", lambda s: (s.success.ns + s.fail.ns) // 1000),
    ("nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds "
     "(includes cached requests)", lambda s: s.queue.ns // 1000),
    ("nv_cache_num_hits_per_model", "Number of cache hits per model",
     lambda s: s.cache_hit.count),
    ("nv_cache_num_misses_per_model", "Number of cache misses per model",
     lambda s: s.cache_miss.count),
    ("nv_cache_hit_duration_per_model", "Total cache hit duration per model, in microseconds",
     lambda s: s.cache_hit.ns // 1000),
    ("nv_cache_miss_duration_per_model", "Total cache miss (insert+lookup) duration per "
     "model, in microseconds", lambda s: s.cache_miss.ns // 1000),
]
class _Executions(Protocol):
    """What a DeviceStatistics and a ModelStatistics both count."""

    inference_count: int
    execution_count: int
    compute_input: Duration
    compute_infer: Duration
    compute_output: Duration


# ... and those counted per device (value read from a DeviceStatistics, or from an
# ensemble's ModelStatistics).
_EXECUTION_COUNTERS: list[tuple[str, str, Callable[[_Executions], float]]] = [
    ("nv_inference_count", "Number of inferences performed (does not include cached requests)",
     lambda d: d.inference_count),
    ("nv_inference_exec_count", "Number of model executions performed (does not include cached "
     "requests)", lambda d: d.execution_count),
    ("nv_inference_compute_input_duration_us", "Cumulative compute input duration in "
     "microseconds (does not include cached requests)", lambda d: d.compute_input.ns // 1000),
    ("nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in "
     "microseconds (does not include cached requests)", lambda d: d.compute_infer.ns // 1000),
    ("nv_inference_compute_output_duration_us", "Cumulative inference compute output duration "
     "in microseconds (does not include cached requests)", lambda d: d.compute_output.ns // 1000),
]
_COUNTER_NAMES = [name for name, _, _ in _REQUEST_COUNTERS + _EXECUTION_COUNTERS]


class _StatisticsCollector:
    def __init__(self, source: Callable[[], Iterable[ModelStatistics]],
                 devices: Sequence[Device]) -> None:
        self._source = source
        self._devices = devices

    def collect(self) -> Iterable[Metric]:
        stats = list(self._source())
        for name, documentation, read in _REQUEST_COUNTERS:
            metric = Metric(name, documentation, "counter")
            for s in stats:
                metric.add_sample(name, {"model": s.name, "version": s.version}, read(s))
            yield metric
        for name, documentation, read_device in _EXECUTION_COUNTERS:
            metric = Metric(name, documentation, "counter")
            for s in stats:
                if not s.devices:  # an ensemble: its steps' models have the instances
                    metric.add_sample(name, {"model": s.name, "version": s.version},
                                      read_device(s))
                for d in s.devices:
                    labels = {"model": s.name, "version": s.version}
                    if d.gpu_uuid is not None:
                        labels = {"gpu_uuid": d.gpu_uuid, **labels}
                    metric.add_sample(name, labels, read_device(d))
            yield metric
        yield from self._gpu_gauges()

    def _gpu_gauges(self) -> Iterable[Metric]:
        utilization = Metric("nv_gpu_utilization", "GPU utilization rate [0.0 - 1.0) (the "
                             "fraction of the time since the last scrape during which this "
                             "server ran an execution on the GPU)", "gauge")
        total = Metric("nv_gpu_memory_total_bytes", "GPU total memory, in bytes", "gauge")
        used = Metric("nv_gpu_memory_used_bytes", "GPU used memory, in bytes", "gauge")
        for device in self._devices:
            labels = {"gpu_uuid": device.uuid}
            utilization.add_sample("nv_gpu_utilization", labels, device.activity.utilization())
            memory = device.memory()
            if memory is not None:
                used.add_sample("nv_gpu_memory_used_bytes", labels, memory[0])
                total.add_sample("nv_gpu_memory_total_bytes", labels, memory[1])
        yield from (utilization, total, used)


class Metrics:
    """A Prometheus registry of its own (several servers may live in one process) whose
    values are read from the live statistics at scrape time; ``devices`` are the GPUs (or
    their host stand-ins) whose gauges it reports."""

    content_type = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self, source: Callable[[], Iterable[ModelStatistics]],
                 devices: Sequence[Device] = ()) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StatisticsCollector(source, devices))  # type: ignore[arg-type]

    def render(self) -> bytes:
        # prometheus_client names a counter family "<name>_total" in HELP/TYPE lines; Triton's
        # counters carry no suffix, so the family lines are written with the sample name.
        text = generate_latest(self.registry).decode()
        for name in _COUNTER_NAMES:
            text = text.replace(f" {name}_total ", f" {name} ")
        return text.encode()
