"""Activation memory planning: every intermediate tensor gets an offset in one arena, and
tensors whose lifetimes do not overlap share bytes.

Two placements are made and the smaller arena kept: first fit in execution order, and
largest tensor first (each at the lowest offset clear of every placed tensor it is live with),
which avoids the fragmentation first fit leaves when a large tensor is freed between smaller
ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ALIGNMENT = 256


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


@dataclass(frozen=True)
class MemoryPlan:
    """Offsets of activation tensors (by tensor id) in an arena of ``arena_bytes``."""

    arena_bytes: int
    offsets: dict[int, int]
    sizes: dict[int, int]


def plan_memory(
    steps: Sequence[tuple[Sequence[int], Sequence[int]]],
    sizes: dict[int, int],
    pinned: set[int],
) -> MemoryPlan:
    """Plan the arena for ``steps`` (each: input ids, output ids, in execution order).

    ``sizes`` gives the bytes of each tensor at the largest shapes the engine accepts;
    ``pinned`` tensors (network I/O, constants) live outside the arena.
    """
    last_use: dict[int, int] = {}
    for index, (ins, outs) in enumerate(steps):
        for t in list(ins) + list(outs):
            last_use[t] = index
    free: list[tuple[int, int]] = []  # (offset, size), sorted by offset
    top = 0
    offsets: dict[int, int] = {}
    planned: dict[int, int] = {}

    def allocate(size: int) -> int:
        nonlocal top
        for i, (off, avail) in enumerate(free):
            if avail >= size:
                if avail == size:
                    free.pop(i)
                else:
                    free[i] = (off + size, avail - size)
                return off
        off, top = top, top + size
        return off

    def release(off: int, size: int) -> None:
        free.append((off, size))
        free.sort()
        merged: list[tuple[int, int]] = []
        for o, s in free:
            if merged and merged[-1][0] + merged[-1][1] == o:
                merged[-1] = (merged[-1][0], merged[-1][1] + s)
            else:
                merged.append((o, s))
        free[:] = merged

    first_def: dict[int, int] = {}
    for index, (ins, outs) in enumerate(steps):
        for t in outs:
            if t in pinned or t in offsets:
                continue
            planned[t] = _align(max(sizes.get(t, 0), 1))
            offsets[t] = allocate(planned[t])
            first_def[t] = index
        for t in set(ins) | set(outs):
            if t in offsets and last_use.get(t) == index:
                release(offsets[t], planned[t])
    by_size = _largest_first(planned, {t: (first_def[t], last_use[t]) for t in planned})
    if by_size.arena_bytes < top:
        return by_size
    return MemoryPlan(top, offsets, planned)


def _largest_first(sizes: dict[int, int], lives: dict[int, tuple[int, int]]) -> MemoryPlan:
    """Each tensor, largest first (then earliest), at the lowest offset where it overlaps no
    placed tensor whose life (first and last step, inclusive) meets its own."""
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offsets: dict[int, int] = {}
    top = 0
    for t in sorted(sizes, key=lambda t: (-sizes[t], lives[t][0], t)):
        size, (first, last) = sizes[t], lives[t]
        offset = 0
        for o, s, _, _ in sorted(p for p in placed if p[2] <= last and first <= p[3]):
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, first, last))
        offsets[t] = offset
        top = max(top, offset + size)
    return MemoryPlan(top, offsets, dict(sizes))
