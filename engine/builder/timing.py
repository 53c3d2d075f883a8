"""Tactic timing: run each candidate implementation of a layer on inputs of the profile's
``opt`` shapes and keep the fastest (TensorRT's "times several implementations of each layer
and picks the fastest")."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from engine.kernels.registry import Tactic
from engine.network.layer import ILayer, TensorInfo
from engine.types import nptype


def sample_inputs(infos: list[TensorInfo | None], seed: int = 0) -> list[np.ndarray | None] | None:
    """Host arrays to time a layer on: known values as they are, floats random, integers and
    booleans zero (always valid as indices). None when a shape is not known."""
    rng = np.random.default_rng(seed)
    arrays: list[np.ndarray | None] = []
    for info in infos:
        if info is None:
            arrays.append(None)
        elif info.value is not None:
            arrays.append(info.value)
        elif not info.is_static:
            return None
        elif info.dtype.is_float:
            arrays.append(rng.standard_normal(info.shape).astype(nptype(info.dtype)))
        else:
            arrays.append(np.zeros(info.shape, nptype(info.dtype)))
    return arrays


TIMING_ROUNDS = 3


def time_tactics(tactics: list[Tactic], layer: ILayer, device_inputs: list[Any],
                 iterations: int, synchronize: Any, device_timer: Any = None
                 ) -> list[tuple[Tactic, float | Exception]]:
    """Per tactic, milliseconds per run (or the error it raised): after one warm-up run each,
    ``TIMING_ROUNDS`` rounds that time ``iterations`` runs of every tactic in turn; a tactic
    scores its fastest round. Taking turns and keeping the fastest round keep a busy host's
    pauses from deciding the choice.

    A backend that replays engines as CUDA graphs passes ``device_timer(run, iterations,
    rounds)`` (device milliseconds of one run, or None when it cannot measure it): tactics
    are then compared by the time the device spends on them, not by their host launch costs,
    which a graph replay does not pay. A tactic it cannot measure is timed by the wall clock."""
    results: dict[int, float | Exception] = {}
    # A tactic may take its inputs in another format than the builder's samples (cuDNN's
    # channels-last): it is timed on inputs in its own format, as its producers hand them over.
    inputs_of = {index: getattr(tactic.run, "timing_inputs", lambda a: a)(device_inputs)
                 for index, tactic in enumerate(tactics)}
    for index, tactic in enumerate(tactics):
        try:
            tactic.run(layer, inputs_of[index])
            synchronize()
            results[index] = float("inf")
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            results[index] = exc
    runs = max(1, iterations)
    if device_timer is not None:
        wall_clock = []
        for index, tactic in enumerate(tactics):
            if isinstance(results[index], Exception):
                continue
            ms = device_timer(lambda t=tactic, a=inputs_of[index]: t.run(layer, a), runs,
                              TIMING_ROUNDS)
            if ms is None:
                wall_clock.append(index)
            else:
                results[index] = ms
        if not wall_clock:
            return [(tactic, results[index]) for index, tactic in enumerate(tactics)]
    for _ in range(TIMING_ROUNDS):
        for index, tactic in enumerate(tactics):
            best = results[index]
            if isinstance(best, Exception) or (device_timer is not None
                                               and index not in wall_clock):
                continue
            start = time.perf_counter()
            for _ in range(runs):
                tactic.run(layer, inputs_of[index])
            synchronize()
            results[index] = min(best, (time.perf_counter() - start) * 1000.0 / runs)
    return [(tactic, results[index]) for index, tactic in enumerate(tactics)]
