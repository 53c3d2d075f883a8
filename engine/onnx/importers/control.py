"""Control flow. The network has no conditional or loop layers yet, so If with a condition
known at build time is folded to its branch, and Loop with a known trip count (and no early
exit that depends on the data) is unrolled; anything else is refused."""

from __future__ import annotations

import numpy as np

from engine.onnx.compose import concat, unsqueeze
from engine.onnx.context import ImportContext, Node
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer

# Loops longer than this are not unrolled (the network would grow without bound).
MAX_UNROLL = 1024


@importer("If", since=1)
def if_node(ctx: ImportContext, node: Node):
    cond = ctx.value(node.require(0))
    if cond is None:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                  "If with a condition computed at run time needs conditional layers, which "
                  "this engine does not have yet; only build-time conditions are folded",
                  tensor=node.input_names[0])
    branch = node.attrs["then_branch" if bool(np.asarray(cond).reshape(-1)[0])
                        else "else_branch"]
    return ctx.import_subgraph(branch, [])  # type: ignore[attr-defined]


@importer("Loop", since=1)
def loop(ctx: ImportContext, node: Node):
    body = node.attrs["body"]
    trip_t, cond_t = node.input(0), node.input(1)
    trips = ctx.value(trip_t)
    if trip_t is None or trips is None:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                  "Loop needs a trip count known at build time (loops are unrolled; the "
                  "engine has no loop layers yet)",
                  tensor=node.input_names[0] if node.input_names else None)
    count = int(np.asarray(trips).reshape(-1)[0])
    if count > MAX_UNROLL:
        node.unsupported(f"trip count {count} is above the unroll limit {MAX_UNROLL}")
    carried = list(node.inputs[2:])
    n_carried = len(carried)
    cond = cond_t
    scans: list[list] = []
    for i in range(count):
        if cond is not None:
            cond_value = ctx.value(cond)
            if cond_value is None:
                node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                          "Loop's condition depends on run-time data; it cannot be unrolled")
            if not bool(np.asarray(cond_value).reshape(-1)[0]):
                break
        iteration = ctx.constant(np.array(i, np.int64))
        cond_in = cond if cond is not None else ctx.constant(np.array(True))
        outputs = ctx.import_subgraph(body, [iteration, cond_in, *carried])  # type: ignore[attr-defined]
        cond = outputs[0] if cond_t is not None else None
        carried = outputs[1:1 + n_carried]
        scans.append(outputs[1 + n_carried:])
    results = list(carried)
    n_scan = len(body.output) - 1 - n_carried
    for k in range(n_scan):
        parts = [unsqueeze(ctx, s[k], [0]) for s in scans]
        if not parts:
            node.unsupported("a Loop that runs zero times with scan outputs")
        results.append(concat(ctx, parts, 0))
    return results
