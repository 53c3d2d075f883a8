"""The ``channels_last_gemm`` convolution: columns built from a channels-last copy of the input.

``conv2d_direct_gemm``'s column matrix ``[C * taps, positions]`` takes one copy of ``OW``
values per channel, tap and output row: at ResNet's 14x14 and 7x7 sizes NumPy then spends its
time on loops of 7 or 14 elements. Here each image is copied once, padded, to ``[Hp, Wp, C]``,
and the transposed column matrix ``[positions, taps * C]`` takes one copy of ``C`` contiguous
values per tap and output position; the GEMM reads it transposed, with the weights reordered
once to ``[K, KH, KW, C]`` (kept while the weights array lives).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from engine.kernels.cpu.blas_threads import PARALLEL_MIN_ELEMENTS, run_parts, split

if TYPE_CHECKING:
    from engine.kernels.cpu.fused_conv import Epilogue

_TAPS_LAST: dict[int, tuple[weakref.ref[np.ndarray], np.ndarray]] = {}


def taps_last_weights(weights: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """``weights`` (holding ``[K, C, KH, KW]``) as ``[K, KH * KW * C]``, reordered once per
    weights array: an engine's weights never change in place (a refit assigns new ones)."""
    cached = _TAPS_LAST.get(id(weights))
    if cached is not None and cached[0]() is weights:
        return cached[1]
    maps = shape[0]
    reordered = np.ascontiguousarray(
        weights.reshape(shape).transpose(0, 2, 3, 1), np.float32).reshape(maps, -1)
    key, cache = id(weights), _TAPS_LAST  # the dict itself: module globals are gone at exit
    cache[key] = (weakref.ref(weights, lambda _: cache.pop(key, None)), reordered)
    return reordered


def _channels_last_rows(image: np.ndarray, pads: Sequence[tuple[int, int]], first: int,
                        last: int) -> np.ndarray:
    """Rows ``[first, last)`` of ``image`` ``[C, H, W]`` padded by ``pads``, as
    ``[last - first, W + pads, C]``, the padding zeros."""
    channels, height, width = image.shape
    (top, _), (left, right) = pads
    out = np.empty((last - first, left + width + right, channels), np.float32)
    low = min(max(first, top), last)  # the image's rows among them: [low, high)
    inside = low, max(low, min(last, top + height))
    out[:inside[0] - first] = 0
    out[inside[1] - first:] = 0
    rows = slice(inside[0] - first, inside[1] - first)
    out[rows, :left] = 0
    out[rows, left + width:] = 0
    out[rows, left:left + width] = image[:, inside[0] - top:inside[1] - top].transpose(1, 2, 0)
    return out


def conv2d_channels_last_gemm(x: np.ndarray, weights: np.ndarray, wmat: np.ndarray,
                              geometry: Sequence[tuple[int, int, int]], strides: Sequence[int],
                              dilations: Sequence[int], epilogue: Epilogue) -> np.ndarray:
    """Ungrouped 2D convolution of ``x`` ``[B, C, H, W]`` (float32, non-negative padding) with
    ``weights`` ``[K, C, KH, KW]`` (``wmat``: them as ``taps_last_weights``), then
    ``epilogue``; returns ``[B, K, OH, OW]``. The parts split the maps where the weights
    outnumber the columns (the columns built first, in parts of output rows), else the output
    rows; each part copies the input rows its output rows read (the kernel's overlap twice)."""
    batch, channels = x.shape[:2]
    maps, _, kh, kw = weights.shape
    (oh, ow) = (extent for _, _, extent in geometry)
    (sh, sw), (dh, dw) = strides, dilations
    positions, inner = oh * ow, wmat.shape[1]
    pads = [(pre, max(post, (extent - 1) * stride + (k - 1) * d + 1 - size - pre))
            for (pre, post, extent), stride, k, d, size
            in zip(geometry, strides, (kh, kw), dilations, x.shape[2:])]
    out = np.empty((batch, maps, oh, ow), np.float32)
    flops = 2.0 * maps * inner * positions

    def columns(image: int, cols: np.ndarray, first: int, last: int) -> None:
        """Output rows ``[first, last)`` of the transposed columns ``[OH, OW, taps, C]``."""
        rows = _channels_last_rows(x[image], pads, first * sh,
                                   (last - 1) * sh + (kh - 1) * dh + 1)
        for i in range(kh):
            for j in range(kw):
                top, left = i * dh, j * dw
                cols[first:last, :, i * kw + j] = rows[top:top + (last - first - 1) * sh + 1:sh,
                                                       left:left + (ow - 1) * sw + 1:sw]

    def product(image: int, cols: np.ndarray, maps_part: tuple[int, int],
                rows: tuple[int, int]) -> None:
        (start, stop), (first, last) = maps_part, rows
        block = out[image].reshape(maps, positions)[start:stop, first * ow:last * ow]
        b = cols[first:last].reshape((last - first) * ow, inner).T
        epilogue.product(wmat[start:stop], b, block,
                         (image, slice(start, stop), slice(first * ow, last * ow)), prefill)

    def row_part(image: int, cols: np.ndarray, first: int, last: int) -> None:
        columns(image, cols, first, last)
        product(image, cols, (0, maps), (first, last))

    def maps_part(image: int, cols: np.ndarray, start: int, stop: int) -> None:
        product(image, cols, (start, stop), (0, oh))

    by_maps = wmat.size >= inner * positions
    parts = split(maps, flops) if by_maps else split(oh, flops)
    prefill = epilogue.prefills(parts, positions if by_maps else maps * ow)
    for image in range(batch):
        cols = np.empty((oh, ow, kh * kw, channels), np.float32)
        if by_maps:
            run_parts(partial(columns, image, cols),
                      split(oh, cols.size, PARALLEL_MIN_ELEMENTS))
            run_parts(partial(maps_part, image, cols), parts)
        else:
            run_parts(partial(row_part, image, cols), parts)
    return out
