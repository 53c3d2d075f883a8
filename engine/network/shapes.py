"""Shape arithmetic shared by the layers' inference: broadcasting and axes, with -1 for
dimensions that are not known until run time."""

from __future__ import annotations

from collections.abc import Sequence


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """NumPy-style broadcast of shapes of equal rank (TensorRT requires equal ranks).

    A dimension of 1 stretches; -1 (unknown) meets 1 as -1 and meets n as n.
    Raises ``ValueError`` naming the dimensions that disagree.
    """
    ranks = {len(s) for s in shapes}
    if len(ranks) != 1:
        raise ValueError(f"inputs must have the same rank, got shapes {[tuple(s) for s in shapes]}")
    out = []
    for axis, dims in enumerate(zip(*shapes)):
        known = {d for d in dims if d not in (1, -1)}
        if len(known) > 1:
            raise ValueError(f"dimension {axis} cannot broadcast: {list(dims)} "
                             f"(shapes {[tuple(s) for s in shapes]})")
        if known:
            out.append(known.pop())
        elif -1 in dims:
            out.append(-1)
        else:
            out.append(1)
    return tuple(out)


def normalize_axis(axis: int, rank: int) -> int:
    """Map a possibly negative axis into [0, rank); ``ValueError`` when out of range."""
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis % rank


def axes_from_mask(mask: int, rank: int) -> tuple[int, ...]:
    """The axes set in a TensorRT bit mask (bit i = axis i)."""
    if mask < 0 or mask >> rank:
        raise ValueError(f"axes mask {mask:#b} names axes beyond rank {rank}")
    return tuple(i for i in range(rank) if mask >> i & 1)
