"""The element types each math layer accepts, as TensorRT documents them, and the check that
refuses others with the layer's name."""

from __future__ import annotations

from collections.abc import Collection

from engine.network.layer import ILayer
from engine.types import DataType

FLOATS = frozenset({DataType.FLOAT, DataType.HALF, DataType.BF16})
# INT8 here is TensorRT's quantized INT8: the CPU kernels compute it in float and round back.
FLOATS_AND_INT8 = FLOATS | {DataType.INT8}
INTEGERS = frozenset({DataType.INT32, DataType.INT64})
NUMERIC = FLOATS_AND_INT8 | INTEGERS


def require_dtype(layer: ILayer, what: str, dtype: DataType, allowed: Collection[DataType],
                  operation: str = "") -> None:
    """Fail naming ``layer`` when ``dtype`` is not one of ``allowed``."""
    if dtype not in allowed:
        names = ", ".join(sorted(d.name for d in allowed))
        subject = operation or layer.layer_type.name
        layer.fail(f"{what} has type {dtype.name}; {subject} accepts {names}")


def require_same_dtype(layer: ILayer, names: tuple[str, str], a: DataType, b: DataType) -> None:
    """Fail naming ``layer`` when two inputs that must agree in type do not."""
    if a != b:
        layer.fail(f"{names[0]} has type {a.name} but {names[1]} has type {b.name}; they must "
                   f"be the same")
