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


def _take(ctx: ImportContext, x, index: int, axis: int):  # noqa: ANN001, ANN202
    """``x[..., index, ...]`` along ``axis``, that axis dropped (a 0-d gather)."""
    value = ctx.value(x)
    if value is not None:
        return ctx.constant(np.take(value, index, axis=axis))
    return ctx.network.add_gather(x, ctx.constant(np.array(index, np.int64)), axis).get_output(0)


def _unrolled_scan(ctx: ImportContext, node: Node, states: list, scanned: list) -> list:
    """Scan (opset 9 semantics) over ``scanned``, unrolled: the final states, then the scan
    outputs."""
    body = node.attrs["body"]
    m = len(scanned)
    in_axes = list(node.attr("scan_input_axes", [0] * m))
    in_dirs = list(node.attr("scan_input_directions", [0] * m))
    in_axes = [a % len(t.shape) for a, t in zip(in_axes, scanned)]
    lengths = {int(t.shape[a]) for t, a in zip(scanned, in_axes)}
    if len(lengths) != 1 or min(lengths) < 0:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                  f"Scan needs one sequence length known at build time (got {sorted(lengths)}); "
                  f"scans are unrolled")
    (count,) = lengths
    if count > MAX_UNROLL:
        node.unsupported(f"sequence length {count} is above the unroll limit {MAX_UNROLL}")
    n_states = len(states)
    steps: list[list] = []
    for t in range(count):
        slices = [_take(ctx, x, count - 1 - t if d else t, a)
                  for x, a, d in zip(scanned, in_axes, in_dirs)]
        outputs = ctx.import_subgraph(body, [*states, *slices])  # type: ignore[attr-defined]
        states = outputs[:n_states]
        steps.append(outputs[n_states:])
    k = len(body.output) - n_states
    out_axes = list(node.attr("scan_output_axes", [0] * k))
    out_dirs = list(node.attr("scan_output_directions", [0] * k))
    results = list(states)
    for j in range(k):
        parts = [s[j] for s in steps]
        if out_dirs[j]:
            parts.reverse()
        if not parts:
            node.unsupported("a Scan over an empty sequence with scan outputs")
        axis = out_axes[j] % (len(parts[0].shape) + 1)
        results.append(concat(ctx, [unsqueeze(ctx, p, [axis]) for p in parts], axis))
    return results


@importer("Scan", since=9)
def scan(ctx: ImportContext, node: Node):
    m = int(node.attr("num_scan_inputs"))
    inputs = list(node.inputs)
    return _unrolled_scan(ctx, node, inputs[:len(inputs) - m], inputs[len(inputs) - m:])


@importer("Scan", since=8)
def scan_batched(ctx: ImportContext, node: Node):
    """Opset 8: axis 0 of every input is a batch, each element scanned on its own along
    axis 1 (per ``scan_input_axes`` of opset 9 after the batch axis is taken)."""
    if node.input(0) is not None:
        node.unsupported("Scan's sequence_lens (opset 8) is not supported")
    m = int(node.attr("num_scan_inputs"))
    inputs = [node.require(i) for i in range(1, len(node.inputs))]
    batch = int(inputs[0].shape[0])
    if batch < 0:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "Scan (opset 8) needs a static batch")
    n_states = len(inputs) - m
    per_batch = []
    for b in range(batch):
        items = [_take(ctx, x, b, 0) for x in inputs]
        per_batch.append(_unrolled_scan(ctx, node, items[:n_states], items[n_states:]))
    return [concat(ctx, [unsqueeze(ctx, r[j], [0]) for r in per_batch], 0)
            for j in range(len(per_batch[0]))]
