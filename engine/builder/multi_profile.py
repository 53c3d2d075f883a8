"""What the builder needs beyond the first optimization profile: the values of shape-tensor
inputs per profile, tensor infos at each profile's min/opt/max, and tensor sizes at the
largest shapes of any profile (the activation memory plan must fit every profile)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.builder.profile import IOptimizationProfile
from engine.errors import BuildError
from engine.network.definition import INetworkDefinition
from engine.network.inference import infer_all
from engine.network.layer import ILayer, TensorInfo
from engine.network.tensor import ITensor
from engine.types import TensorLocation, nbytes_of, nptype

ShapeValues = dict[str, list[list[int]]]


def profile_shape_values(network: INetworkDefinition, profiles: Sequence[IOptimizationProfile]
                         ) -> list[ShapeValues]:
    """Per profile, [min, opt, max] values of the shape-tensor inputs given them with
    ``profile.set_shape_input``; ``BuildError`` when they do not fit the input's shape."""
    shape_inputs = [t for t in network._inputs if t.is_shape_tensor]
    result: list[ShapeValues] = []
    for index, profile in enumerate(profiles or [IOptimizationProfile()]):
        values: ShapeValues = {}
        for t in shape_inputs:
            got = profile.get_shape_input(t.name)
            if not got:  # values unknown until run time: shapes downstream stay dynamic
                continue
            count = int(np.prod([d for d in t.shape if d >= 0])) if t.shape else 1
            for label, v in zip(("min", "opt", "max"), got):
                if any(d < 0 for d in t.shape) or len(v) != count:
                    raise BuildError(f"optimization profile {index}, shape input '{t.name}': "
                                     f"{label} values {tuple(v)} do not fit its shape "
                                     f"{tuple(t.shape)} (a shape input needs a static shape)")
            if any(not a <= b <= c for lo, mid, hi in [got] for a, b, c in zip(lo, mid, hi)):
                raise BuildError(f"optimization profile {index}, shape input '{t.name}': need "
                                 f"min <= opt <= max, got {got}")
            values[t.name] = [list(v) for v in got]
        result.append(values)
    return result


def input_infos(inputs: Sequence[ITensor], shapes: Mapping[str, Sequence[Sequence[int]]],
                values: ShapeValues, which: int) -> dict[ITensor, TensorInfo]:
    """Infos of the network inputs at ``which`` (0 min, 1 opt, 2 max) of one profile."""
    infos = {}
    for t in inputs:
        shape = tuple(shapes[t.name][which])
        value: np.ndarray | None = None
        if t.name in values:
            value = np.asarray(values[t.name][which], nptype(t.dtype)).reshape(shape)
        infos[t] = TensorInfo(shape, t.dtype, value)
    return infos


def infos_per_profile(order: Sequence[ILayer], inputs: Sequence[ITensor],
                      profiles: Sequence[Mapping[str, Any]], values: Sequence[ShapeValues]
                      ) -> list[tuple[dict[ITensor, TensorInfo], dict[ITensor, TensorInfo],
                                      dict[ITensor, TensorInfo]]]:
    """Per profile, the infos of every tensor at its min, opt and max shapes (read-only:
    equal input shapes and values share one inference, as static inputs make min, opt and
    max equal)."""
    inferred: dict[tuple[Any, ...], dict[ITensor, TensorInfo]] = {}
    result = []
    for shapes, vals in zip(profiles, values):
        per_shape = []
        for which in range(3):
            key = tuple((tuple(shapes[t.name][which]),
                         tuple(vals[t.name][which]) if t.name in vals else None) for t in inputs)
            if key not in inferred:
                inferred[key] = infer_all(order, input_infos(inputs, shapes, vals, which))
            per_shape.append(inferred[key])
        at_min, at_opt, at_max = per_shape
        result.append((at_min, at_opt, at_max))
    return result


def largest_sizes(per_profile: Sequence[tuple[Mapping[ITensor, TensorInfo], ...]]
                  ) -> dict[ITensor, int]:
    """Bytes of every statically sized tensor at the largest max shape over the profiles."""
    sizes: dict[ITensor, int] = {}
    for infos in per_profile:
        for tensor, info in infos[2].items():
            if info.is_static:
                sizes[tensor] = max(sizes.get(tensor, 0), nbytes_of(info.dtype, info.shape))
    return sizes


def io_location(tensor: ITensor) -> str:
    """Where an I/O tensor lives: shape-tensor inputs on the host, as in TensorRT."""
    if tensor.is_network_input and tensor.is_shape_tensor:
        return TensorLocation.HOST.name
    return tensor.location.name
