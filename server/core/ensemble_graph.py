"""An ensemble's steps and the data flow between them (Triton's ``ensemble_scheduling``).

Each step sends ensemble tensors to one model's inputs (``input_map``: model input ->
ensemble tensor) and names that model's outputs as ensemble tensors (``output_map``: model
output -> ensemble tensor). The ensemble's inputs are the tensors a request gives; its
outputs are tensors some step produces. Steps may be written in any order: a step runs once
every tensor it reads exists.

``check_data_flow`` checks what the configuration alone decides, as Triton does: every tensor
a step reads is an ensemble input or one step's output, every ensemble output is produced,
every tensor is used, and no step waits (through others) on itself. What needs the step
models' configurations (types, shapes, batch sizes) is checked when the ensemble is bound
to them (``server.core.ensemble``).

>>> steps = EnsembleScheduling((
...     EnsembleStep("double", input_map=(("INPUT0", "x"),), output_map=(("OUTPUT0", "t"),)),
...     EnsembleStep("add", input_map=(("INPUT0", "t"), ("INPUT1", "y")),
...                  output_map=(("OUTPUT0", "sum"),))))
>>> check_data_flow(steps, ["x", "y"], ["sum"], "ensemble 'e'")
>>> sorted(steps.steps_for(["sum"]))
[0, 1]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from server.core.errors import InvalidArgument

LATEST = -1  # a step's model_version: the model's highest ready version


@dataclass(frozen=True)
class EnsembleStep:
    model_name: str
    model_version: int = LATEST
    input_map: tuple[tuple[str, str], ...] = ()  # (model input, ensemble tensor)
    output_map: tuple[tuple[str, str], ...] = ()  # (model output, ensemble tensor)

    def to_json(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "model_version": self.model_version,
                "input_map": dict(self.input_map), "output_map": dict(self.output_map)}


@dataclass(frozen=True)
class EnsembleScheduling:
    steps: tuple[EnsembleStep, ...]

    def describe(self, index: int) -> str:
        return f"step {index} (model '{self.steps[index].model_name}')"

    def producers(self) -> dict[str, int]:
        """Each tensor a step produces, and the index of that step."""
        return {tensor: index for index, step in enumerate(self.steps)
                for _, tensor in step.output_map}

    def steps_for(self, outputs: Iterable[str]) -> set[int]:
        """The steps whose results reach ``outputs``: what a request for them runs (Triton
        prunes the others too)."""
        producers = self.producers()
        needed: set[int] = set()
        stack = [producers[name] for name in outputs if name in producers]
        while stack:
            index = stack.pop()
            if index not in needed:
                needed.add(index)
                stack.extend(producers[tensor] for _, tensor in self.steps[index].input_map
                             if tensor in producers)
        return needed

    def to_json(self) -> dict[str, Any]:
        return {"step": [step.to_json() for step in self.steps]}


def check_data_flow(scheduling: EnsembleScheduling, inputs: list[str], outputs: list[str],
                    where: str) -> None:
    """Refuse an ensemble whose tensors do not flow from its inputs to its outputs, naming
    the step and tensor at fault."""
    steps = scheduling.steps
    if not steps:
        raise InvalidArgument(f"{where}: ensemble_scheduling needs at least one step")
    for index, step in enumerate(steps):
        if not step.model_name:
            raise InvalidArgument(f"{where}: step {index} needs a model_name")
        for field, mapping in (("input_map", step.input_map), ("output_map", step.output_map)):
            if not mapping:
                raise InvalidArgument(f"{where}: {scheduling.describe(index)} needs an {field}")
        if step.model_version != LATEST and step.model_version < 1:
            raise InvalidArgument(f"{where}: {scheduling.describe(index)}: model_version "
                                  f"{step.model_version}; expected -1 (the highest ready "
                                  f"version) or a version number")
    producers: dict[str, int] = {}
    for index, step in enumerate(steps):
        for output, tensor in step.output_map:
            if tensor in inputs:
                raise InvalidArgument(f"{where}: {scheduling.describe(index)} maps its output "
                                      f"'{output}' to '{tensor}', which is an ensemble input")
            if tensor in producers:
                raise InvalidArgument(f"{where}: ensemble tensor '{tensor}' is produced by "
                                      f"both {scheduling.describe(producers[tensor])} and "
                                      f"{scheduling.describe(index)}")
            producers[tensor] = index
    for index, step in enumerate(steps):
        for model_input, tensor in step.input_map:
            if tensor not in producers and tensor not in inputs:
                raise InvalidArgument(f"{where}: {scheduling.describe(index)} input "
                                      f"'{model_input}' is mapped from ensemble tensor "
                                      f"'{tensor}', which no ensemble input or step output "
                                      f"produces")
    for name in outputs:
        if name not in producers:
            raise InvalidArgument(f"{where}: ensemble output '{name}' is produced by no step")
    _check_acyclic(scheduling, producers, where)
    consumed = {tensor for step in steps for _, tensor in step.input_map}
    for name in inputs:
        if name not in consumed:
            raise InvalidArgument(f"{where}: ensemble input '{name}' is used by no step")
    for tensor, index in producers.items():
        if tensor not in consumed and tensor not in outputs:
            raise InvalidArgument(f"{where}: ensemble tensor '{tensor}' (an output of "
                                  f"{scheduling.describe(index)}) is used by no step and is "
                                  f"not an ensemble output")


def _check_acyclic(scheduling: EnsembleScheduling, producers: dict[str, int],
                   where: str) -> None:
    """Refuse steps that wait on themselves, naming one cycle with the tensors along it."""
    feeds = {index: {tensor: producers[tensor] for _, tensor in step.input_map
                     if tensor in producers}
             for index, step in enumerate(scheduling.steps)}
    done: set[int] = set()
    progress = True
    while progress:
        ready = [i for i in feeds if i not in done and set(feeds[i].values()) <= done]
        done.update(ready)
        progress = bool(ready)
    if len(done) == len(feeds):
        return
    # Walk back from a stuck step along stuck producers until a step repeats: a cycle.
    path: list[tuple[int, str]] = []  # (step, the tensor it waits for)
    index = min(set(feeds) - done)
    while index not in [step for step, _ in path]:
        tensor, producer = next((t, p) for t, p in sorted(feeds[index].items())
                                if p not in done)
        path.append((index, tensor))
        index = producer
    cycle = path[[step for step, _ in path].index(index):][::-1]
    links = " ".join(f"{scheduling.describe(producers[tensor])} -['{tensor}']->"
                     for _, tensor in cycle)
    raise InvalidArgument(f"{where}: the steps form a cycle: {links} "
                          f"{scheduling.describe(cycle[-1][0])}")
