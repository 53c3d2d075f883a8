"""Build a network twice, with the optimizer's passes and with the pass list emptied, and
compare: what the pass tests share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pytest

import engine as trt
from engine.builder import pipeline
from tests.support import build_engine

weights_rng = np.random.default_rng(1)

Define = Callable[[trt.INetworkDefinition, dict[str, trt.ITensor]], Sequence[trt.ITensor]]


def run_optimized_and_plain(monkeypatch: pytest.MonkeyPatch, define: Define,
                            inputs: Mapping[str, np.ndarray], **kwargs: object
                            ) -> tuple[trt.ICudaEngine, dict[str, np.ndarray],
                                       dict[str, np.ndarray]]:
    """(optimized engine, its outputs, outputs of the build without passes).

    ``define`` runs once per build: weights it draws come from ``weights_rng``, which is
    reseeded before each, so both builds get the same weights."""
    global weights_rng
    weights_rng = np.random.default_rng(1)
    optimized = build_engine(define, inputs, **kwargs)  # type: ignore[arg-type]
    weights_rng = np.random.default_rng(1)
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "PASSES", [])
        plain = build_engine(define, inputs, **kwargs)  # type: ignore[arg-type]
    feeds = dict(inputs)
    return (optimized, optimized.create_execution_context().infer(feeds),
            plain.create_execution_context().infer(feeds))


def draw(shape: Sequence[int], low: float | None = None, high: float | None = None
         ) -> np.ndarray:
    """Random float32 weights from ``weights_rng`` (normal, or uniform in [low, high])."""
    if low is not None and high is not None:
        return weights_rng.uniform(low, high, tuple(shape)).astype(np.float32)
    return weights_rng.standard_normal(tuple(shape)).astype(np.float32)


def layer_types(engine: trt.ICudaEngine) -> list[str]:
    return [kind for _, kind, _ in engine.layer_tactics if kind != "CONSTANT"]


def layer_names(engine: trt.ICudaEngine) -> list[str]:
    return [name for name, kind, _ in engine.layer_tactics if kind != "CONSTANT"]


def assert_same(optimized: Mapping[str, np.ndarray], plain: Mapping[str, np.ndarray],
                rtol: float = 1e-4, atol: float = 1e-5) -> None:
    assert optimized.keys() == plain.keys()
    for name in plain:
        np.testing.assert_allclose(optimized[name], plain[name], rtol=rtol, atol=atol,
                                   err_msg=name)
