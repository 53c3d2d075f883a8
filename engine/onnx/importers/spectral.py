"""Fourier transforms: DFT and STFT as matrix multiplies with constant DFT matrices (the
signal length must be known at build time), real and imaginary parts kept apart."""

from __future__ import annotations

import numpy as np

from engine.onnx.compose import (
    concat,
    elementwise,
    gather,
    rank,
    reshape,
    squeeze,
    transpose,
    unsqueeze,
)
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode
from engine.onnx.importers.matmul import matmul
from engine.onnx.registry import importer


def _matrices(n_in: int, length: int, inverse: bool, onesided: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(A, B, C, D): real out = re @ A + im @ B, imaginary out = re @ C + im @ D (C and D
    None when the output is real: an inverse of a one-sided spectrum)."""
    if inverse and onesided:
        k = np.arange(n_in)[:, None]
        n = np.arange(length)[None, :]
        theta = 2 * np.pi * k * n / length
        weight = np.where((k == 0) | (2 * k == length), 1.0, 2.0) / length
        return weight * np.cos(theta), -weight * np.sin(theta), None, None
    bins = length // 2 + 1 if onesided else length
    n = np.arange(n_in)[:, None]
    k = np.arange(bins)[None, :]
    theta = 2 * np.pi * n * k / length
    live = n < length  # samples beyond dft_length are dropped
    cos, sin = np.where(live, np.cos(theta), 0.0), np.where(live, np.sin(theta), 0.0)
    if inverse:
        return cos / length, -sin / length, sin / length, cos / length
    return cos, sin, -sin, cos


def dft(ctx: ImportContext, node: Node, x, axis: int, length: int | None, inverse: bool,  # noqa: ANN001, ANN201
        onesided: bool):
    """The DFT of ``x`` ([..., 1 or 2], real or complex) along ``axis``."""
    r = rank(x)
    complex_in = int(x.shape[-1]) == 2
    n_in = int(x.shape[axis])
    if n_in < 0:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "DFT needs a signal length known at "
                                                      "build time")
    if length is None:
        length = 2 * (n_in - 1) if inverse and onesided else n_in
    a, b, c, d = _matrices(n_in, length, inverse, onesided)
    perm = [i for i in range(r - 1) if i != axis] + [axis]
    back = list(np.argsort(perm))
    re = transpose(ctx, squeeze(ctx, gather(ctx, x, [0], axis=r - 1), [r - 1]), perm)
    im = transpose(ctx, squeeze(ctx, gather(ctx, x, [1], axis=r - 1), [r - 1]), perm) \
        if complex_in else None

    def apply(m_re, m_im):  # noqa: ANN001, ANN202
        out = matmul(ctx, re, ctx.constant(m_re.astype(np.float32)))
        if im is not None:
            out = elementwise(ctx, out, matmul(ctx, im, ctx.constant(m_im.astype(np.float32))),
                              "SUM")
        return unsqueeze(ctx, transpose(ctx, out, back), [r - 1])

    parts = [apply(a, b)] if c is None else [apply(a, b), apply(c, d)]
    return concat(ctx, parts, r - 1)


@importer("DFT", since=17)
def dft_node(ctx: ImportContext, node: Node):
    x = node.require(0)
    length = None
    if node.input(1) is not None:
        length = int(ctx.require_value(node, 1, "dft_length").reshape(-1)[0])
    if node.opset >= 20:
        axis = int(ctx.require_value(node, 2, "axis").reshape(-1)[0]) \
            if node.input(2) is not None else -2
    else:
        axis = int(node.attr("axis", 1))
    axis = axis % rank(x) if axis < 0 else axis
    if axis == rank(x) - 1:
        node.fail(ErrorCode.INVALID_NODE, "the DFT axis cannot be the last (complex) axis")
    return [dft(ctx, node, x, axis, length, bool(node.attr("inverse", 0)),
                bool(node.attr("onesided", 0)))]


@importer("STFT", since=17)
def stft(ctx: ImportContext, node: Node):
    signal, window = node.require(0), node.input(2)
    step = int(ctx.require_value(node, 1, "frame_step").reshape(-1)[0])
    if node.input(3) is not None:
        frame = int(ctx.require_value(node, 3, "frame_length").reshape(-1)[0])
    elif window is not None:
        frame = int(window.shape[0])
    else:
        node.fail(ErrorCode.INVALID_NODE, "STFT needs a window or a frame_length")
    total = int(signal.shape[1])
    if total < 0:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "STFT needs a static signal length")
    count = 1 + (total - frame) // step
    index = np.arange(count)[:, None] * step + np.arange(frame)[None, :]
    frames = output_of(ctx.network.add_gather(signal, ctx.constant(index.astype(np.int64)),
                                              1))  # [batch, frames, frame, 1 or 2]
    if window is not None:
        frames = elementwise(ctx, frames, reshape(ctx, window, [1, 1, frame, 1]), "PROD")
    return [dft(ctx, node, frames, 2, None, False, bool(node.attr("onesided", 1)))]


@importer("MelWeightMatrix", since=17)
def mel_weight_matrix(ctx: ImportContext, node: Node):
    """The triangular mel filter bank [dft_length // 2 + 1, num_mel_bins], computed here from
    its inputs (all known at build time, as a filter bank's parameters are)."""
    from engine.onnx.tensors import trt_dtype
    from engine.types import nptype

    values = [ctx.value(node.require(i)) for i in range(5)]
    for name, value in zip(node.input_names, values):
        if value is None:
            node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, f"MelWeightMatrix's input '{name}' "
                                                          f"must be known at build time",
                      tensor=name)
    bins, length, rate = (int(np.asarray(v).reshape(-1)[0]) for v in values[:3])
    low, high = (float(np.asarray(v).reshape(-1)[0]) for v in values[3:])
    if bins <= 0 or length <= 0 or rate <= 0 or not 0 <= low < high:
        node.fail(ErrorCode.INVALID_NODE, f"MelWeightMatrix of {bins} bins, dft_length "
                                          f"{length}, sample_rate {rate}, edges {low}-{high}")

    def mel(hertz: float) -> float:
        return 2595 * np.log1p(hertz / 700) / np.log(10)

    step = (mel(high) - mel(low)) / (bins + 2)
    points = np.arange(bins + 2) * step + mel(low)
    hertz = 700 * np.expm1(points / 2595 * np.log(10))
    edges = (((length + 1) * hertz) // rate).astype(np.int64)  # spectrogram bin of each edge
    weights = np.zeros((length // 2 + 1, bins))
    for k in range(bins):
        left, center, right = edges[k], edges[k + 1], edges[k + 2]
        if center == left:
            weights[center, k] = 1.0
        else:
            rising = np.arange(left, center + 1)
            weights[rising, k] = (rising - left) / (center - left)
        if right > center:
            falling = np.arange(center, right)
            weights[falling, k] = (right - falling) / (right - center)
    out_type = trt_dtype(int(node.attr("output_datatype", 1)), "output_datatype", ctx.warn)
    return [ctx.constant(weights.astype(nptype(out_type)))]
