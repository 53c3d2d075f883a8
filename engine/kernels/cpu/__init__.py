"""The CPU backend: NumPy kernels for every layer. They double as the reference that GPU
tactics are tested against, so they favour clarity over speed where the two conflict."""

from __future__ import annotations

import numpy as np

from engine.kernels.cpu import (  # noqa: F401 - registers kernels  # noqa: F401
    basic,
    fused_attention,
    fused_conv,
    fused_pointwise,
    math,
    plugin,
    shape,
    spatial,
)
from engine.kernels.cpu import quantized as _quantized  # noqa: F401 - registers kernels
from engine.kernels.registry import tactics_for
from engine.network.layer import ILayer

BACKEND = "cpu"


def evaluate(layer: ILayer, values: list[np.ndarray | None]) -> list[np.ndarray]:
    """Run ``layer`` on known input values with its first CPU tactic (shape-tensor folding)."""
    tactics = tactics_for(BACKEND, layer.layer_type)
    if not tactics:
        layer.fail("no CPU kernel to evaluate this layer")
    return [np.asarray(v) for v in tactics[0].run(layer, values)]


def to_device(array: np.ndarray) -> np.ndarray:
    """Host array to this backend's array type (the identity on the CPU)."""
    return array


def synchronize() -> None:
    """Wait for queued work (nothing is ever queued on the CPU)."""
