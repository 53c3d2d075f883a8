"""Recurrent layers RNN, GRU and LSTM, unrolled over a sequence length known at build time:
per step and direction, matrix multiplies with the weights, elementwise gates and activation
layers (the network has no loop layers yet)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

import engine as trt
from engine.onnx.compose import (
    activation,
    concat,
    constant_like,
    elementwise,
    gather,
    reshape,
    transpose,
    unsqueeze,
)
from engine.onnx.context import ImportContext, Node
from engine.onnx.errors import ErrorCode
from engine.onnx.importers.control import MAX_UNROLL
from engine.onnx.registry import importer

if TYPE_CHECKING:
    from engine.network.tensor import ITensor

# ONNX activation name -> (TensorRT activation, default alpha, default beta)
_ACTIVATIONS: dict[str, tuple[str, float | None, float | None]] = {
    "Relu": ("RELU", None, None), "Tanh": ("TANH", None, None),
    "Sigmoid": ("SIGMOID", None, None), "LeakyRelu": ("LEAKY_RELU", 0.01, None),
    "ThresholdedRelu": ("THRESHOLDED_RELU", 1.0, None),
    "ScaledTanh": ("SCALED_TANH", 1.0, 1.0), "HardSigmoid": ("HARD_SIGMOID", 0.2, 0.5),
    "Elu": ("ELU", 1.0, None), "Softsign": ("SOFTSIGN", None, None),
    "Softplus": ("SOFTPLUS", 1.0, 1.0),
}
_DEFAULTS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


class _Cell:
    """What every step of one direction shares: its weights and activation functions."""

    def __init__(self, ctx: ImportContext, node: Node, d: int, funcs: list[Any]) -> None:
        self.ctx = ctx
        self.funcs = funcs
        hidden = int(node.attr("hidden_size"))
        self.hidden = hidden
        gates = _GATES[node.op_type]
        self.w = gather(ctx, node.require(1), [d])  # [1, G*H, I]
        self.w = reshape(ctx, self.w, [gates * hidden, -1])
        self.r = reshape(ctx, gather(ctx, node.require(2), [d]), [gates * hidden, hidden])
        b = node.input(3)
        if b is None:
            b = ctx.constant(np.zeros(2 * gates * hidden, trt.nptype(node.require(0).dtype)))
        else:
            b = reshape(ctx, gather(ctx, b, [d]), [2 * gates * hidden])
        self.wb = gather(ctx, b, list(range(gates * hidden)))
        self.rb = gather(ctx, b, list(range(gates * hidden, 2 * gates * hidden)))
        clip = node.attr("clip")
        self.clip = None if clip is None else float(clip)

    def gate(self, t: Any, k: int) -> Any:
        """Columns of gate ``k`` of a [batch, G*H] tensor."""
        return gather(self.ctx, t, list(range(k * self.hidden, (k + 1) * self.hidden)), axis=1)

    def matmul(self, a: Any, w: Any) -> Any:
        op = trt.MatrixOperation
        return self.ctx.network.add_matrix_multiply(a, op.NONE, w, op.TRANSPOSE).get_output(0)

    def act(self, x: Any, k: int) -> Any:
        return self.funcs[k](x)

    def clipped(self, x: Any) -> Any:
        if self.clip is None:
            return x
        return activation(self.ctx, x, "CLIP", -self.clip, self.clip)


def _functions(ctx: ImportContext, node: Node, directions: int) -> list[list[Any]]:
    names = node.attr("activations") or _DEFAULTS[node.op_type] * directions
    per_dir = len(_DEFAULTS[node.op_type])
    alphas = list(node.attr("activation_alpha") or [])
    betas = list(node.attr("activation_beta") or [])
    funcs = []
    for name in names:
        if name not in _ACTIVATIONS and name != "Affine":
            node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"activation {name!r}")
        kind, alpha, beta = _ACTIVATIONS.get(name, ("Affine", 1.0, 0.0))
        if alpha is not None and alphas:
            alpha = alphas.pop(0)
        if beta is not None and betas:
            beta = betas.pop(0)

        def fn(x, kind=kind, alpha=alpha, beta=beta):  # noqa: ANN001, ANN202
            if kind == "Affine":
                scaled = elementwise(ctx, x, constant_like(ctx, alpha, x), "PROD")
                return elementwise(ctx, scaled, constant_like(ctx, beta, x), "SUM")
            return activation(ctx, x, kind, alpha, beta)
        funcs.append(fn)
    if len(funcs) != per_dir * directions:
        node.fail(ErrorCode.INVALID_NODE, f"{len(funcs)} activations for {directions} "
                                          f"direction(s) of {node.op_type}")
    return [funcs[d * per_dir:(d + 1) * per_dir] for d in range(directions)]


def _step(kind: str, node: Node, cell: _Cell, x: Any, h: Any, c: Any, p: Any) -> tuple:
    ctx = cell.ctx
    add = lambda a, b: elementwise(ctx, a, b, "SUM")  # noqa: E731
    mul = lambda a, b: elementwise(ctx, a, b, "PROD")  # noqa: E731
    xw = add(cell.matmul(x, cell.w), cell.wb)
    if kind == "RNN":
        return cell.act(cell.clipped(add(xw, add(cell.matmul(h, cell.r), cell.rb))), 0), None
    if kind == "GRU":
        hr = add(cell.matmul(h, cell.r), cell.rb)
        z = cell.act(cell.clipped(add(cell.gate(xw, 0), cell.gate(hr, 0))), 0)
        r = cell.act(cell.clipped(add(cell.gate(xw, 1), cell.gate(hr, 1))), 0)
        if node.attr("linear_before_reset", 0):
            recurrent = mul(r, cell.gate(hr, 2))
        else:
            rh_w = gather(ctx, cell.r, list(range(2 * cell.hidden, 3 * cell.hidden)))
            rh_b = gather(ctx, cell.rb, list(range(2 * cell.hidden, 3 * cell.hidden)))
            recurrent = add(cell.matmul(mul(r, h), rh_w), rh_b)
        candidate = cell.act(cell.clipped(add(cell.gate(xw, 2), recurrent)), 1)
        one = constant_like(ctx, 1.0, z)
        new_h = add(mul(elementwise(ctx, one, z, "SUB"), candidate), mul(z, h))
        return new_h, None
    gates = add(xw, add(cell.matmul(h, cell.r), cell.rb))
    peep = [None, None, None] if p is None else \
        [gather(ctx, p, list(range(k * cell.hidden, (k + 1) * cell.hidden))) for k in range(3)]
    pre_i, pre_o, pre_f, pre_c = (cell.gate(gates, k) for k in range(4))
    if peep[0] is not None:
        pre_i = add(pre_i, mul(peep[0], c))
        pre_f = add(pre_f, mul(peep[2], c))
    i = cell.act(cell.clipped(pre_i), 0)
    f = cell.act(cell.clipped(pre_f), 0)
    if node.attr("input_forget", 0):
        f = elementwise(ctx, constant_like(ctx, 1.0, i), i, "SUB")
    candidate = cell.act(cell.clipped(pre_c), 1)
    new_c = add(mul(f, c), mul(i, candidate))
    if peep[1] is not None:
        pre_o = add(pre_o, mul(peep[1], new_c))
    o = cell.act(cell.clipped(pre_o), 0)
    return mul(o, cell.act(new_c, 2)), new_c


def _recurrent(ctx: ImportContext, node: Node):
    kind = node.op_type
    x = node.require(0)
    layout = int(node.attr("layout", 0))
    if layout:
        x = transpose(ctx, x, [1, 0, 2])
    steps, batch = int(x.shape[0]), int(x.shape[1])
    if steps < 0:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                  f"{kind} needs a sequence length known at build time (it is unrolled)")
    if steps > MAX_UNROLL:
        node.unsupported(f"sequence length {steps} is above the unroll limit {MAX_UNROLL}")
    lens = ctx.value(node.input(4))
    if node.input(4) is not None and (lens is None or np.any(np.asarray(lens) != steps)):
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                  f"{kind}'s sequence_lens must be known at build time and equal the sequence "
                  f"length", tensor=node.input_names[4])
    direction = node.attr("direction", "forward")
    dirs = 2 if direction == "bidirectional" else 1
    funcs = _functions(ctx, node, dirs)
    hidden = int(node.attr("hidden_size"))
    ys, hs, cs = [], [], []
    for d in range(dirs):
        cell = _Cell(ctx, node, d, funcs[d])

        def initial(index: int, d: int = d):  # noqa: ANN202
            given = node.input(index)
            if given is None:
                return ctx.constant(np.zeros((batch, hidden), trt.nptype(x.dtype)))
            if layout:
                given = transpose(ctx, given, [1, 0, 2])
            return reshape(ctx, gather(ctx, given, [d]), [batch, hidden])
        h = initial(5)
        c = initial(6) if kind == "LSTM" else None
        p = None
        if kind == "LSTM" and node.input(7) is not None:
            p = reshape(ctx, gather(ctx, node.require(7), [d]), [3 * hidden])
        reverse = direction == "reverse" or d == 1
        outputs: list[ITensor] = []
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            xt = reshape(ctx, gather(ctx, x, [t]), [batch, -1])
            h, c = _step(kind, node, cell, xt, h, c, p)
            outputs.append(h)
        if reverse:
            outputs.reverse()  # in time order
        ys.append(concat(ctx, [unsqueeze(ctx, o, [0, 1]) for o in outputs], 0))  # [T,1,B,H]
        hs.append(unsqueeze(ctx, h, [0]))
        if c is not None:
            cs.append(unsqueeze(ctx, c, [0]))
    y = concat(ctx, ys, 1)
    y_h = concat(ctx, hs, 0)
    results = [transpose(ctx, y, [2, 0, 1, 3]) if layout else y,
               transpose(ctx, y_h, [1, 0, 2]) if layout else y_h]
    if kind == "LSTM":
        y_c = concat(ctx, cs, 0)
        results.append(transpose(ctx, y_c, [1, 0, 2]) if layout else y_c)
    return results


for _kind in ("RNN", "GRU", "LSTM"):
    importer(_kind, since=7)(_recurrent)
