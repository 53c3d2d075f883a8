"""Per model-version statistics (Triton's statistics extension) and their Prometheus view
under Triton's metric names.

Durations are cumulative nanoseconds in the statistics and cumulative microseconds in the
metrics, as Triton reports them. Each request in a batched execution is charged the whole
execution's compute durations (Triton does the same).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CollectorRegistry, Metric
from prometheus_client.exposition import generate_latest


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
        self.inference_count = 0
        self.execution_count = 0
        self.last_inference_ms = 0
        self.batches: dict[int, BatchDurations] = {}

    def record_request(self, ok: bool, request_ns: int, queue_ns: int = 0) -> None:
        with self._lock:
            (self.success if ok else self.fail).add(request_ns)
            if ok:
                self.queue.add(queue_ns)
            self.last_inference_ms = int(time.time() * 1000)

    def record_execution(self, batch_size: int, requests: int, input_ns: int, infer_ns: int,
                         output_ns: int) -> None:
        with self._lock:
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
            zero = Duration().to_json()
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
                    "cache_hit": zero, "cache_miss": zero},
                "batch_stats": [
                    {"batch_size": size, "compute_input": b.compute_input.to_json(),
                     "compute_infer": b.compute_infer.to_json(),
                     "compute_output": b.compute_output.to_json()}
                    for size, b in sorted(self.batches.items())],
            }


# Triton's per-model counters: (name, help, value read from a ModelStatistics).
_COUNTERS: list[tuple[str, str, Callable[[ModelStatistics], float]]] = [
    ("nv_inference_request_success", "Number of successful inference requests, all batch sizes",
     lambda s: s.success.count),
    ("nv_inference_request_failure", "Number of failed inference requests, all batch sizes",
     lambda s: s.fail.count),
    ("nv_inference_count", "Number of inferences performed (does not include cached requests)",
     lambda s: s.inference_count),
    ("nv_inference_exec_count", "Number of model executions performed (does not include cached "
     "requests)", lambda s: s.execution_count),
    ("nv_inference_request_duration_us", "Cumulative inference request duration in "
     "microseconds (includes cached requests)", lambda s: (s.success.ns + s.fail.ns) // 1000),
    ("nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds "
     "(includes cached requests)", lambda s: s.queue.ns // 1000),
    ("nv_inference_compute_input_duration_us", "Cumulative compute input duration in "
     "microseconds (does not include cached requests)", lambda s: s.compute_input.ns // 1000),
    ("nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in "
     "microseconds (does not include cached requests)", lambda s: s.compute_infer.ns // 1000),
    ("nv_inference_compute_output_duration_us", "Cumulative inference compute output duration "
     "in microseconds (does not include cached requests)", lambda s: s.compute_output.ns // 1000),
]


class _StatisticsCollector:
    def __init__(self, source: Callable[[], Iterable[ModelStatistics]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        stats = list(self._source())
        for name, documentation, read in _COUNTERS:
            metric = Metric(name, documentation, "counter")
            for s in stats:
                metric.add_sample(name, {"model": s.name, "version": s.version}, read(s))
            yield metric


class Metrics:
    """A Prometheus registry of its own (several servers may live in one process) whose
    values are read from the live statistics at scrape time."""

    content_type = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self, source: Callable[[], Iterable[ModelStatistics]]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StatisticsCollector(source))  # type: ignore[arg-type]

    def render(self) -> bytes:
        # prometheus_client names a counter family "<name>_total" in HELP/TYPE lines; Triton's
        # counters carry no suffix, so the family lines are written with the sample name.
        text = generate_latest(self.registry).decode()
        for name, _, _ in _COUNTERS:
            text = text.replace(f" {name}_total ", f" {name} ")
        return text.encode()
