"""Shape and type inference over a network: the same code runs while a network is being
defined (shapes may hold -1), when the builder plans memory, and when a context resolves the
concrete shapes of a run.

Small values (shape tensors and their arithmetic) are computed along the way by a value
evaluator that the package installs (the CPU kernels); the network itself knows no kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import NetworkError
from engine.network.layer import ILayer, TensorInfo
from engine.types import nptype

if TYPE_CHECKING:
    from engine.network.tensor import ITensor

# Values of at most this many elements are propagated (shape tensors are tiny).
MAX_VALUE_ELEMENTS = 64

ValueEvaluator = Callable[[ILayer, list[np.ndarray | None]], list[np.ndarray]]
_evaluator: ValueEvaluator | None = None


def set_value_evaluator(evaluator: ValueEvaluator | None) -> None:
    """Install the function that computes a layer's outputs from known input values."""
    global _evaluator
    _evaluator = evaluator


def _small(info: TensorInfo | None) -> bool:
    return info is None or (info.value is not None and info.value.size <= MAX_VALUE_ELEMENTS)


def infer_layer(layer: ILayer, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
    """Infer the outputs of ``layer``; values too when every input value is known and small."""
    try:
        outputs = list(layer.infer(inputs))
    except NetworkError:
        raise
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        layer.fail(str(exc) or type(exc).__name__)
    if len(outputs) != layer.num_outputs:
        raise AssertionError(f"{type(layer).__name__}.infer returned {len(outputs)} outputs, "
                             f"layer has {layer.num_outputs}")
    for index, dtype in layer._output_types.items():
        out = outputs[index]
        value: np.ndarray | None = None if out.value is None \
            else out.value.astype(nptype(dtype))
        outputs[index] = TensorInfo(out.shape, dtype, value)
    if (
        _evaluator is not None
        and getattr(layer, "_evaluable", True)
        and all(_small(info) for info in inputs)
        and any(info is not None for info in inputs)
        and all(o.value is None for o in outputs)
        and all(o.is_static and int(np.prod(o.shape)) <= MAX_VALUE_ELEMENTS for o in outputs)
    ):
        values = _evaluator(layer, [None if i is None else i.value for i in inputs])
        outputs = [
            TensorInfo(tuple(np.shape(v)), o.dtype, np.asarray(v).astype(nptype(o.dtype)))
            for o, v in zip(outputs, values)
        ]
    return outputs


def topological_order(layers: Iterable[ILayer]) -> list[ILayer]:
    """Layers ordered so that each comes after the producers of its inputs.

    Raises ``NetworkError`` naming a layer on a cycle.
    """
    layers = list(layers)
    # Most lists are in order already (as parsed, as built): checked in one pass.
    placed: set[ILayer | None] = {None}
    for layer in layers:
        if not placed.issuperset([t if t is None else t._producer for t in layer._inputs]):
            break
        placed.add(layer)
    else:
        return layers
    order: list[ILayer] = []
    state: dict[int, int] = {}  # id(layer) -> 1 visiting, 2 done
    for root in layers:
        if state.get(id(root)) == 2:
            continue
        stack: list[tuple[ILayer, int]] = [(root, 0)]
        state[id(root)] = 1
        while stack:
            layer, i = stack.pop()
            if i < layer.num_inputs:
                stack.append((layer, i + 1))
                tensor = layer.get_input(i)
                producer = None if tensor is None else tensor._producer
                if producer is None:
                    continue
                seen = state.get(id(producer))
                if seen == 1:
                    raise NetworkError(f"layer '{producer.name}' ({producer.layer_type.name}) "
                                       f"is on a cycle")
                if seen is None:
                    state[id(producer)] = 1
                    stack.append((producer, 0))
            else:
                state[id(layer)] = 2
                order.append(layer)
    return order


def infer_all(
    layers: Iterable[ILayer],
    inputs: Mapping[ITensor, TensorInfo],
) -> dict[ITensor, TensorInfo]:
    """Infer every tensor of ``layers`` (in topological order) from the network inputs."""
    infos: dict[ITensor, TensorInfo] = dict(inputs)
    for layer in layers:
        ins = [None if t is None else infos[t] for t in layer._inputs]
        for tensor, info in zip(layer._outputs, infer_layer(layer, ins)):
            infos[tensor] = info
    return infos
