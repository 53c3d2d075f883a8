"""GPU kernels of the spatial family: convolution (im2col + cuBLAS, and a plain GEMM for 1x1
kernels) and pooling (reductions over strided window views).

CuPy 14 has no cuDNN module, so convolutions are matrix products: the windows of the padded
input are gathered into columns (one copy) and multiplied by the kernel per group.
"""

from __future__ import annotations

from collections.abc import Sequence

import cupy
import numpy as np

from engine.kernels.gpu.capabilities import (
    both,
    contiguous,
    device_types_only,
    empty_channels_last,
    is_channels_last,
)
from engine.kernels.gpu.gemm import batched_matmul
from engine.kernels.gpu.rows import HALF_PRELUDE
from engine.kernels.gpu.weights import derived_constant, device_weights
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.spatial_conv import (
    IConvolutionLayer,
    IDeconvolutionLayer,
    _ConvolutionBase,
    weights_array,
)
from engine.network.layers.spatial_pooling import IPoolingLayer, PoolingType
from engine.network.layers.spatial_window import dilated_extent
from engine.types import DataType, Weights


def pad_trailing(x: cupy.ndarray, pre: Sequence[int], post: Sequence[int], value: float
                 ) -> cupy.ndarray:
    """``x`` padded (positive) or cropped (negative) on its last ``len(pre)`` axes."""
    spatial = len(pre)
    lead = x.ndim - spatial
    crop = (slice(None),) * lead + tuple(
        slice(max(0, -b), x.shape[lead + i] - max(0, -a))
        for i, (b, a) in enumerate(zip(pre, post)))
    x = x[crop]
    widths = [(0, 0)] * lead + [(max(0, b), max(0, a)) for b, a in zip(pre, post)]
    if any(w != (0, 0) for w in widths):
        x = cupy.pad(x, widths, mode="constant", constant_values=value)
    return x


def pad_for_windows(x: cupy.ndarray, geometry: Sequence[tuple[int, int, int]],
                    extents: Sequence[int], strides: Sequence[int], value: float = 0
                    ) -> cupy.ndarray:
    """``x`` padded by each axis' (pre, post), plus what the last window of a rounded-up
    output reaches past the post-padding (as the CPU kernel pads)."""
    spatial = len(geometry)
    pre = [b for b, _, _ in geometry]
    post = []
    for i, (b, a, out) in enumerate(geometry):
        size = x.shape[x.ndim - spatial + i]
        post.append(max(a, (out - 1) * strides[i] + extents[i] - size - b))
    return pad_trailing(x, pre, post, value)


def strided_windows(x: cupy.ndarray, kernel_shape: Sequence[int], strides: Sequence[int],
                    dilations: Sequence[int], outs: Sequence[int]) -> cupy.ndarray:
    """A view ``[..., *outs, *kernel]`` of the windows over the last axes of padded ``x``."""
    spatial = len(kernel_shape)
    lead = x.ndim - spatial
    steps = x.strides[lead:]
    shape = x.shape[:lead] + tuple(outs) + tuple(kernel_shape)
    view_strides = x.strides[:lead] + tuple(st * s for st, s in zip(steps, strides)) + \
        tuple(st * d for st, d in zip(steps, dilations))
    return cupy.lib.stride_tricks.as_strided(x, shape, view_strides)


def _operand(weights: Weights, given: cupy.ndarray | None, dtype: np.dtype
             ) -> cupy.ndarray | None:
    if given is not None:
        return given.astype(dtype, copy=False)
    if not weights.size:
        return None
    return device_weights(weights, dtype)


def _conv_operands(layer: IConvolutionLayer, inputs: list[cupy.ndarray | None]
                   ) -> tuple[cupy.ndarray, cupy.ndarray, cupy.ndarray | None, tuple[int, ...]]:
    x = inputs[0]
    assert x is not None
    spatial = len(layer.kernel_size_nd)
    lead = x.shape[:x.ndim - spatial - 1]
    flat = x.reshape((int(np.prod(lead)),) + x.shape[x.ndim - spatial - 1:])
    channels = flat.shape[1]
    w = _operand(layer.kernel, inputs[1] if len(inputs) > 1 else None, x.dtype)
    assert w is not None
    w = w.reshape(layer.num_output_maps, channels // layer.num_groups, *layer.kernel_size_nd)
    b = _operand(layer.bias, inputs[2] if len(inputs) > 2 else None, x.dtype)
    return flat, w, None if b is None else b.reshape(-1), lead


def _finish(out: cupy.ndarray, bias: cupy.ndarray | None, spatial: int,
            lead: tuple[int, ...]) -> cupy.ndarray:
    if bias is not None:
        out += bias.reshape((-1,) + (1,) * spatial)
    return out.reshape(lead + out.shape[1:])


@kernel(LayerType.CONVOLUTION, backend="gpu", name="gpu.conv_im2col_cublas",
        supports=device_types_only, source="CUBLAS")
def conv_im2col(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    """Grouped, dilated N-d convolution through im2col and cuBLAS (``im2col_convolution``)."""
    assert isinstance(layer, IConvolutionLayer)
    x, w, bias, lead = _conv_operands(layer, inputs)
    return [_finish(im2col_convolution(layer, x, w), bias, len(layer.kernel_size_nd), lead)]


def im2col_convolution(layer: _ConvolutionBase, x: cupy.ndarray, w: cupy.ndarray
                       ) -> cupy.ndarray:
    """Grouped, dilated N-d convolution of ``x`` ``[B, C, *in]`` with ``w`` ``[K, C/G,
    *kernel]`` (same type), no bias, with ``layer``'s geometry (``conv_columns``)."""
    return conv_columns(x, w, layer.geometry(x.shape[2:]), tuple(layer.stride_nd),
                        tuple(layer.dilation_nd), layer.num_groups)


def conv_columns(x: cupy.ndarray, w: cupy.ndarray, geometry: Sequence[tuple[int, int, int]],
                 strides: Sequence[int], dilations: Sequence[int], groups: int
                 ) -> cupy.ndarray:
    """Grouped, dilated N-d convolution of ``x`` ``[B, C, *in]`` with ``w`` ``[K, C/G,
    *kernel]`` (same type) and ``geometry`` (per axis (pre, post, out); negative pads crop):
    im2col of the padded input, then one batched GEMM over the groups. The CPU kernels'
    ``conv_im2col_gemm`` on the device."""
    kernel_shape = tuple(w.shape[2:])
    spatial = len(kernel_shape)
    strides, dilations = tuple(strides), tuple(dilations)
    outs = [out for _, _, out in geometry]
    padded = pad_for_windows(x, geometry, dilated_extent(kernel_shape, dilations), strides)
    windows = strided_windows(padded, kernel_shape, strides, dilations, outs)
    batch, channels = x.shape[:2]
    maps = w.shape[0]
    per_group, maps_per_group = channels // groups, maps // groups
    positions, taps = int(np.prod(outs)), int(np.prod(kernel_shape))
    # windows [B, C, *outs, *kernel] -> columns [G, B*P, C/G * taps]: the one copy.
    windows = windows.reshape((batch, groups, per_group) + windows.shape[2:])
    order = ((1, 0) + tuple(range(3, 3 + spatial)) + (2,)
             + tuple(range(3 + spatial, 3 + 2 * spatial)))
    cols = contiguous(windows.transpose(order)).reshape(groups, batch * positions,
                                                        per_group * taps)
    wmat = w.reshape(groups, maps_per_group, per_group * taps)
    out = batched_matmul(wmat, cols, transpose_b=True)  # [G, K/G, B*P]
    out = contiguous(out.reshape(groups, maps_per_group, batch, positions).transpose(2, 0, 1, 3))
    return out.reshape(batch, maps, *outs)


def _deconvolution_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IDeconvolutionLayer)
    x = inputs[0]
    return x is not None and x.dtype in (DataType.FLOAT, DataType.HALF) and \
        device_types_only(layer, inputs) and layer.check_weights(inputs)


def _deconvolution_kernel(w: np.ndarray | cupy.ndarray, groups: int, channels: int, maps: int,
                          kernel_shape: tuple[int, ...]) -> np.ndarray | cupy.ndarray:
    """The deconvolution's kernel ``[C, K/G, *k]`` (any layout of those values) as the
    equivalent convolution's ``[K, C/G, *k]``: input and output channels swapped per group,
    taps flipped (NumPy or CuPy)."""
    spatial = len(kernel_shape)
    w = w.reshape((groups, channels // groups, maps // groups) + kernel_shape)
    w = w.swapaxes(1, 2)[(slice(None),) * 3 + (slice(None, None, -1),) * spatial]
    return w.reshape((maps, channels // groups) + kernel_shape)


@kernel(LayerType.DECONVOLUTION, backend="gpu", name="gpu.deconvolution_im2col_cublas",
        supports=_deconvolution_fits, source="CUBLAS")
def deconvolution(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    """A deconvolution is the convolution, at stride 1, of the input spread out by the stride
    (zeros between values) and padded by DK - 1 - padding, with the kernel flipped and its
    input/output channels swapped (the CPU kernel's construction), in the input's type."""
    assert isinstance(layer, IDeconvolutionLayer)
    x = inputs[0]
    assert x is not None
    spatial = len(layer.kernel_size_nd)
    kernel_shape = tuple(layer.kernel_size_nd)
    lead = x.shape[:x.ndim - spatial - 1]
    flat = x.reshape((int(np.prod(lead)),) + x.shape[x.ndim - spatial - 1:])
    batch, channels = flat.shape[:2]
    groups, maps = layer.num_groups, layer.num_output_maps
    strides, dilations = tuple(layer.stride_nd), tuple(layer.dilation_nd)
    given = inputs[1] if len(inputs) > 1 else None
    if given is not None:
        w = contiguous(_deconvolution_kernel(given.astype(x.dtype, copy=False), groups,
                                             channels, maps, kernel_shape))
    else:
        dtype = x.dtype
        w = derived_constant(layer, ("deconvolution kernel", dtype.name), lambda: np.asarray(
            _deconvolution_kernel(weights_array(layer.kernel), groups, channels, maps,
                                  kernel_shape)).astype(dtype))
    spread = cupy.zeros((batch, channels) + tuple((n - 1) * s + 1 for n, s in
                                                  zip(flat.shape[2:], strides)), x.dtype)
    spread[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)] = flat
    extents = dilated_extent(kernel_shape, dilations)
    geometry = [(dk - 1 - b, dk - 1 - a, out)
                for dk, (b, a, out) in zip(extents, layer.geometry(flat.shape[2:]))]
    out = conv_columns(spread, w, geometry, (1,) * spatial, dilations, groups)
    given_bias = inputs[2] if len(inputs) > 2 else None
    bias = _operand(layer.bias, given_bias, x.dtype)
    if bias is not None:
        out += bias.reshape((-1,) + (1,) * spatial)
    return [out.reshape(lead + out.shape[1:])]


def _pointwise(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConvolutionLayer)
    x = inputs[0]
    spatial = len(layer.kernel_size_nd)
    if x is None or any(d < 0 for d in x.shape[-spatial:]):
        return False
    geometry = layer.geometry(x.shape[-spatial:])
    return (all(k == 1 for k in layer.kernel_size_nd) and all(s == 1 for s in layer.stride_nd)
            and all(b == 0 and a == 0 for b, a, _ in geometry) and layer.num_groups == 1)


@kernel(LayerType.CONVOLUTION, backend="gpu", name="gpu.conv_1x1_cublas",
        supports=both(device_types_only, _pointwise), source="CUBLAS")
def conv_1x1(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    """A 1x1 convolution at stride 1 without padding is a GEMM over the pixels: no im2col."""
    assert isinstance(layer, IConvolutionLayer)
    x, w, bias, lead = _conv_operands(layer, inputs)
    batch, channels = x.shape[:2]
    spatial = x.ndim - 2
    pixels = x.reshape(batch, channels, -1)
    out = batched_matmul(w.reshape(1, layer.num_output_maps, channels), pixels)
    return [_finish(out.reshape(batch, layer.num_output_maps, *x.shape[2:]), bias, spatial,
                    lead)]


# -- pooling ------------------------------------------------------------------------------------
def _window_reduce(x: cupy.ndarray, layer: IPoolingLayer,
                   geometry: Sequence[tuple[int, int, int]], value: float, op: str
                   ) -> cupy.ndarray:
    window, strides = tuple(layer.window_size_nd), tuple(layer.stride_nd)
    spatial = len(window)
    padded = pad_for_windows(x, geometry, window, strides, value)
    outs = [out for _, _, out in geometry]
    views = strided_windows(padded, window, strides, (1,) * spatial, outs)
    axes = tuple(range(-spatial, 0))
    return views.max(axis=axes) if op == "max" else views.sum(axis=axes)


def _average(x: cupy.ndarray, layer: IPoolingLayer, geometry: list[tuple[int, int, int]]
             ) -> cupy.ndarray:
    spatial = len(layer.window_size_nd)
    sums = _window_reduce(x, layer, geometry, 0.0, "sum")
    extent = x.shape[-spatial:]
    if layer.average_count_excludes_padding:
        ones = cupy.ones(extent, cupy.float32)
    else:
        ones = cupy.ones(tuple(n + b + a for n, (b, a, _) in zip(extent, geometry)),
                         cupy.float32)
        geometry = [(0, 0, out) for _, _, out in geometry]
    counts = _window_reduce(ones, layer, geometry, 0.0, "sum")
    return sums / cupy.maximum(counts, 1.0)


@kernel(LayerType.POOLING, backend="gpu", name="gpu.pooling_windows",
        supports=device_types_only)
def pooling(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IPoolingLayer)
    (x,) = inputs
    spatial = len(layer.window_size_nd)
    geometry = layer.geometry(x.shape[-spatial:])
    data = x.astype(cupy.float32, copy=False)
    kind = PoolingType(layer.type)
    if kind == PoolingType.MAX:
        out = _window_reduce(data, layer, geometry, -np.inf, "max")
    elif kind == PoolingType.AVERAGE:
        out = _average(data, layer, geometry)
    else:
        blend = np.float32(layer.blend_factor)
        out = (1 - blend) * _window_reduce(data, layer, geometry, -np.inf, "max") + \
            blend * _average(data, layer, geometry)
    return [out.astype(x.dtype, copy=False)]


_POOL_2D = r"""
extern "C" __global__ void engine_pool2d(
        const T* x, T* y, long long total, int C, int H, int W, int OH, int OW,
        long long sN, long long sC, long long sH, long long sW, int kH, int kW,
        int strideH, int strideW, int preH, int preW, int postH, int postW) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        long long r = i;
        int n, c, oh, ow;
        if (CHANNELS_LAST) {
            c = (int)(r % C); r /= C; ow = (int)(r % OW); r /= OW; oh = (int)(r % OH);
            n = (int)(r / OH);
        } else {
            ow = (int)(r % OW); r /= OW; oh = (int)(r % OH); r /= OH; c = (int)(r % C);
            n = (int)(r / C);
        }
        const T* base = x + n * sN + c * sC;
        int h0 = oh * strideH - preH, w0 = ow * strideW - preW;
        int h1 = min(h0 + kH, H), w1 = min(w0 + kW, W);
        int hs = max(h0, 0), ws = max(w0, 0);
        float acc = IS_MAX ? NEG_INF : 0.f;
        for (int h = hs; h < h1; ++h)
            for (int w = ws; w < w1; ++w) {
                float v = ld(base[h * sH + w * sW]);
                acc = IS_MAX ? ((v > acc || v != v) ? v : acc) : acc + v;
            }
        if (!IS_MAX) {
            int count;
            if (EXCLUDE_PADDING) {
                count = max(h1 - hs, 0) * max(w1 - ws, 0);
            } else {  // the padded extent counts; an overhang past the post-padding does not
                count = (min(h0 + kH, H + postH) - max(h0, -preH)) *
                        (min(w0 + kW, W + postW) - max(w0, -preW));
            }
            acc /= (float)max(count, 1);
        }
        st(y + i, acc);
    }
}
"""
_POOL_KERNELS: dict[tuple, cupy.RawKernel] = {}
_POOL_TYPES = {"float32": "float", "float16": "unsigned short", "int8": "signed char"}


def _storage(x: cupy.ndarray) -> cupy.ndarray:
    """``x`` as the kernels' element type sees it (halves as their 16-bit patterns)."""
    return x.view(np.uint16) if x.dtype == np.float16 else x


def _pool_kernel(layer: IPoolingLayer, dtype: np.dtype, source: str, name: str,
                 **defines: int) -> cupy.RawKernel:
    """``source`` compiled for ``dtype`` and the layer's kind and padding rule (cached)."""
    kind = PoolingType(layer.type)
    exclude = bool(layer.average_count_excludes_padding)
    key = (name, np.dtype(dtype).name, kind, exclude, tuple(sorted(defines.items())))
    compiled = _POOL_KERNELS.get(key)
    if compiled is None:
        values = {"T": _POOL_TYPES[np.dtype(dtype).name], **defines,
                  "IS_MAX": int(kind == PoolingType.MAX), "EXCLUDE_PADDING": int(exclude)}
        compiled = _POOL_KERNELS[key] = cupy.RawKernel(
            "".join(f"#define {k} {v}\n" for k, v in values.items()) + HALF_PRELUDE + source,
            name)
    return compiled

# Channels-last pooling where a 16-byte vector of channels lies at every position (8 halves
# or 4 floats; C a multiple of that): a thread per output position and channel vector, 32-bit
# index arithmetic, vector loads and stores. The arithmetic per channel is _POOL_2D's.
_POOL_2D_VECTORS = r"""
extern "C" __global__ void engine_pool2d_vectors(
        const uint4* x, uint4* y, unsigned int total, unsigned int vectors, int H, int W,
        int OH, int OW, int kH, int kW, int strideH, int strideW, int preH, int preW,
        int postH, int postW) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += gridDim.x * blockDim.x) {
        unsigned int r = i;
        const unsigned int v = r % vectors; r /= vectors;
        const int ow = (int)(r % OW); r /= OW;
        const int oh = (int)(r % OH);
        const unsigned int n = r / OH;
        int h0 = oh * strideH - preH, w0 = ow * strideW - preW;
        int h1 = min(h0 + kH, H), w1 = min(w0 + kW, W);
        int hs = max(h0, 0), ws = max(w0, 0);
        float acc[LANES];
        #pragma unroll
        for (int k = 0; k < LANES; ++k) acc[k] = IS_MAX ? NEG_INF : 0.f;
        for (int h = hs; h < h1; ++h)
            for (int w = ws; w < w1; ++w) {
                uint4 raw = x[((n * H + h) * W + w) * vectors + v];
                const T* lane = reinterpret_cast<const T*>(&raw);
                #pragma unroll
                for (int k = 0; k < LANES; ++k) {
                    float value = ld(lane[k]);
                    acc[k] = IS_MAX ? ((value > acc[k] || value != value) ? value : acc[k])
                                    : acc[k] + value;
                }
            }
        float divisor = 1.f;
        if (!IS_MAX) {
            int count;
            if (EXCLUDE_PADDING) {
                count = max(h1 - hs, 0) * max(w1 - ws, 0);
            } else {
                count = (min(h0 + kH, H + postH) - max(h0, -preH)) *
                        (min(w0 + kW, W + postW) - max(w0, -preW));
            }
            divisor = (float)max(count, 1);
        }
        uint4 out;
        T* lanes = reinterpret_cast<T*>(&out);
        #pragma unroll
        for (int k = 0; k < LANES; ++k) st(lanes + k, IS_MAX ? acc[k] : acc[k] / divisor);
        y[i] = out;
    }
}
"""


def _pool_vectors(layer: IPoolingLayer, x: cupy.ndarray, out: cupy.ndarray) -> bool:
    """Pool channels-last ``x`` into channels-last ``out`` with _POOL_2D_VECTORS; False where
    it does not apply (channels not whole vectors, unaligned, over 2**31 outputs)."""
    lanes = 16 // x.itemsize
    n, c, h, w = x.shape
    total = out.size // lanes
    if c % lanes or x.data.ptr % 16 or out.data.ptr % 16 or not total or \
            out.size >= 2 ** 31 or x.size >= 2 ** 31:
        return False
    compiled = _pool_kernel(layer, x.dtype, _POOL_2D_VECTORS, "engine_pool2d_vectors",
                            LANES=lanes)
    (pre_h, post_h, out_h), (pre_w, post_w, out_w) = layer.geometry(x.shape[-2:])
    (k_h, k_w), (s_h, s_w) = tuple(layer.window_size_nd), tuple(layer.stride_nd)
    blocks = int(min(-(-total // 256), 132 * 32))
    compiled((blocks,), (256,), (
        _storage(x), _storage(out), np.uint32(total), np.uint32(c // lanes), np.int32(h),
        np.int32(w), np.int32(out_h), np.int32(out_w), np.int32(k_h), np.int32(k_w), np.int32(s_h),
        np.int32(s_w), np.int32(pre_h), np.int32(pre_w), np.int32(post_h), np.int32(post_w)))
    return True


def _direct_pooling_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IPoolingLayer)
    x = inputs[0]
    kind = PoolingType(layer.type)
    return x is not None and x.rank == 4 and len(layer.window_size_nd) == 2 and \
        (x.dtype.name in ("FLOAT", "HALF") or (x.dtype.name == "INT8" and
                                               kind == PoolingType.MAX)) and \
        kind in (PoolingType.MAX, PoolingType.AVERAGE) and \
        all(t == x.dtype for t in layer._output_types.values())


@kernel(LayerType.POOLING, backend="gpu", name="gpu.pooling_direct",
        supports=_direct_pooling_fits)
def pooling_direct(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    """2-D max or average pooling in one kernel: a thread per output reads its window through
    the input's strides (C order or channels-last, whichever the producer wrote) and writes
    the output in the same format, so a channels-last network stays channels-last."""
    assert isinstance(layer, IPoolingLayer)
    (x,) = inputs
    last = is_channels_last(x)
    compiled = _pool_kernel(layer, x.dtype, _POOL_2D, "engine_pool2d", CHANNELS_LAST=int(last))
    (pre_h, post_h, out_h), (pre_w, post_w, out_w) = layer.geometry(x.shape[-2:])
    n, c, h, w = x.shape
    shape = (n, c, out_h, out_w)
    out = empty_channels_last(shape, x.dtype) if last else cupy.empty(shape, x.dtype)
    total = int(np.prod(shape))
    if total and last and _pool_vectors(layer, x, out):
        return [out]
    if total:
        strides = [s // x.itemsize for s in x.strides]
        (k_h, k_w), (s_h, s_w) = tuple(layer.window_size_nd), tuple(layer.stride_nd)
        view, target = _storage(x), _storage(out)
        blocks = int(min(-(-total // 256), 132 * 32))
        compiled((blocks,), (256,), (
            view, target, np.int64(total), np.int32(c), np.int32(h), np.int32(w),
            np.int32(out_h), np.int32(out_w), *(np.int64(s) for s in strides),
            np.int32(k_h), np.int32(k_w), np.int32(s_h), np.int32(s_w), np.int32(pre_h),
            np.int32(pre_w), np.int32(post_h), np.int32(post_w)))
    return [out]
