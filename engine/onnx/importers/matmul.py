"""Matrix products: MatMul, Gemm and Einsum through matrix-multiply and einsum layers."""

from __future__ import annotations

import engine as trt
from engine.onnx.compose import cast, constant_like, elementwise, prepend_ones, rank
from engine.onnx.context import ImportContext, Node
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer


def matmul(ctx: ImportContext, a, b, transpose_a: bool = False, transpose_b: bool = False):  # noqa: ANN001, ANN201
    """ONNX/NumPy matmul: 1-D operands are vectors, batch dims broadcast."""
    op = trt.MatrixOperation
    op_a = op.VECTOR if rank(a) == 1 else (op.TRANSPOSE if transpose_a else op.NONE)
    op_b = op.VECTOR if rank(b) == 1 else (op.TRANSPOSE if transpose_b else op.NONE)
    if rank(a) > 1 and rank(b) > 1:
        r = max(rank(a), rank(b))
        a, b = prepend_ones(ctx, a, r - rank(a)), prepend_ones(ctx, b, r - rank(b))
    elif rank(a) == 1 and rank(b) > 2:
        a = prepend_ones(ctx, a, rank(b) - 2)
    elif rank(b) == 1 and rank(a) > 2:
        b = prepend_ones(ctx, b, rank(a) - 2)
    return ctx.network.add_matrix_multiply(a, op_a, b, op_b).get_output(0)


@importer("MatMul", since=1)
def matmul_node(ctx: ImportContext, node: Node):
    return [matmul(ctx, node.require(0), node.require(1))]


@importer("Gemm", since=1)
def gemm(ctx: ImportContext, node: Node):
    a, b, c = node.require(0), node.require(1), node.input(2)
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    out = matmul(ctx, a, b, bool(node.attr("transA", 0)), bool(node.attr("transB", 0)))
    if alpha != 1.0:
        out = elementwise(ctx, out, constant_like(ctx, alpha, out), "PROD")
    if c is not None and beta != 0.0:
        c = cast(ctx, c, out.dtype)
        if beta != 1.0:
            c = elementwise(ctx, c, constant_like(ctx, beta, c), "PROD")
        out = elementwise(ctx, out, c, "SUM")
    return [out]


@importer("Einsum", since=12)
def einsum(ctx: ImportContext, node: Node):
    inputs = [t for t in node.inputs if t is not None]
    equation = str(node.attr("equation", "")).replace(" ", "")
    if "..." in equation:
        equation = _without_ellipsis(node, equation, [rank(t) for t in inputs],
                                     [tuple(t.shape) for t in inputs])
    return [ctx.network.add_einsum(inputs, equation).get_output(0)]


def _without_ellipsis(node: Node, equation: str, ranks: list[int],
                      shapes: list[tuple[int, ...]]) -> str:
    """``equation`` with each ``...`` spelled out in unused letters (the einsum layer, as
    TensorRT's, takes letters only): an input's ellipsis stands for the dims its letters do
    not name, right-aligned against the others' (NumPy's broadcasting of ellipsis dims,
    here without size-1 dims against larger ones)."""
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(ranks):
        node.fail(ErrorCode.INVALID_NODE, f"equation {equation!r} has {len(terms)} inputs, "
                                          f"the node {len(ranks)}")
    spans = [r - len(t.replace("...", "")) if "..." in t else 0 for t, r in zip(terms, ranks)]
    if min(spans, default=0) < 0:
        node.fail(ErrorCode.INVALID_NODE, f"equation {equation!r}: more letters than dims")
    width = max(spans, default=0)
    free = [c for c in "abcdefghijklmnopqrstuvwxyz" if c not in equation]
    if len(free) < width:
        node.fail(ErrorCode.UNSUPPORTED_NODE, f"equation {equation!r}: too few unused letters "
                                              f"for its ellipsis")
    letters = free[:width]
    sizes: dict[str, int] = {}
    for term, span, shape in zip(terms, spans, shapes):
        if "..." not in term:
            continue
        start = term.index("...")
        for letter, size in zip(letters[width - span:], shape[start:start + span]):
            if sizes.setdefault(letter, size) != size:
                node.fail(ErrorCode.UNSUPPORTED_NODE, f"equation {equation!r}: ellipsis dims "
                                                      f"of sizes {sizes[letter]} and {size} "
                                                      f"(broadcasting is not supported)")
    spelled = [t.replace("...", "".join(letters[width - s:])) for t, s in zip(terms, spans)]
    if arrow:
        output = output.replace("...", "".join(letters))
    else:  # implicit output: the ellipsis dims, then the letters used once, sorted
        named = "".join(terms).replace("...", "")
        output = "".join(letters) + "".join(sorted(c for c in set(named)
                                                   if named.count(c) == 1))
    return ",".join(spelled) + "->" + output
