"""A loaded model version: per device its instances are placed on, one engine copy and a
pool of execution contexts; an optional dynamic batcher; and statistics.

A request is validated against the configuration on the event loop and sent to the
least-loaded pool (the lowest share of requests outstanding per context; among equals, the
one that has run least). Each pool has its own worker threads, as many as its contexts, so
taking a context never waits and a thread always works on one device (the engine keeps
per-thread state, cuBLAS handles for one, per device: a thread bound to one device keeps one
set). A worker runs its context with the pool's device current and copies the outputs to the
host. Requests beyond the contexts wait in a bounded queue; past its bound the model answers
"busy".

Before a version serves, its ``model_warmup`` samples run on every context of every pool, on
the pools' own worker threads (``warm_up``). With ``response_cache`` enabled, a request whose
key is cached is answered before admission, without a context; a miss that succeeds is kept.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

import engine as trt
from server.core.batcher import DynamicBatcher
from server.core.codec import InferOutput, InferRequest, InferResponse
from server.core.config import ModelConfig
from server.core.devices import Placement
from server.core.errors import InvalidArgument, ServerBusy, ServerError, Unavailable
from server.core.model_io import Feeds, feeds_from_request, metadata_of, requested_outputs
from server.core.response_cache import ResponseCache, VersionCache
from server.core.statistics import DeviceStatistics, ModelStatistics
from server.core.warmup import WarmupSample

log = logging.getLogger("server.model")


@dataclass
class Job:
    """One request's inputs on their way through the batcher and a context."""

    feeds: Feeds
    batch: int  # its batch size (1 for models without a batch dimension)
    enqueued_ns: int
    # The compute input / infer / output durations of the execution that ran it.
    compute_ns: tuple[int, int, int] = (0, 0, 0)


class InstancePool:
    """``placement.count`` execution contexts of one engine copy on ``placement.device``."""

    def __init__(self, placement: Placement, engine: trt.ICudaEngine, stats: DeviceStatistics,
                 thread_name: str) -> None:
        self.device = placement.device
        self.engine = engine
        self.count = placement.count
        self.stats = stats
        self.contexts: queue.SimpleQueue[trt.IExecutionContext] = queue.SimpleQueue()
        with self.device.placed():
            for _ in range(self.count):
                self.contexts.put(engine.create_execution_context())
        self.executor = ThreadPoolExecutor(self.count, thread_name_prefix=thread_name)
        self.busy = 0  # executions sent here and not finished (guarded by the model's lock)
        self.taken = 0  # executions sent here

    def load(self) -> tuple[float, float]:
        return self.busy / self.count, self.taken / self.count


class ModelVersion:
    def __init__(self, config: ModelConfig, version: int,
                 engines: list[tuple[Placement, trt.ICudaEngine]],
                 default_queue_size: int, response_cache: ResponseCache | None = None) -> None:
        self.config = config
        self.name = config.name
        self.version = version
        self.stats = ModelStatistics(self.name, str(version))
        self.pools = [
            InstancePool(placement, engine, self.stats.add_device(
                placement.device.name, placement.kind,
                placement.device.uuid if placement.kind == "KIND_GPU" else None,
                placement.count), f"{self.name}-v{version}-{placement.device.name}")
            for placement, engine in engines]
        self.instances = sum(p.count for p in self.pools)
        self._queue_limit = config.max_queue_size or default_queue_size
        self._lock = threading.Lock()
        self._in_flight = 0
        self._closed = False
        self._batcher: DynamicBatcher | None = None
        self._inputs = {t.name: t for t in config.inputs}
        self._outputs = {t.name: t for t in config.outputs}
        self._cache = (VersionCache(response_cache, self.stats)
                       if response_cache is not None and config.response_cache else None)

    # -- requests ---------------------------------------------------------------------------
    async def infer(self, request: InferRequest) -> InferResponse:
        start = time.perf_counter_ns()
        try:
            feeds, batch = feeds_from_request(self.config, request)
            wanted = requested_outputs(self.config, request)
        except ServerError:
            self.stats.record_request(False, time.perf_counter_ns() - start)
            raise
        cached = None
        if self._cache is not None:
            cached = self._cache.lookup(request.inputs, wanted)
            if cached.outputs is not None:
                self.stats.record_request(True, time.perf_counter_ns() - start)
                return InferResponse(self.name, str(self.version), cached.outputs, request.id)
        job = Job(feeds, batch, time.perf_counter_ns())
        self._admit()
        try:
            if self.config.dynamic_batching is not None and self.config.max_batch_size > 0:
                if self._batcher is None or self._batcher.loop is not asyncio.get_running_loop():
                    self._batcher = DynamicBatcher(self.config, self.instances,
                                                   self._run_in_thread)
                results, queue_ns = await self._batcher.submit(job)
            else:
                (results,), started = await self._run_in_thread([job])
                queue_ns = started - job.enqueued_ns
        except ServerError:
            self.stats.record_request(False, time.perf_counter_ns() - start)
            raise
        finally:
            with self._lock:
                self._in_flight -= 1
        outputs = [InferOutput(name, self._outputs[name].datatype, results[name])
                   for name in wanted]
        if self._cache is not None and cached is not None:
            self._cache.insert(cached, outputs)
        self.stats.record_request(True, time.perf_counter_ns() - start, queue_ns)
        return InferResponse(self.name, str(self.version), outputs, request.id,
                             job.compute_ns)

    def _admit(self) -> None:
        with self._lock:
            if self._closed:
                raise Unavailable(f"model '{self.name}' version {self.version} is unloading")
            if self._in_flight >= self.instances + self._queue_limit:
                raise ServerBusy(f"model '{self.name}' is busy: {self._in_flight} requests are "
                                 f"running or queued (limit {self.instances} running + "
                                 f"{self._queue_limit} queued); retry later")
            self._in_flight += 1

    # -- execution --------------------------------------------------------------------------
    @property
    def _contexts(self) -> queue.SimpleQueue[trt.IExecutionContext]:
        """The first pool's contexts (all of them, for a model on one device)."""
        return self.pools[0].contexts

    def _choose_pool(self) -> InstancePool:
        with self._lock:
            pool = min(self.pools, key=InstancePool.load)
            pool.busy += 1
            pool.taken += 1
        return pool

    async def _run_in_thread(self, jobs: list[Job]) -> tuple[list[Any], int]:
        """Run ``jobs`` as one execution on a worker; returns per-job outputs (or, where a
        batch had to be split, per-job errors) and when the execution started."""
        loop = asyncio.get_running_loop()
        pool = self._choose_pool()
        try:
            running = loop.run_in_executor(pool.executor, self._execute_sent, pool, jobs)
        except RuntimeError as exc:  # the executor was shut down by an unload
            with self._lock:
                pool.busy -= 1
            raise Unavailable(f"model '{self.name}' version {self.version} was unloaded: "
                              f"{exc}") from None
        return await running

    def _execute_sent(self, pool: InstancePool, jobs: list[Job]) -> tuple[list[Any], int]:
        try:
            return self._execute(pool, jobs)
        finally:
            with self._lock:
                pool.busy -= 1

    def _execute(self, pool: InstancePool, jobs: list[Job]) -> tuple[list[Any], int]:
        started = time.perf_counter_ns()
        context = pool.contexts.get_nowait()
        held = True
        try:
            if len(jobs) == 1:
                feeds = jobs[0].feeds
            else:
                feeds = {name: np.concatenate([j.feeds[name] for j in jobs])
                         for name in self._inputs}
            computed = time.perf_counter_ns()
            try:
                with pool.device.placed(), pool.device.activity.running():
                    outputs = context.infer(feeds)
            except trt.ExecutionError as exc:
                if len(jobs) > 1:  # one request's shapes spoil the batch: run each alone
                    pool.contexts.put(context)
                    held = False
                    return self._execute_each(pool, jobs), started
                raise InvalidArgument(f"model '{self.name}': {exc}") from None
            inferred = time.perf_counter_ns()
            # A GPU engine's outputs are device arrays: copy them to the host while the
            # context (whose run produced them) is still ours.
            with pool.device.placed():
                outputs = {n: pool.device.to_host(a) for n, a in outputs.items()}
            if len(jobs) == 1:
                per_job = [outputs]
            else:
                bounds = np.cumsum([j.batch for j in jobs])[:-1]
                split = {n: np.split(a, bounds) for n, a in outputs.items()}
                per_job = [{n: split[n][i] for n in outputs} for i in range(len(jobs))]
            done = time.perf_counter_ns()
        finally:
            if held:
                pool.contexts.put(context)
        durations = (computed - started, inferred - computed, done - inferred)
        for job in jobs:
            job.compute_ns = durations
        self.stats.record_execution(sum(j.batch for j in jobs), len(jobs), *durations,
                                    pool.stats)
        return per_job, started

    def _execute_each(self, pool: InstancePool, jobs: list[Job]) -> list[Feeds]:
        results: list[Any] = []
        for job in jobs:
            try:
                results.append(self._execute(pool, [job])[0][0])
            except ServerError as exc:
                results.append(exc)
        return results

    # -- warmup ---------------------------------------------------------------------------------
    def warm_up(self, samples: Sequence[tuple[WarmupSample, Feeds]]) -> None:
        """Run each sample ``runs`` times on every execution context, each context on its
        pool's worker threads, before the version serves (blocking). Statistics count the runs
        as Triton's do. ``InvalidArgument`` names the sample and the instance that failed."""
        if not samples:
            return
        started = time.perf_counter()
        for pool in self.pools:
            contexts = [pool.contexts.get_nowait() for _ in range(pool.count)]
            try:
                running = [pool.executor.submit(self._warm_up_context, pool, context, index,
                                                samples)
                           for index, context in enumerate(contexts)]
                wait(running)
                for future in running:
                    future.result()  # the first instance's failure, if any
            finally:
                for context in contexts:
                    pool.contexts.put(context)
        log.info("model '%s' version %d: warmup samples %s ran on %d instances in %.1f ms",
                 self.name, self.version, [s.name for s, _ in samples], self.instances,
                 (time.perf_counter() - started) * 1e3)

    def _warm_up_context(self, pool: InstancePool, context: trt.IExecutionContext, index: int,
                         samples: Sequence[tuple[WarmupSample, Feeds]]) -> None:
        instance = f"{pool.device.name} #{index}"
        for sample, feeds in samples:
            for iteration in range(1, sample.runs + 1):
                log.debug("model '%s' version %d instance %s is running warmup sample '%s' "
                          "for iteration %d", self.name, self.version, instance, sample.name,
                          iteration)
                start = time.perf_counter_ns()
                try:
                    with pool.device.placed(), pool.device.activity.running():
                        outputs = context.infer(feeds)
                    inferred = time.perf_counter_ns()
                    with pool.device.placed():
                        for array in outputs.values():
                            pool.device.to_host(array)
                except trt.EngineError as exc:
                    raise InvalidArgument(
                        f"model_warmup sample '{sample.name}' failed on instance {instance} "
                        f"(inputs {sample.describe()}, batch_size {sample.batch_size}): "
                        f"{exc}") from None
                done = time.perf_counter_ns()
                self.stats.record_execution(sample.batch_size, sample.batch_size, 0,
                                            inferred - start, done - inferred, pool.stats)
                for _ in range(sample.batch_size):  # Triton sends batch_size requests
                    self.stats.record_request(True, done - start)

    # -- life cycle ---------------------------------------------------------------------------
    def metadata(self, versions: list[str]) -> dict[str, Any]:
        return metadata_of(self.config, versions)

    def close(self) -> None:
        """Stop taking requests; those already running finish."""
        with self._lock:
            self._closed = True
        if self._cache is not None:
            self._cache.close()
        if self._batcher is not None:
            self._batcher.close()
        for pool in self.pools:
            pool.executor.shutdown(wait=False)
