"""The dynamic batcher: requests to one model version are merged into one execution.

A batch is formed when a context is free: it starts with the oldest waiting request and takes
the following ones whose non-batch shapes match, until it reaches the largest preferred batch
size (or ``max_batch_size``), or until the oldest request has waited
``max_queue_delay_microseconds``. It runs as one execution and its outputs are split back
along the batch dimension, so every request gets exactly what it would have got alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from server.core.config import ModelConfig
from server.core.errors import Unavailable

if TYPE_CHECKING:
    from server.core.model import Feeds, Job

Runner = Callable[[list["Job"]], Awaitable[tuple[list[Any], int]]]


class DynamicBatcher:
    """Lives on the event loop that first submits to it."""

    def __init__(self, config: ModelConfig, instances: int, run: Runner) -> None:
        assert config.dynamic_batching is not None and config.max_batch_size > 0
        settings = config.dynamic_batching
        self._name = config.name
        self._max_batch = config.max_batch_size
        self._target = max(settings.preferred_batch_size or (config.max_batch_size,))
        self._delay_s = settings.max_queue_delay_microseconds / 1e6
        self._run = run
        self._pending: list[tuple[Job, asyncio.Future[tuple[Feeds, int]]]] = []
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(instances)
        self._running: set[asyncio.Task[None]] = set()
        self.loop = asyncio.get_running_loop()
        self._task = self.loop.create_task(self._form_batches())

    async def submit(self, job: Job) -> tuple[Feeds, int]:
        """Queue ``job``; returns its outputs and its queue time in nanoseconds."""
        future: asyncio.Future[tuple[Feeds, int]] = asyncio.get_running_loop().create_future()
        self._pending.append((job, future))
        self._arrived.set()
        return await future

    async def _form_batches(self) -> None:
        while True:
            await self._slots.acquire()
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = self._pending[0][0].enqueued_ns / 1e9 + self._delay_s
            while True:
                batch = self._compatible()
                size = sum(job.batch for job, _ in batch)
                wait = deadline - time.perf_counter_ns() / 1e9
                if size >= self._target or size == self._max_batch or wait <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), wait)
                except asyncio.TimeoutError:
                    pass
            taken = {id(future) for _, future in batch}
            self._pending = [item for item in self._pending if id(item[1]) not in taken]
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _compatible(self) -> list[tuple[Job, asyncio.Future[tuple[Feeds, int]]]]:
        """The oldest request and the following ones that fit beside it."""
        first = self._pending[0][0]
        shapes = {n: a.shape[1:] for n, a in first.feeds.items()}
        batch, size = [], 0
        for job, future in self._pending:
            if future.done():
                continue
            if all(a.shape[1:] == shapes[n] for n, a in job.feeds.items()) and \
                    size + job.batch <= self._max_batch:
                batch.append((job, future))
                size += job.batch
        return batch

    async def _execute(self, batch: list[tuple[Job, asyncio.Future[tuple[Feeds, int]]]]
                       ) -> None:
        try:
            results, started = await self._run([job for job, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting request
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else
                                         Unavailable(f"model '{self._name}': cancelled"))
            if not isinstance(exc, Exception):
                raise
        else:
            for (job, future), result in zip(batch, results):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result((result, started - job.enqueued_ns))
        finally:
            self._slots.release()

    def close(self) -> None:
        self._task.cancel()
        for _, future in self._pending:
            if not future.done():
                future.set_exception(Unavailable(f"model '{self._name}' was unloaded"))
        self._pending = []
