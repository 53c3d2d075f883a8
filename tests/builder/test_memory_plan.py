"""The activation memory plan: tensors live at once never share bytes, and the arena is no
larger than first fit in execution order (largest-first placement wins where first fit
fragments)."""

from __future__ import annotations

import numpy as np

from engine.builder.memory import ALIGNMENT, plan_memory


def lives(steps):
    first, last = {}, {}
    for index, (ins, outs) in enumerate(steps):
        for t in outs:
            first.setdefault(t, index)
        for t in list(ins) + list(outs):
            last[t] = index
    return {t: (first[t], last[t]) for t in first}


def assert_valid(steps, plan):
    spans = lives(steps)
    ids = list(plan.offsets)
    for i, a in enumerate(ids):
        assert plan.offsets[a] + plan.sizes[a] <= plan.arena_bytes
        for b in ids[i + 1:]:
            (fa, la), (fb, lb) = spans[a], spans[b]
            if fa <= lb and fb <= la:  # live together: disjoint bytes
                assert (plan.offsets[a] + plan.sizes[a] <= plan.offsets[b]
                        or plan.offsets[b] + plan.sizes[b] <= plan.offsets[a]), (a, b)


def test_largest_first_avoids_first_fit_fragmentation():
    # a small tensor a, a large b; b is freed while a lives, then c (larger than b) arrives:
    # first fit leaves b's hole too small for c and grows the arena; a only needs to move
    k = ALIGNMENT
    steps = [([], [1]), ([1], [2]), ([2], [3]), ([1, 3], [4]), ([4], [5])]
    sizes = {1: 1 * k, 2: 4 * k, 3: 1 * k, 4: 5 * k, 5: 1 * k}
    plan = plan_memory(steps, sizes, pinned=set())
    assert_valid(steps, plan)
    # peak live set: {1, 3, 4} = 7 blocks; first fit needs 1 + 4 + 1 + 5 = 11
    assert plan.arena_bytes == 7 * k


def test_random_networks_get_valid_plans_no_larger_than_their_peak_sum_times_two():
    rng = np.random.default_rng(0)
    for _ in range(50):
        steps, live = [], [0]
        sizes = {0: ALIGNMENT}
        for t in range(1, 40):
            ins = list(rng.choice(live, size=min(len(live), rng.integers(1, 3)), replace=False))
            steps.append(([int(i) for i in ins], [t]))
            sizes[t] = int(rng.integers(1, 20)) * ALIGNMENT
            live.append(t)
            if len(live) > 4:
                live.pop(int(rng.integers(0, len(live) - 1)))
        plan = plan_memory(steps, sizes, pinned={0})
        assert 0 not in plan.offsets
        assert_valid(steps, plan)
        spans = lives(steps)
        peak = max(sum(plan.sizes[t] for t, (f, la) in spans.items() if t in plan.sizes
                       and f <= i <= la) for i in range(len(steps)))
        assert peak <= plan.arena_bytes <= 2 * peak
