"""CPU kernels of the shape family: Shape, Shuffle, Concatenation, Squeeze, Unsqueeze and
Assertion here; the other layers of the family in the ``shape_*`` modules beside this one."""

from __future__ import annotations

import numpy as np

from engine.errors import ExecutionError
from engine.kernels.cpu import (  # noqa: F401 - registers the family's other kernels
    shape_fill,
    shape_gather,
    shape_indices,
    shape_quantize,
    shape_reverse_sequence,
    shape_slice,
)
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.shape_assertion import IAssertionLayer
from engine.network.layers.shape_of import IConcatenationLayer
from engine.network.layers.shape_reshape import (
    IShuffleLayer,
    ISqueezeLayer,
    IUnsqueezeLayer,
    resolve_reshape,
)


@kernel(LayerType.SHAPE, backend="cpu", name="cpu.shape")
def shape(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.array(inputs[0].shape, np.int64)]


@kernel(LayerType.SHUFFLE, backend="cpu", name="cpu.shuffle")
def shuffle(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    assert isinstance(layer, IShuffleLayer)
    x = inputs[0]
    assert x is not None
    out = np.transpose(x, layer.first_transpose[:x.ndim])
    shape_tensor = inputs[1] if len(inputs) > 1 else None
    dims: tuple[int, ...] | None
    if shape_tensor is not None:
        dims = tuple(int(d) for d in np.asarray(shape_tensor).reshape(-1))
    else:
        dims = None if layer.reshape_dims is None else tuple(layer.reshape_dims)
    if dims is not None:
        out = out.reshape(resolve_reshape(out.shape, dims, layer.zero_is_placeholder))
    return [np.transpose(out, layer.second_transpose[:out.ndim]).copy()]


@kernel(LayerType.CONCATENATION, backend="cpu", name="cpu.concatenation")
def concatenation(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IConcatenationLayer)
    return [np.concatenate(inputs, axis=layer.axis)]


def _axes(values: np.ndarray, rank: int) -> tuple[int, ...]:
    return tuple(int(a) % rank for a in np.asarray(values).reshape(-1))


@kernel(LayerType.SQUEEZE, backend="cpu", name="cpu.squeeze")
def squeeze(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, ISqueezeLayer)
    x, axes = inputs
    return [np.squeeze(x, axis=_axes(axes, x.ndim)).copy()]


@kernel(LayerType.UNSQUEEZE, backend="cpu", name="cpu.unsqueeze")
def unsqueeze(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IUnsqueezeLayer)
    x, axes = inputs
    return [np.expand_dims(x, _axes(axes, x.ndim + np.asarray(axes).size)).copy()]


@kernel(LayerType.ASSERTION, backend="cpu", name="cpu.assertion")
def assertion(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IAssertionLayer)
    if not np.all(inputs[0]):
        raise ExecutionError(f"layer '{layer.name}' (ASSERTION): assertion failed: "
                             f"{layer.message}")
    return []
