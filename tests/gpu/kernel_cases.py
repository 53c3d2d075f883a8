"""Test cases for the GPU kernel comparison: per layer type, small layers on random inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import engine as trt
from engine.network.layer import ILayer, LayerType

RNG = np.random.default_rng(20261123)


def rand(*shape: int, dtype: type = np.float32) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return RNG.standard_normal(shape).astype(dtype)
    if np.dtype(dtype) == np.bool_:
        return RNG.integers(0, 2, shape).astype(bool)
    return RNG.integers(-5, 6, shape).astype(dtype) if np.dtype(dtype).kind == "i" \
        else RNG.integers(0, 11, shape).astype(dtype)


@dataclass
class KernelCase:
    name: str
    inputs: dict[str, np.ndarray]
    define: Callable[[trt.INetworkDefinition, dict[str, trt.ITensor]], ILayer]
    tolerance: dict[str, float] = field(default_factory=dict)


CASES: dict[LayerType, list[KernelCase]] = {}


def case(layer_type: LayerType, name: str, inputs: dict[str, np.ndarray],
         define: Callable[[trt.INetworkDefinition, dict[str, trt.ITensor]], ILayer],
         **tolerance: float) -> None:
    CASES.setdefault(layer_type, []).append(KernelCase(name, inputs, define, tolerance))


# -- basic ------------------------------------------------------------------------------------
for dtype in (np.float32, np.float16, np.int32, np.int64, np.bool_):
    case(LayerType.IDENTITY, f"identity-{np.dtype(dtype).name}", {"x": rand(2, 3, 4, dtype=dtype)},
         lambda net, t: net.add_identity(t["x"]))


def _identity_to_half(net, t):
    layer = net.add_identity(t["x"])
    layer.set_output_type(0, trt.float16)
    return layer


case(LayerType.IDENTITY, "identity-cast-f16", {"x": rand(5, 7)}, _identity_to_half)
case(LayerType.CONSTANT, "constant-f32", {},
     lambda net, t: net.add_constant((3, 4), rand(3, 4)))
case(LayerType.CONSTANT, "constant-i64", {},
     lambda net, t: net.add_constant((6,), rand(6, dtype=np.int64)))
