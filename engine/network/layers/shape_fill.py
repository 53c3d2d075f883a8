"""``IFillLayer``: a tensor generated from its shape: a linear ramp or random values.

TensorRT has no seed for the random operations; this engine adds a ``seed`` attribute (default
0) so that an engine gives the same values on every run and every machine. Change the seed to
draw other values.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from engine.network.inference import MAX_VALUE_ELEMENTS
from engine.network.layer import ILayer, LayerType, TensorInfo, attribute_enum
from engine.network.layers.shape_values import dims_or_unknown
from engine.types import DataType, Dims, nptype, volume

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition


@attribute_enum
class FillOperation(enum.IntEnum):
    """How an ``IFillLayer`` makes its values."""

    LINSPACE = 0  # alpha + sum_k beta[k] * index_k (a scalar beta is [beta])
    RANDOM_UNIFORM = 1  # uniform in [alpha, beta)
    RANDOM_NORMAL = 2  # normal with mean alpha and standard deviation beta


OUTPUT_TYPES = {
    FillOperation.LINSPACE: (DataType.FLOAT, DataType.INT32, DataType.INT64),
    FillOperation.RANDOM_UNIFORM: (DataType.FLOAT, DataType.HALF),
    FillOperation.RANDOM_NORMAL: (DataType.FLOAT, DataType.HALF),
}


def fill_values(operation: FillOperation, shape: Sequence[int], alpha: Any, beta: Any,
                dtype: DataType, seed: int) -> np.ndarray:
    """The values an ``IFillLayer`` produces (``alpha`` and ``beta`` scalars or arrays)."""
    shape = tuple(int(d) for d in shape)
    if operation == FillOperation.LINSPACE:
        integral = dtype in (DataType.INT32, DataType.INT64)
        work = np.int64 if integral else np.float64
        steps = np.asarray(beta, work).reshape(-1)
        if steps.size != len(shape) and not (steps.size == 1 and len(shape) <= 1):
            raise ValueError(f"LINSPACE of rank {len(shape)} needs a beta of {len(shape)} "
                             f"values, got {steps.size}")
        out = np.full(shape, np.asarray(alpha, work).reshape(()), work)
        for axis, step in enumerate(steps[:len(shape)]):
            ramp = np.arange(shape[axis], dtype=work) * step
            out = out + ramp.reshape((-1,) + (1,) * (len(shape) - axis - 1))
        return out.astype(nptype(dtype))
    rng = np.random.default_rng(seed)
    low_or_mean = float(np.asarray(alpha).reshape(()))
    high_or_std = float(np.asarray(beta).reshape(()))
    if operation == FillOperation.RANDOM_UNIFORM:
        drawn = rng.uniform(low_or_mean, high_or_std, shape)
    else:
        drawn = rng.normal(low_or_mean, high_or_std, shape)
    return drawn.astype(nptype(dtype))


class IFillLayer(ILayer):
    """Generates a tensor of ``shape`` (or the shape tensor of input 0) by ``operation``.

    ``alpha`` and ``beta`` (or inputs 1 and 2) parametrize it: LINSPACE start and step(s),
    RANDOM_UNIFORM bounds, RANDOM_NORMAL mean and standard deviation. ``to_type`` is the
    output type.
    """

    type = LayerType.FILL
    _validated_on_add = False  # attributes are set after add_*
    _attributes: ClassVar[tuple[str, ...]] = ("shape", "operation", "alpha", "beta", "to_type",
                                              "seed")
    _shape_inputs = (0,)
    _max_inputs = 3

    def __init__(self, network: INetworkDefinition, shape: Sequence[int],
                 operation: FillOperation, to_type: DataType) -> None:
        super().__init__(network, [])
        self.shape = shape
        self.operation = operation
        self.alpha = 0.0
        self.beta = 1.0
        self.to_type = to_type
        self.seed = 0

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "shape":
            value = Dims(value)
        elif key == "operation":
            value = FillOperation(value)
        elif key in ("alpha", "beta"):
            value = float(value)
        elif key == "to_type":
            value = DataType(value)
        elif key == "seed":
            value = int(value)
        super().__setattr__(key, value)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        if self.to_type not in OUTPUT_TYPES[self.operation]:
            allowed = ", ".join(t.name for t in OUTPUT_TYPES[self.operation])
            self.fail(f"{self.operation.name} cannot produce {self.to_type.name}; it produces "
                      f"{allowed}")
        shape_info = inputs[0] if inputs else None
        dims = dims_or_unknown(self, shape_info, "shape (input 0)")
        shape = tuple(self.shape) if dims is None else dims
        if any(d < 0 for d in shape) and (shape_info is None or shape_info.value is not None):
            self.fail(f"shape {shape} must not be negative")
        alpha = inputs[1] if len(inputs) > 1 else None
        beta = inputs[2] if len(inputs) > 2 else None
        for name, info in (("alpha (input 1)", alpha), ("beta (input 2)", beta)):
            if info is not None and info.rank > 1:
                self.fail(f"{name} must be a scalar or 1-D, got shape {info.shape}")
        if alpha is not None and alpha.rank != 0:
            self.fail(f"alpha (input 1) must be a scalar, got shape {alpha.shape}")
        if beta is not None and beta.rank == 1 and self.operation != FillOperation.LINSPACE:
            self.fail(f"{self.operation.name} needs a scalar beta (input 2), got shape "
                      f"{beta.shape}")
        if self.operation == FillOperation.LINSPACE:
            steps = 1 if beta is None or beta.rank == 0 else beta.shape[0]
            if steps >= 0 and len(shape) > 1 and steps != len(shape):
                self.fail(f"LINSPACE of rank {len(shape)} needs a beta (input 2) of "
                          f"{len(shape)} values, got {steps}")
        value = None
        if all(d >= 0 for d in shape) and volume(shape) <= MAX_VALUE_ELEMENTS and all(
                i is None or i.value is not None for i in (alpha, beta)):
            value = fill_values(self.operation, shape,
                                self.alpha if alpha is None else alpha.value,
                                self.beta if beta is None else beta.value,
                                self.to_type, self.seed)
        return [TensorInfo(shape, self.to_type, value)]
