"""CPU kernels of convolution and deconvolution: im2col through strided window views, then
one batched matrix product per group (``conv_im2col_gemm``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from engine.kernels.cpu.spatial_padding import pad_trailing
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.spatial_conv import (
    IConvolutionLayer,
    IDeconvolutionLayer,
    weights_array,
)
from engine.network.layers.spatial_window import dilated_extent


def strided_windows(x: np.ndarray, extents: Sequence[int], strides: Sequence[int],
                    dilations: Sequence[int], outs: Sequence[int]) -> np.ndarray:
    """A view ``[..., *outs, *kernel]`` of the windows over the last ``len(extents)`` axes of
    ``x`` (already padded to hold every window)."""
    spatial = len(extents)
    axes = tuple(range(x.ndim - spatial, x.ndim))
    view = np.lib.stride_tricks.sliding_window_view(x, tuple(extents), axis=axes)
    lead = (slice(None),) * (x.ndim - spatial)
    positions = tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(outs, strides))
    taps = tuple(slice(None, None, d) for d in dilations)
    return view[lead + positions + taps]


def pad_for_windows(x: np.ndarray, geometry: Sequence[tuple[int, int, int]],
                    extents: Sequence[int], strides: Sequence[int], value: float = 0
                    ) -> np.ndarray:
    """``x`` padded by each axis' (pre, post), plus what the last window of a rounded-up
    output reaches past the post-padding."""
    spatial = len(geometry)
    pre = [b for b, _, _ in geometry]
    post = []
    for i, (b, a, out) in enumerate(geometry):
        size = x.shape[x.ndim - spatial + i]
        post.append(max(a, (out - 1) * strides[i] + extents[i] - size - b))
    return pad_trailing(x, pre, post, value)


def conv_im2col_gemm(x: np.ndarray, weights: np.ndarray, geometry: Sequence[tuple[int, int, int]],
                     strides: Sequence[int], dilations: Sequence[int], groups: int) -> np.ndarray:
    """Grouped N-d convolution of ``x`` ``[B, C, *spatial]`` with ``weights``
    ``[K, C/G, *kernel]``, in float32; returns ``[B, K, *out]``."""
    kernel_shape = weights.shape[2:]
    extents = dilated_extent(kernel_shape, dilations)
    outs = [out for _, _, out in geometry]
    padded = pad_for_windows(x, geometry, extents, strides)
    windows = strided_windows(padded, extents, strides, dilations, outs)
    batch, channels = x.shape[:2]
    maps = weights.shape[0]
    per_group, maps_per_group = channels // groups, maps // groups
    positions, taps = int(np.prod(outs)), int(np.prod(kernel_shape))
    windows = windows.reshape(batch, groups, per_group, positions, taps)
    # im2col: rows are (batch, position), columns (channel, tap), one matrix per group.
    cols = windows.transpose(1, 0, 3, 2, 4).reshape(groups, batch * positions, per_group * taps)
    wmat = weights.reshape(groups, maps_per_group, per_group * taps).transpose(0, 2, 1)
    out = np.matmul(cols, wmat)  # [G, B*P, K/G]
    out = out.reshape(groups, batch, positions, maps_per_group).transpose(1, 0, 3, 2)
    return out.reshape(batch, maps, *outs)


def _flatten_batch(x: np.ndarray, spatial: int) -> tuple[np.ndarray, tuple[int, ...]]:
    lead = x.shape[:x.ndim - spatial - 1]
    return x.reshape((math.prod(lead),) + x.shape[x.ndim - spatial - 1:]), lead


def _operands(layer: IConvolutionLayer | IDeconvolutionLayer, inputs: list[np.ndarray | None]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    x = inputs[0]
    assert x is not None
    w = inputs[1] if len(inputs) > 1 and inputs[1] is not None else weights_array(layer.kernel)
    b = inputs[2] if len(inputs) > 2 and inputs[2] is not None else weights_array(layer.bias)
    return (x.astype(np.float32, copy=False), np.asarray(w, np.float32),
            np.asarray(b, np.float32).reshape(-1) if np.size(b) else None)


def _weights_fit(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, (IConvolutionLayer, IDeconvolutionLayer))
    return layer.check_weights(inputs)


@kernel(LayerType.CONVOLUTION, backend="cpu", name="cpu.convolution_im2col_gemm",
        supports=_weights_fit)
def convolution(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    assert isinstance(layer, IConvolutionLayer)
    x, w, b = _operands(layer, inputs)
    spatial = len(layer.kernel_size_nd)
    flat, lead = _flatten_batch(x, spatial)
    channels = flat.shape[1]
    w = w.reshape(layer.num_output_maps, channels // layer.num_groups, *layer.kernel_size_nd)
    geometry = layer.geometry(flat.shape[2:])
    out = conv_im2col_gemm(flat, w, geometry, tuple(layer.stride_nd), tuple(layer.dilation_nd),
                           layer.num_groups)
    if b is not None:
        out += b.reshape((-1,) + (1,) * spatial)
    return [out.reshape(lead + out.shape[1:]).astype(inputs[0].dtype, copy=False)]  # type: ignore[union-attr]


@kernel(LayerType.DECONVOLUTION, backend="cpu", name="cpu.deconvolution_im2col_gemm",
        supports=_weights_fit)
def deconvolution(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """A deconvolution is the convolution, at stride 1, of the input spread out by the stride
    (zeros between values) and padded by DK - 1 - padding, with the kernel flipped and its
    input/output channels swapped."""
    assert isinstance(layer, IDeconvolutionLayer)
    x, w, b = _operands(layer, inputs)
    spatial = len(layer.kernel_size_nd)
    kernel_shape = tuple(layer.kernel_size_nd)
    flat, lead = _flatten_batch(x, spatial)
    batch, channels = flat.shape[:2]
    groups, maps = layer.num_groups, layer.num_output_maps
    strides, dilations = tuple(layer.stride_nd), tuple(layer.dilation_nd)
    geometry = layer.geometry(flat.shape[2:])
    spread_shape = (batch, channels) + tuple((n - 1) * s + 1
                                             for n, s in zip(flat.shape[2:], strides))
    spread = np.zeros(spread_shape, np.float32)
    spread[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)] = flat
    w = w.reshape(groups, channels // groups, maps // groups, *kernel_shape)
    w = np.flip(w.swapaxes(1, 2), axis=tuple(range(3, 3 + spatial)))
    w = w.reshape(maps, channels // groups, *kernel_shape)
    extents = dilated_extent(kernel_shape, dilations)
    conv_geometry = [(dk - 1 - b, dk - 1 - a, out)
                     for dk, (b, a, out) in zip(extents, geometry)]
    out = conv_im2col_gemm(spread, w, conv_geometry, (1,) * spatial, dilations, groups)
    if b is not None:
        out += b.reshape((-1,) + (1,) * spatial)
    return [out.reshape(lead + out.shape[1:]).astype(inputs[0].dtype, copy=False)]  # type: ignore[union-attr]
