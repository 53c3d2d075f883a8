"""Transpose / reshape elimination: a shuffle read only by another shuffle is merged into it
(a transpose followed by its inverse cancels, two reshapes become one), and shuffles that do
nothing (identity transposes, a reshape to the same shape) are removed.

Preconditions: the shuffles take no shape tensor (input 1) and all shapes involved are static;
a merge happens only when the combined operation is one transpose-reshape-transpose; a
removed shuffle's output is not a network output whose input is a network input or output.
"""

from __future__ import annotations

from engine.builder.passes.context import PassContext
from engine.builder.passes.rewrite import insert_layer, only_consumer, remove_layer, replace_tensor
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layers.shape_reshape import IShuffleLayer, Permutation
from engine.types import Dims

Op = tuple[str, tuple[int, ...]]  # ("T", permutation) or ("R", static shape)


def _ops(network: INetworkDefinition, shuffle: IShuffleLayer) -> list[Op] | None:
    """The shuffle as a list of operations with identities dropped; None if not static."""
    x = shuffle._inputs[0]
    if len(shuffle._inputs) > 1 and shuffle._inputs[1] is not None or x is None:
        return None
    shape_in = network._info(x).shape
    shape_out = network._info(shuffle._outputs[0]).shape
    if any(d < 0 for d in shape_in + shape_out):
        return None
    first = tuple(shuffle.first_transpose[:len(shape_in)])
    second = tuple(shuffle.second_transpose[:len(shape_out)])
    ops: list[Op] = []
    if first != tuple(range(len(first))):
        ops.append(("T", first))
    if shuffle.reshape_dims is not None:
        middle = [0] * len(second)
        for i, axis in enumerate(second):
            middle[axis] = shape_out[i]
        ops.append(("R", tuple(middle)))
    if second != tuple(range(len(second))):
        ops.append(("T", second))
    return ops


def _simplify(ops: list[Op], shape_in: tuple[int, ...]) -> list[Op]:
    """Compose adjacent transposes, keep the last of adjacent reshapes, drop identities."""
    out: list[Op] = []
    shapes = [shape_in]  # shapes[i]: the shape after out[:i]
    for kind, value in ops:
        if out and out[-1][0] == kind:
            prev = out.pop()[1]
            shapes.pop()
            if kind == "T":
                value = tuple(prev[i] for i in value)
        shape = shapes[-1]
        after = tuple(shape[i] for i in value) if kind == "T" else value
        if kind == "T" and value == tuple(range(len(value))) or kind == "R" and value == shape:
            continue
        out.append((kind, value))
        shapes.append(after)
    return out


def _fits(ops: list[Op]) -> bool:
    return [k for k, _ in ops] in ([], ["T"], ["R"], ["T", "R"], ["R", "T"], ["T", "R", "T"])


def _build(network: INetworkDefinition, source: IShuffleLayer, ops: list[Op]) -> IShuffleLayer:
    layer = IShuffleLayer(network, source._inputs[0])  # type: ignore[arg-type]
    kinds = [k for k, _ in ops]
    if kinds and kinds[0] == "T":
        perm = ops[0][1]
        layer.first_transpose = Permutation(perm + tuple(range(len(perm), Dims.MAX_DIMS)))
        ops = ops[1:]
    if ops and ops[0][0] == "R":
        layer.reshape_dims = Dims(ops[0][1])
        layer.zero_is_placeholder = False
        ops = ops[1:]
    if ops:
        perm = ops[0][1]
        layer.second_transpose = Permutation(perm + tuple(range(len(perm), Dims.MAX_DIMS)))
    return layer


def _remove_identity(network: INetworkDefinition, shuffle: IShuffleLayer) -> bool:
    x, out = shuffle._inputs[0], shuffle._outputs[0]
    assert x is not None
    if out in network._outputs and (x._producer is None or x in network._outputs):
        return False
    if network._info(x).shape != network._info(out).shape:
        return False
    replace_tensor(network, out, x)
    remove_layer(network, shuffle)
    return True


def eliminate_shuffles(network: INetworkDefinition, context: PassContext | None = None) -> bool:
    changed = False
    progress = True
    while progress:
        progress = False
        for shuffle in topological_order(network._layers):
            if type(shuffle) is IShuffleLayer and _eliminate(network, shuffle):
                progress = changed = True
                break  # the order changed: start again
    return changed


def _eliminate(network: INetworkDefinition, shuffle: IShuffleLayer) -> bool:
    ops = _ops(network, shuffle)
    if ops is None:
        return False
    x = shuffle._inputs[0]
    assert x is not None
    shape_in = network._info(x).shape
    reader = only_consumer(network, shuffle._outputs[0])
    if type(reader) is IShuffleLayer:
        after = _ops(network, reader)
        merged = None if after is None else _simplify(ops + after, shape_in)
        if merged is not None and _fits(merged):
            fused = _build(network, shuffle, merged)
            fused.name = f"{shuffle.name} + {reader.name}"
            output = insert_layer(network, fused, like=reader._outputs[0])
            replace_tensor(network, reader._outputs[0], output)
            remove_layer(network, reader)
            remove_layer(network, shuffle)
            if not merged:
                _remove_identity(network, fused)
            return True
    return not _simplify(ops, shape_in) and _remove_identity(network, shuffle)
