"""Sliding-window arithmetic shared by convolution, deconvolution and pooling: TensorRT's
``PaddingMode`` and the output size and effective padding it implies per spatial axis.

Shorthand of TensorRT's ``PaddingMode`` documentation: I input size, B pre-padding, A
post-padding, S stride, DK = 1 + D * (F - 1) the dilated filter extent, O the output size.

>>> conv_window(PaddingMode.SAME_UPPER, 7, 3, 2, 0, 0)
(1, 1, 4)
>>> deconv_window(PaddingMode.EXPLICIT_ROUND_DOWN, 4, 3, 2, 1, 1)
(1, 1, 7)
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from engine.network.layer import attribute_enum


@attribute_enum
class PaddingMode(enum.IntEnum):
    """How convolution, deconvolution and pooling derive padding and output size."""

    EXPLICIT_ROUND_DOWN = 0
    EXPLICIT_ROUND_UP = 1
    SAME_UPPER = 2
    SAME_LOWER = 3


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def conv_window(mode: PaddingMode, size: int, extent: int, stride: int, pre: int, post: int
                ) -> tuple[int, int, int]:
    """``(pre, post, out)`` of one axis of a convolution or pooling window; -1 for all three
    when ``size`` is unknown (-1)."""
    if size < 0:
        return -1, -1, -1
    if mode in (PaddingMode.SAME_UPPER, PaddingMode.SAME_LOWER):
        out = _ceil_div(size, stride)
        # TensorRT's P = floor((I-1)/S)*S + DK - I can be negative when DK < S; a window
        # never needs negative padding to fit, so clamp at 0 (as ONNX's SAME_* does).
        total = max(0, (size - 1) // stride * stride + extent - size)
        small, large = total // 2, total - total // 2
        pre, post = (small, large) if mode == PaddingMode.SAME_UPPER else (large, small)
        return pre, post, out
    span = size + pre + post - extent
    if mode == PaddingMode.EXPLICIT_ROUND_UP:
        return pre, post, _ceil_div(span, stride) + 1
    return pre, post, span // stride + 1


def deconv_window(mode: PaddingMode, size: int, extent: int, stride: int, pre: int, post: int
                  ) -> tuple[int, int, int]:
    """``(pre, post, out)`` of one axis of a deconvolution: the padding is removed from the
    full output ``(I - 1) * S + DK``; -1 for all three when ``size`` is unknown."""
    if size < 0:
        return -1, -1, -1
    if mode in (PaddingMode.SAME_UPPER, PaddingMode.SAME_LOWER):
        total = max(extent - stride, 0)
        small, large = total // 2, total - total // 2
        pre, post = (small, large) if mode == PaddingMode.SAME_UPPER else (large, small)
    # Both EXPLICIT modes give the same size for deconvolution (TensorRT's formulas agree).
    return pre, post, (size - 1) * stride + extent - pre - post


def dilated_extent(kernel: Sequence[int], dilation: Sequence[int]) -> tuple[int, ...]:
    """DK = 1 + D * (F - 1) per axis."""
    return tuple(1 + d * (k - 1) for k, d in zip(kernel, dilation))
