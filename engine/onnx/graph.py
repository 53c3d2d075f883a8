"""Graph checks that come before importing: the order of nodes, missing inputs, cycles."""

from __future__ import annotations

from collections.abc import Iterable

import onnx

from engine.onnx.errors import ErrorCode, ImportFailure


def outer_references(graph: onnx.GraphProto) -> set[str]:
    """Names a (sub)graph reads that it does not define itself (outer-scope values)."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.name for t in graph.sparse_initializer if t.values.name}
    used: set[str] = set()
    for node in graph.node:
        used.update(n for n in node.input if n)
        for sub in subgraphs_of(node):
            used |= outer_references(sub)
        defined.update(n for n in node.output if n)
    used.update(o.name for o in graph.output)
    return used - defined


def subgraphs_of(node: onnx.NodeProto) -> Iterable[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def node_reads(node: onnx.NodeProto) -> list[str]:
    """Every value a node reads: its inputs and what its subgraphs take from outside."""
    names = [n for n in node.input if n]
    for sub in subgraphs_of(node):
        names.extend(sorted(outer_references(sub)))
    return names


def topological_nodes(graph: onnx.GraphProto, available: set[str]) -> list[int]:
    """Indices of ``graph.node`` in an order where each node follows its producers.

    ``available`` holds the names defined before any node runs (inputs, initializers, outer
    scope). Raises ``ImportFailure`` for an input nobody produces, a name produced twice, and
    cycles, naming the node.
    """
    producer: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for out in node.output:
            if not out:
                continue
            if out in producer or out in available:
                raise ImportFailure(ErrorCode.INVALID_GRAPH,
                                    f"node {index} ('{node.name}', {node.op_type}): output "
                                    f"'{out}' is already defined elsewhere in the graph")
            producer[out] = index
    for index, node in enumerate(graph.node):
        for name in node_reads(node):
            if name not in producer and name not in available:
                raise ImportFailure(ErrorCode.INVALID_GRAPH,
                                    f"node {index} ('{node.name}', {node.op_type}): input "
                                    f"'{name}' is not a graph input, an initializer or the "
                                    f"output of any node")
    order: list[int] = []
    state = [0] * len(graph.node)  # 0 new, 1 on the stack, 2 done
    for root in range(len(graph.node)):
        if state[root]:
            continue
        stack = [(root, iter(node_reads(graph.node[root])))]
        state[root] = 1
        while stack:
            index, reads = stack[-1]
            for name in reads:
                dep = producer.get(name)
                if dep is None or state[dep] == 2:
                    continue
                if state[dep] == 1:
                    node = graph.node[dep]
                    raise ImportFailure(ErrorCode.INVALID_GRAPH,
                                        f"node {dep} ('{node.name}', {node.op_type}) is on a "
                                        f"cycle (through '{name}')")
                state[dep] = 1
                stack.append((dep, iter(node_reads(graph.node[dep]))))
                break
            else:
                stack.pop()
                state[index] = 2
                order.append(index)
    return order
