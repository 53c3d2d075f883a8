"""CPU tactics of convolution and of the fused convolution / matrix-multiply layers.

``direct_gemm`` builds the column matrix ``[C * taps, B * positions]`` with one strided copy
per kernel tap (a 1x1 stride-1 convolution needs none), so the product is one
``[K, C * taps] @ [C * taps, B * positions]`` GEMM with unit strides (one per group);
``shifted_gemm`` (stride 1) sums one product per tap over shifted slices of the flattened
padded input; ``depthwise_taps`` multiply-adds the strided input once per kernel tap. The
builder times them against the reference ``im2col_gemm`` kernel. The fused kernels then add
the bias and the residual and apply the activation in place on the product.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.kernels.cpu.blas_threads import parallel_matmul, run_parts, split
from engine.kernels.cpu.math_contraction import matrix_multiply
from engine.kernels.cpu.math_numeric import dtype_of, narrow
from engine.kernels.cpu.math_pointwise import _ACTIVATIONS as ACTIVATIONS
from engine.kernels.cpu.spatial_conv import (
    _flatten_batch,
    _operands,
    _weights_fit,
    conv_im2col_gemm,
    pad_for_windows,
)
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.fused import IFusedConvolutionLayer, IFusedMatrixMultiplyLayer
from engine.network.layers.math_pointwise import ActivationType
from engine.network.layers.spatial_conv import IConvolutionLayer
from engine.network.layers.spatial_window import dilated_extent


def conv2d_direct_gemm(x: np.ndarray, weights: np.ndarray,
                       geometry: Sequence[tuple[int, int, int]], strides: Sequence[int],
                       dilations: Sequence[int]) -> np.ndarray:
    """Ungrouped 2D convolution of ``x`` ``[B, C, H, W]`` (float32) with ``weights``
    ``[K, C, KH, KW]``; returns ``[B, K, OH, OW]``."""
    batch, channels = x.shape[:2]
    maps, _, kh, kw = weights.shape
    (oh, ow) = (out for _, _, out in geometry)
    wmat = weights.reshape(maps, channels * kh * kw)
    pointwise = kh == kw == 1 and tuple(strides) == (1, 1) and all(
        pre == post == 0 for pre, post, _ in geometry)
    if pointwise:
        cols = np.moveaxis(x.reshape(batch, channels, oh * ow), 0, 1).reshape(channels, -1) \
            if batch > 1 else x.reshape(channels, oh * ow)
    else:
        extents = dilated_extent((kh, kw), dilations)
        padded = pad_for_windows(x, geometry, extents, strides)
        sh, sw = strides
        dh, dw = dilations
        cols = np.empty((channels, kh, kw, batch, oh, ow), np.float32)
        for i in range(kh):
            for j in range(kw):
                window = padded[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                                j * dw:j * dw + sw * (ow - 1) + 1:sw]
                cols[:, i, j] = window.transpose(1, 0, 2, 3)
        cols = cols.reshape(channels * kh * kw, batch * oh * ow)
    out = parallel_matmul(wmat, cols)  # [K, B * positions]
    if batch == 1:
        return out.reshape(1, maps, oh, ow)
    return np.ascontiguousarray(out.reshape(maps, batch, oh, ow).transpose(1, 0, 2, 3))


def conv2d_shifted_gemm(x: np.ndarray, weights: np.ndarray,
                        geometry: Sequence[tuple[int, int, int]],
                        dilations: Sequence[int]) -> np.ndarray:
    """Ungrouped stride-1 2D convolution without a column matrix: with the padded input
    flattened to ``[C, Hp * Wp]``, kernel tap ``(i, j)`` reads the contiguous slice that starts
    ``i * dh * Wp + j * dw`` further on, so the output (computed ``Wp`` wide, the extra columns
    dropped) is a sum of one ``[K, C] @ [C, OH * Wp]`` product per tap. It beats the column
    matrix where that matrix is large and the maps few."""
    batch, channels = x.shape[:2]
    maps, _, kh, kw = weights.shape
    (oh, ow) = (out for _, _, out in geometry)
    dh, dw = dilations
    padded = pad_for_windows(x, geometry, dilated_extent((kh, kw), dilations), (1, 1))
    hp, wp = padded.shape[2:]
    slack = (kw - 1) * dw  # the last tap's slice runs this far past the last padded row
    taps = np.ascontiguousarray(weights.transpose(2, 3, 0, 1))  # [KH, KW, K, C]
    out = np.empty((batch, maps, oh, ow), np.float32)
    wide = np.empty((maps, oh * wp), np.float32)
    flat = np.zeros((channels, hp * wp + slack), np.float32)

    def output_rows(first: int, last: int) -> None:
        part = wide[:, first * wp:last * wp]
        product = np.empty(part.shape, np.float32)
        for i in range(kh):
            for j in range(kw):
                start = i * dh * wp + j * dw + first * wp
                rows = flat[:, start:start + (last - first) * wp]
                if i == j == 0:
                    np.matmul(taps[i, j], rows, out=part)
                else:
                    part += np.matmul(taps[i, j], rows, out=product)

    parts = split(oh, 2.0 * maps * channels * kh * kw * oh * wp)
    for b in range(batch):
        flat[:, :hp * wp] = padded[b].reshape(channels, hp * wp)
        run_parts(output_rows, parts)
        out[b] = wide.reshape(maps, oh, wp)[:, :, :ow]
    return out


def conv2d_depthwise_taps(x: np.ndarray, weights: np.ndarray,
                          geometry: Sequence[tuple[int, int, int]], strides: Sequence[int],
                          dilations: Sequence[int]) -> np.ndarray:
    """Depthwise 2D convolution (one input channel per group, one map per channel) of ``x``
    ``[B, C, H, W]`` (float32) with ``weights`` ``[C, 1, KH, KW]``: a multiply-add of the whole
    strided input per kernel tap, instead of a matrix product per channel."""
    kh, kw = weights.shape[2:]
    (oh, ow) = (out for _, _, out in geometry)
    extents = dilated_extent((kh, kw), dilations)
    padded = pad_for_windows(x, geometry, extents, strides)
    sh, sw = strides
    dh, dw = dilations
    taps = weights.reshape(weights.shape[0], kh, kw)[:, :, :, np.newaxis, np.newaxis]
    out = np.zeros((x.shape[0], x.shape[1], oh, ow), np.float32)
    product = np.empty_like(out)
    for i in range(kh):
        for j in range(kw):
            window = padded[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                            j * dw:j * dw + sw * (ow - 1) + 1:sw]
            out += np.multiply(window, taps[:, i, j], out=product)
    return out


def _direct_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConvolutionLayer)
    return len(layer.kernel_size_nd) == 2 and _weights_fit(layer, inputs)


def _shifted_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConvolutionLayer)
    return len(layer.kernel_size_nd) == 2 and layer.num_groups == 1 and \
        tuple(layer.stride_nd) == (1, 1) and _weights_fit(layer, inputs)


def _depthwise_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConvolutionLayer)
    x = inputs[0]
    return len(layer.kernel_size_nd) == 2 and x is not None and len(x.shape) >= 3 and \
        layer.num_groups == layer.num_output_maps == x.shape[-3] and _weights_fit(layer, inputs)


def _convolve(layer: IConvolutionLayer, inputs: list[np.ndarray | None], method: str
              ) -> tuple[np.ndarray, tuple[int, ...]]:
    """The float32 product plus bias, flattened to one batch axis, and the leading dims;
    ``method`` is ``"im2col"``, ``"direct"`` (a direct GEMM per group), ``"shifted"`` or
    ``"depthwise"``."""
    x, w, b = _operands(layer, inputs[:3])
    spatial = len(layer.kernel_size_nd)
    flat, lead = _flatten_batch(x, spatial)
    channels = flat.shape[1]
    w = w.reshape(layer.num_output_maps, channels // layer.num_groups, *layer.kernel_size_nd)
    geometry = layer.geometry(flat.shape[2:])
    strides, dilations = tuple(layer.stride_nd), tuple(layer.dilation_nd)
    groups = layer.num_groups
    if method == "depthwise":
        out = conv2d_depthwise_taps(flat, w, geometry, strides, dilations)
    elif method == "shifted":
        out = conv2d_shifted_gemm(flat, w, geometry, dilations)
    elif method == "direct" and groups == 1:
        out = conv2d_direct_gemm(np.ascontiguousarray(flat), w, geometry, strides, dilations)
    elif method == "direct":
        per_group, maps = channels // groups, layer.num_output_maps // groups
        out = np.concatenate([conv2d_direct_gemm(
            np.ascontiguousarray(flat[:, g * per_group:(g + 1) * per_group]),
            w[g * maps:(g + 1) * maps], geometry, strides, dilations)
            for g in range(groups)], axis=1)
    else:
        out = conv_im2col_gemm(flat, w, geometry, strides, dilations, groups)
    if b is not None:
        out += b.reshape((-1,) + (1,) * spatial)
    return out, lead


def apply_epilogue(layer: ILayer, out: np.ndarray, residual: np.ndarray | None) -> np.ndarray:
    """``activation(out + residual)`` computed in place on ``out`` (a float32 array the kernel
    owns)."""
    if residual is not None:
        out += residual.astype(np.float32, copy=False).reshape(out.shape)
    activation = layer.activation  # type: ignore[attr-defined]
    if activation is None:
        return out
    if ActivationType(activation) == ActivationType.RELU:
        return np.maximum(out, 0, out=out)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(ACTIVATIONS[ActivationType(activation)](
            out, float(layer.alpha), float(layer.beta)),  # type: ignore[attr-defined]
            np.float32)


def _plain_convolution(layer: ILayer, inputs: list[np.ndarray | None], method: str
                       ) -> list[np.ndarray]:
    assert isinstance(layer, IConvolutionLayer)
    out, lead = _convolve(layer, inputs, method)
    return [out.reshape(lead + out.shape[1:]).astype(inputs[0].dtype, copy=False)]  # type: ignore[union-attr]


@kernel(LayerType.CONVOLUTION, backend="cpu", name="cpu.convolution_direct_gemm",
        supports=_direct_fits)
def convolution_direct(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    return _plain_convolution(layer, inputs, "direct")


@kernel(LayerType.CONVOLUTION, backend="cpu", name="cpu.convolution_shifted_gemm",
        supports=_shifted_fits)
def convolution_shifted(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    return _plain_convolution(layer, inputs, "shifted")


@kernel(LayerType.CONVOLUTION, backend="cpu", name="cpu.convolution_depthwise_taps",
        supports=_depthwise_fits)
def convolution_depthwise(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    return _plain_convolution(layer, inputs, "depthwise")


def _fused_convolution(layer: ILayer, inputs: list[np.ndarray | None], method: str
                       ) -> list[np.ndarray]:
    assert isinstance(layer, IFusedConvolutionLayer)
    out, lead = _convolve(layer, inputs, method)
    out = out.reshape(lead + out.shape[1:])
    residual = inputs[3] if len(inputs) > 3 else None
    return [apply_epilogue(layer, out, residual).astype(inputs[0].dtype, copy=False)]  # type: ignore[union-attr]


@kernel(LayerType.FUSED_CONVOLUTION, backend="cpu", name="cpu.fused_convolution_im2col_gemm",
        supports=_weights_fit)
def fused_convolution(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    return _fused_convolution(layer, inputs, "im2col")


@kernel(LayerType.FUSED_CONVOLUTION, backend="cpu", name="cpu.fused_convolution_direct_gemm",
        supports=_direct_fits)
def fused_convolution_direct(layer: ILayer, inputs: list[np.ndarray | None]
                             ) -> list[np.ndarray]:
    return _fused_convolution(layer, inputs, "direct")


@kernel(LayerType.FUSED_CONVOLUTION, backend="cpu", name="cpu.fused_convolution_shifted_gemm",
        supports=_shifted_fits)
def fused_convolution_shifted(layer: ILayer, inputs: list[np.ndarray | None]
                              ) -> list[np.ndarray]:
    return _fused_convolution(layer, inputs, "shifted")


@kernel(LayerType.FUSED_CONVOLUTION, backend="cpu", name="cpu.fused_convolution_depthwise_taps",
        supports=_depthwise_fits)
def fused_convolution_depthwise(layer: ILayer, inputs: list[np.ndarray | None]
                                ) -> list[np.ndarray]:
    return _fused_convolution(layer, inputs, "depthwise")


@kernel(LayerType.FUSED_MATRIX_MULTIPLY, backend="cpu", name="cpu.fused_matrix_multiply")
def fused_matrix_multiply(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IFusedMatrixMultiplyLayer)
    (product,) = matrix_multiply(layer, inputs[:2])
    out = product.astype(np.float32)  # a copy the epilogue may write into
    bias = inputs[2] if len(inputs) > 2 else None
    if bias is not None:
        out += bias.astype(np.float32, copy=False)
    return [narrow(apply_epilogue(layer, out, None), dtype_of(inputs[0]))]
