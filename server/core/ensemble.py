"""A loaded ensemble version: a model whose requests run steps on other loaded models
(Triton's ensemble scheduler).

Binding resolves each step to a ready version of its model, through a lookup the repository
passes down, and checks the step against that model's configuration as Triton does: every
model input mapped and no name the model lacks, equal data types and compatible shapes (-1
matches any size) for the ensemble tensors the step exchanges, and the ensemble's
``max_batch_size`` within each batching step model's. An ensemble serves while it binds: a
step model unloaded makes it unavailable with that reason, loaded again makes it serve again.

A request runs each step as an ordinary request to the step's model (its checks, context
pool, dynamic batcher and statistics), as soon as the tensors the step reads exist, so steps
that do not wait on each other run concurrently. Tensors pass between steps as arrays, never
re-encoded. Steps that no requested output needs are not run (Triton prunes them too). A
step's error is the ensemble's, with its status, naming the step and its model.

The ensemble's own statistics count each request once (Triton's way): its duration, one
execution of the request's batch size, and the compute durations of the steps it ran.

With ``response_cache`` enabled in the ensemble's configuration, whole ensemble responses are
cached (a hit runs no step); the step models cache by their own configurations. Binding to
other step model versions than before (a step model reloaded, say) drops what the ensemble
cached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from server.core.codec import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput
from server.core.config import ModelConfig, TensorConfig
from server.core.errors import ServerError, Unavailable
from server.core.model_io import feeds_from_request, full_shape, metadata_of, requested_outputs
from server.core.response_cache import ResponseCache, VersionCache
from server.core.statistics import ModelStatistics


class Servable(Protocol):
    """A loaded model version that answers requests: plan-backed or an ensemble."""

    config: ModelConfig
    name: str
    version: int
    stats: ModelStatistics

    async def infer(self, request: InferRequest) -> InferResponse: ...

    def metadata(self, versions: list[str]) -> dict[str, Any]: ...

    def close(self) -> None: ...


# (model name, version or -1 for the highest ready one) -> that loaded version; raises
# NotFound or Unavailable with the reason it cannot serve.
Lookup = Callable[[str, int], Servable]


class EnsembleVersion:
    def __init__(self, config: ModelConfig, version: int, lookup: Lookup,
                 response_cache: ResponseCache | None = None) -> None:
        assert config.ensemble_scheduling is not None
        self.config = config
        self.name = config.name
        self.version = version
        self.stats = ModelStatistics(self.name, str(version))
        self.scheduling = config.ensemble_scheduling
        self._lookup = lookup
        self._checked: tuple[Servable, ...] = ()  # the step models last found consistent
        # Changes whenever this ensemble binds to other step model versions, nested
        # ensembles' changes included: what it computes may have changed.
        self.generation = 0
        self._generations: tuple[int, ...] = ()  # the nested ensembles' at the last binding
        self._closed = False
        self._cache = (VersionCache(response_cache, self.stats)
                       if response_cache is not None and config.response_cache else None)

    # -- binding ------------------------------------------------------------------------------
    def bind(self, chain: tuple[str, ...] = ()) -> tuple[Servable, ...]:
        """The model version serving each step, checked against the step; ``Unavailable``
        names the step that cannot be served and why. ``chain``: the ensembles binding this
        one (a step back to one of them is a cycle)."""
        chain = (*chain, self.name)
        models = []
        for index, step in enumerate(self.scheduling.steps):
            where = f"ensemble '{self.name}' {self.scheduling.describe(index)}"
            if step.model_name in chain:
                raise Unavailable(f"{where}: the ensembles form a cycle: "
                                  f"{' -> '.join([*chain, step.model_name])}")
            try:
                model = self._lookup(step.model_name, step.model_version)
                if isinstance(model, EnsembleVersion):
                    model.bind(chain)
            except ServerError as exc:
                raise Unavailable(f"{where}: {exc}") from None
            models.append(model)
        bound = tuple(models)
        generations = tuple(m.generation if isinstance(m, EnsembleVersion) else 0
                            for m in bound)
        if len(bound) != len(self._checked) or any(
                a is not b for a, b in zip(bound, self._checked)):
            self._check_steps(bound)
            self._rebound(bound, generations)
        elif generations != self._generations:
            self._rebound(bound, generations)
        return bound

    def _rebound(self, bound: tuple[Servable, ...], generations: tuple[int, ...]) -> None:
        if self._checked and self._cache is not None:
            self._cache.invalidate()
        self._checked, self._generations = bound, generations
        self.generation += 1

    def _check_steps(self, models: tuple[Servable, ...]) -> None:
        ensemble = self.config
        known: dict[str, _Tensor] = {
            t.name: _Tensor(ensemble, t, f"ensemble '{self.name}' input '{t.name}'")
            for t in ensemble.inputs}
        known.update({t.name: _Tensor(ensemble, t, f"ensemble '{self.name}' output '{t.name}'")
                      for t in ensemble.outputs})
        for index, (step, model) in enumerate(zip(self.scheduling.steps, models)):
            where = f"ensemble '{self.name}' {self.scheduling.describe(index)}"
            config = model.config
            if 0 < config.max_batch_size < ensemble.max_batch_size:
                raise Unavailable(f"{where}: the ensemble's max_batch_size "
                                  f"{ensemble.max_batch_size} exceeds the model's "
                                  f"({config.max_batch_size})")
            for kind, declared, mapping in (("input", config.inputs, step.input_map),
                                            ("output", config.outputs, step.output_map)):
                by_name = {t.name: t for t in declared}
                for key, tensor in mapping:
                    if key not in by_name:
                        raise Unavailable(f"{where}: maps ensemble tensor '{tensor}' to "
                                          f"'{key}', which is not an {kind} of model "
                                          f"'{model.name}' (its {kind}s: {sorted(by_name)})")
                    mine = _Tensor(config, by_name[key], f"model '{model.name}' {kind} '{key}'")
                    if tensor in known:
                        known[tensor].check_matches(mine, f"{where}: ensemble tensor '{tensor}'")
                    else:
                        known[tensor] = mine
                unmapped = sorted(set(by_name) - {key for key, _ in mapping})
                if kind == "input" and unmapped:
                    raise Unavailable(f"{where}: model '{model.name}' inputs {unmapped} are "
                                      f"mapped from no ensemble tensor")

    # -- requests ---------------------------------------------------------------------------
    async def infer(self, request: InferRequest) -> InferResponse:
        start = time.perf_counter_ns()
        cached = None
        try:
            feeds, batch = feeds_from_request(self.config, request)
            wanted = requested_outputs(self.config, request)
            if self._closed:
                raise Unavailable(f"model '{self.name}' version {self.version} is unloading")
            models = self.bind()  # before the cache: a change of step models invalidates it
            if self._cache is not None:
                cached = self._cache.lookup(request.inputs, wanted)
                if cached.outputs is not None:
                    self.stats.record_request(True, time.perf_counter_ns() - start)
                    return InferResponse(self.name, str(self.version), cached.outputs,
                                         request.id)
            declared = {t.name: t.datatype for t in self.config.inputs}
            values = {name: (declared[name], array) for name, array in feeds.items()}
            compute = await self._run_steps(models, values, request, wanted)
        except ServerError:
            self.stats.record_request(False, time.perf_counter_ns() - start)
            raise
        types = {t.name: t.datatype for t in self.config.outputs}
        outputs = [InferOutput(name, types[name], values[name][1]) for name in wanted]
        if self._cache is not None and cached is not None:
            self._cache.insert(cached, outputs)
        self.stats.record_request(True, time.perf_counter_ns() - start)
        self.stats.record_execution(batch, 1, *compute)
        return InferResponse(self.name, str(self.version), outputs, request.id, compute)

    async def _run_steps(self, models: tuple[Servable, ...],
                         values: dict[str, tuple[str, np.ndarray]], request: InferRequest,
                         wanted: list[str]) -> tuple[int, int, int]:
        """Run the steps ``wanted`` needs, each once its tensors exist, adding their
        outputs to ``values``; returns the compute durations they were charged."""
        steps = self.scheduling.steps
        pending = sorted(self.scheduling.steps_for(wanted))
        running: dict[asyncio.Future[InferResponse], int] = {}
        compute = (0, 0, 0)
        failure: ServerError | None = None
        try:
            while pending or running:
                for index in [i for i in pending
                              if all(t in values for _, t in steps[i].input_map)]:
                    pending.remove(index)
                    step_request = self._step_request(index, values, request)
                    running[asyncio.ensure_future(models[index].infer(step_request))] = index
                assert running, "check_data_flow leaves no step waiting forever"
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    index = running.pop(task)
                    try:
                        response = task.result()
                    except ServerError as exc:
                        failure = failure or type(exc)(
                            f"ensemble '{self.name}' {self.scheduling.describe(index)} "
                            f"failed: {exc}")
                        pending = []  # let the running steps finish; start no more
                        continue
                    names = dict(steps[index].output_map)
                    for output in response.outputs:
                        values[names[output.name]] = (output.datatype, output.data)
                    compute = (compute[0] + response.compute_ns[0],
                               compute[1] + response.compute_ns[1],
                               compute[2] + response.compute_ns[2])
        finally:
            for task in running:  # only when this request is cancelled or a bug raised
                task.cancel()
        if failure is not None:
            raise failure
        return compute

    def _step_request(self, index: int, values: dict[str, tuple[str, np.ndarray]],
                      request: InferRequest) -> InferRequest:
        step = self.scheduling.steps[index]
        inputs = [InferInput(key, values[tensor][0], values[tensor][1].shape, values[tensor][1])
                  for key, tensor in step.input_map]
        outputs = [RequestedOutput(key, binary=True) for key, _ in step.output_map]
        return InferRequest(inputs, outputs, request.id, binary_output=True,
                            parameters=request.parameters)

    # -- life cycle ---------------------------------------------------------------------------
    def metadata(self, versions: list[str]) -> dict[str, Any]:
        return metadata_of(self.config, versions)

    def close(self) -> None:
        """Stop taking requests; those already running finish."""
        self._closed = True
        if self._cache is not None:
            self._cache.close()


class _Tensor:
    """What one side of an ensemble tensor declares: its type and shape, and who says so."""

    def __init__(self, config: ModelConfig, tensor: TensorConfig, who: str) -> None:
        self.datatype = tensor.datatype
        self.full = full_shape(config, tensor)
        self.who = who

    def check_matches(self, other: _Tensor, where: str) -> None:
        if self.datatype != other.datatype:
            raise Unavailable(f"{where}: data type {self.datatype} ({self.who}) differs from "
                              f"{other.datatype} ({other.who})")
        # Shapes are compared with the batch dimension: a batching model's [4] (a request's
        # [-1, 4]) meets a non-batching model's [-1, 4], as Triton allows; tensors pass
        # between steps unchanged, so a non-batching [4] would not fit it.
        if not _agree(self.full, other.full):
            raise Unavailable(f"{where}: shape {list(self.full)} ({self.who}) does not match "
                              f"{list(other.full)} ({other.who}); -1 matches any size")


def _agree(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b))
