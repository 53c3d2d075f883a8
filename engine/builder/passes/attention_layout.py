"""Attention head layout: the shuffles that split q, k and v into heads and merge the heads of
the output lose their transposes, and the fused attention layer reads and writes the
sequence-major layout instead (``sequence_major``), which a tactic can read through strides::

    q = shuffle(xq: reshape [B, S, H, D], transpose (0, 2, 1, 3))      -> shuffle(xq: reshape)
    k = shuffle(xk: reshape [B, S, H, D], transpose (0, 2, 1, 3))      -> shuffle(xk: reshape)
        (or (0, 2, 3, 1), k given as [B, H, D, S], without transpose_k)
    v = shuffle(xv: reshape [B, S, H, D], transpose (0, 2, 1, 3))      -> shuffle(xv: reshape)
    y = shuffle(attention(q, k, v, mask): transpose (0, 2, 1, 3), ...) -> shuffle(attention: ...)

Preconditions: q, k and v have rank 4; each q, k or v shuffle is read only by the attention
layer, and transposes only after its reshape, or has no reshape (its two transposes together
are then the permutation); the attention output is read by one shuffle, whose first transpose
is (0, 2, 1, 3), and otherwise only by Shape layers (a dynamic export reads B and S there; the
pass permutes what they read back to [B, H, S, D]); the target backend has a tactic for the
sequence-major layer. A shuffle left with nothing to do (no reshape, identity transposes) is
removed.

Reshapes are kept as they are (static dims, 0 placeholders or a shape tensor): each still sees
the tensor it saw before, since a q, k or v shuffle reshapes before the transpose that goes
and the output shuffle reshapes after it.
"""

from __future__ import annotations

import numpy as np

from engine.builder.passes.context import PassContext
from engine.builder.passes.rewrite import (
    add_constant,
    insert_layer,
    only_consumer,
    remove_layer,
    replace_tensor,
)
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layer import LayerType
from engine.network.layers.fused_attention import IFusedAttentionLayer
from engine.network.layers.shape_gather import GatherMode, IGatherLayer
from engine.network.layers.shape_of import IShapeLayer
from engine.network.layers.shape_reshape import IDENTITY_PERMUTATION, IShuffleLayer, Permutation
from engine.network.tensor import ITensor

SPLIT_HEADS = (0, 2, 1, 3)  # [B, S, H, D] <-> [B, H, S, D]; its own inverse
SPLIT_HEADS_K_TRANSPOSED = (0, 2, 3, 1)  # [B, S, H, D] -> [B, H, D, S]
NO_TRANSPOSE = (0, 1, 2, 3)


def _reshapes(shuffle: IShuffleLayer) -> bool:
    return shuffle.reshape_dims is not None or \
        len(shuffle._inputs) > 1 and shuffle._inputs[1] is not None


def _split_heads(network: INetworkDefinition, tensor: ITensor | None,
                 attention: IFusedAttentionLayer) -> tuple[IShuffleLayer, tuple[int, ...]] | None:
    """The shuffle producing ``tensor`` for ``attention`` alone and the permutation it applies
    after its reshape; None when it is no such shuffle or transposes before reshaping."""
    if tensor is None:
        return None
    shuffle = tensor._producer
    if type(shuffle) is not IShuffleLayer or only_consumer(network, tensor) is not attention:
        return None
    first, second = tuple(shuffle.first_transpose[:4]), tuple(shuffle.second_transpose[:4])
    if not _reshapes(shuffle):
        return shuffle, tuple(first[axis] for axis in second)
    x = shuffle._inputs[0]
    rank = 0 if x is None else network._info(x).rank
    if first[:rank] != tuple(range(rank)):
        return None
    return shuffle, second


def _match(network: INetworkDefinition, attention: IFusedAttentionLayer
           ) -> tuple[list[IShuffleLayer], IShuffleLayer, list[IShapeLayer]] | None:
    """The q, k, v shuffles, the output shuffle and the Shape layers reading the output of
    ``attention``, if they all fold."""
    q, k, v = attention._inputs[:3]
    out = attention._outputs[0]
    if q is None or network._info(q).rank != 4 or network._info(out).rank != 4:
        return None
    k_split = SPLIT_HEADS if attention.transpose_k else SPLIT_HEADS_K_TRANSPOSED
    splits = []
    for tensor, permutation in ((q, SPLIT_HEADS), (k, k_split), (v, SPLIT_HEADS)):
        found = _split_heads(network, tensor, attention)
        if found is None or found[1] != permutation:
            return None
        splits.append(found[0])
    readers = [layer for layer, _ in network._consumers_of(out)]
    merges = [layer for layer in readers if type(layer) is IShuffleLayer]
    shapes = [layer for layer in readers if type(layer) is IShapeLayer]
    if out in network._outputs or len(merges) != 1 or len(merges) + len(shapes) != len(readers):
        return None
    merge = merges[0]
    if tuple(merge.first_transpose[:4]) != SPLIT_HEADS:
        return None
    return splits, merge, shapes


def _fold(network: INetworkDefinition, attention: IFusedAttentionLayer,
          splits: list[IShuffleLayer], merge: IShuffleLayer, shapes: list[IShapeLayer],
          context: PassContext) -> bool:
    saved = [(s, s.first_transpose, s.second_transpose) for s in splits + [merge]]
    transpose_k = attention.transpose_k
    for shuffle in splits:
        shuffle.first_transpose = shuffle.second_transpose = Permutation(IDENTITY_PERMUTATION)
    merge.first_transpose = Permutation(IDENTITY_PERMUTATION)
    attention.transpose_k = True
    attention.sequence_major = True
    if not context.accepts(attention):
        for shuffle, first, second in saved:
            shuffle.first_transpose, shuffle.second_transpose = first, second
        attention.transpose_k = transpose_k
        attention.sequence_major = False
        return False
    for shuffle in splits + [merge]:
        if not _reshapes(shuffle) and tuple(shuffle.second_transpose[:4]) == NO_TRANSPOSE:
            x = shuffle._inputs[0]
            assert x is not None
            replace_tensor(network, shuffle._outputs[0], x)
            remove_layer(network, shuffle)
    for shape in shapes:
        _read_heads_first(network, shape)
    return True


def _read_heads_first(network: INetworkDefinition, shape: IShapeLayer) -> None:
    """Make ``shape``, which reads a sequence-major attention output, give what it gave before:
    the shape in [B, H, S, D] order (a new Shape layer and a Gather in its place)."""
    source = shape._inputs[0]
    assert source is not None
    sequence_major = IShapeLayer(network, [source])
    sequence_major.name = shape.name
    indices = add_constant(network, np.array(SPLIT_HEADS, np.int64), f"{shape.name} heads first")
    gather = IGatherLayer(network, insert_layer(network, sequence_major), indices, 0,
                          GatherMode.DEFAULT)
    gather.name = f"{shape.name} heads first"
    old = shape._outputs[0]
    replace_tensor(network, old, insert_layer(network, gather, like=old))
    remove_layer(network, shape)


def fold_attention_head_transposes(network: INetworkDefinition,
                                   context: PassContext | None = None) -> bool:
    context = context or PassContext()
    if not context.has_tactics(LayerType.FUSED_ATTENTION):
        return False
    changed = False
    for attention in topological_order(network._layers):
        if type(attention) is not IFusedAttentionLayer or attention.sequence_major:
            continue
        match = _match(network, attention)
        if match is not None and _fold(network, attention, *match, context):
            changed = True
    return changed
