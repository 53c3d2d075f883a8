"""CPU tactics of convolution and of the fused convolution / matrix-multiply layers.

``direct_gemm`` builds the column matrix ``[C * taps, positions]`` with one strided copy per
kernel tap (a 1x1 stride-1 convolution reads the input as it is), so the product is one
``[K, C * taps] @ [C * taps, positions]`` GEMM with unit strides per image (and group);
``shifted_gemm`` (stride 1) sums one product per tap over shifted slices of the flattened
padded input; ``depthwise_taps`` multiply-adds the strided input once per kernel tap. The
builder times them against the reference ``im2col_gemm`` kernel.

Each product is cut into one part per core (``blas_threads``), and every part applies the
``Epilogue`` (the bias, the fused layers' residual and activation) to its own block of the
output on its own thread, the GEMM adding its product to the bias and residual in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from engine.kernels.cpu.blas_threads import (
    PARALLEL_MIN_ELEMENTS,
    matmul_accumulate,
    run_parts,
    split,
)
from engine.kernels.cpu.fused_conv_channels_last import (
    conv2d_channels_last_gemm,
    taps_last_weights,
)
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
from engine.network.layers.math_contraction import MatrixOperation
from engine.network.layers.math_pointwise import ActivationType
from engine.network.layers.spatial_conv import IConvolutionLayer
from engine.network.layers.spatial_window import dilated_extent

PREFILL_MIN_ELEMENTS = 1 << 16
Index = tuple[int, slice, slice]
"""A block ``out[image, maps, positions]`` of a convolution's float32 output viewed as
``[B, K, OH * OW]``."""


@dataclass(frozen=True)
class Epilogue:
    """``activation(product + bias + residual)``, block by block, for float32 ``bias``
    ``[K]`` and ``residual`` ``[B, K, OH * OW]``."""

    bias: np.ndarray | None = None
    residual: np.ndarray | None = None
    activation: ActivationType | None = None
    alpha: float = 0.0
    beta: float = 0.0

    def of_maps(self, start: int, stop: int) -> Epilogue:
        """The epilogue of maps ``[start, stop)`` (one group's)."""
        return replace(self, bias=None if self.bias is None else self.bias[start:stop],
                       residual=None if self.residual is None
                       else self.residual[:, start:stop])

    @staticmethod
    def prefills(parts: list[tuple[int, int]], elements: int) -> bool:
        """Whether ``product`` writes the bias and residual before the product, for a product
        cut into ``parts`` of ``elements`` output elements per index: where its smallest part
        is large (a small one is in cache anyway, and fewer calls cost less).

        One choice for all the parts of a product: the two orders round differently wherever
        the BLAS adds to ``block`` once per slice of the inner dimension, so a choice per part
        would make an output map's rounding depend on the part it falls in (maps equal in
        exact arithmetic came out unequal)."""
        return min(stop - start for start, stop in parts) * elements >= PREFILL_MIN_ELEMENTS

    def product(self, a: np.ndarray, b: np.ndarray, block: np.ndarray, index: Index,
                prefill: bool) -> None:
        """``block`` = the epilogue of ``a @ b``. With ``prefill`` (``prefills`` of the
        product's parts), the bias and the residual are written first and the product added to
        them by the GEMM itself (no pass of its own for either)."""
        if not prefill:
            np.matmul(a, b, out=block)
            self.finish(block, index)
            return
        image, maps, positions = index
        if self.bias is not None and self.residual is not None:
            np.add(self.residual[index], self.bias[maps, np.newaxis], out=block)
        elif self.residual is not None:
            np.copyto(block, self.residual[index])
        elif self.bias is not None:
            np.copyto(block, self.bias[maps, np.newaxis])
        if self.bias is None and self.residual is None:
            np.matmul(a, b, out=block)
        else:
            matmul_accumulate(a, b, block)
        self.activate(block)

    def finish(self, block: np.ndarray, index: Index) -> None:
        """The epilogue of the product already in ``block``, in place."""
        if self.bias is not None:
            block += self.bias[index[1], np.newaxis]
        if self.residual is not None:
            block += self.residual[index]
        self.activate(block)

    def activate(self, block: np.ndarray) -> None:
        if self.activation is None:
            return
        if self.activation == ActivationType.RELU:  # an IntEnum: no conversion per block
            np.maximum(block, 0, out=block)
            return
        with np.errstate(over="ignore", invalid="ignore"):
            block[...] = ACTIVATIONS[ActivationType(self.activation)](
                block, self.alpha, self.beta)


Taps = list[tuple[np.ndarray, int, int]]
"""Per kernel tap, in order: a plane ``[C, rows, columns]`` and where in it the window of output
``(0, 0)`` starts; output ``(r, c)`` reads ``plane[:, top + r, left + c]``."""


def _tap_planes(padded: np.ndarray, kernel: tuple[int, int], strides: Sequence[int],
                dilations: Sequence[int]) -> Taps:
    """The taps of one padded image ``[C, Hp, Wp]``. A strided kernel with many more taps than
    stride phases reads copies of its phases (every ``sh``-th row from row ``p``, every
    ``sw``-th column from column ``q``): a window is then a unit-stride slice, which copies
    several times faster than a strided one."""
    (sh, sw), (dh, dw) = strides, dilations
    # Copying the phases is one pass over the input on one thread: measured, it pays for a
    # 7x7 stride-2 kernel (49 taps, 4 phases) but not for a 3x3 one (9 taps).
    phased = (sh, sw) != (1, 1) and kernel[0] * kernel[1] > 4 * sh * sw
    planes: dict[tuple[int, int], np.ndarray] = {}
    taps = []
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            if not phased:
                taps.append((padded[:, i * dh::sh, j * dw::sw], 0, 0))
                continue
            phase = (i * dh % sh, j * dw % sw)
            if phase not in planes:
                planes[phase] = np.ascontiguousarray(padded[:, phase[0]::sh, phase[1]::sw])
            taps.append((planes[phase], i * dh // sh, j * dw // sw))
    return taps


def _columns(taps: Taps, channels: tuple[int, int], rows: tuple[int, int], ow: int,
             out: np.ndarray) -> None:
    """im2col of ``channels`` ``[start, stop)`` and output rows ``[first, last)`` into
    ``out`` ``[stop - start, taps, last - first, OW]``."""
    (start, stop), (first, last) = channels, rows
    for t, (plane, top, left) in enumerate(taps):
        out[:, t] = plane[start:stop, top + first:top + last, left:left + ow]


def conv2d_direct_gemm(x: np.ndarray, weights: np.ndarray,
                       geometry: Sequence[tuple[int, int, int]], strides: Sequence[int],
                       dilations: Sequence[int], epilogue: Epilogue = Epilogue(),
                       out: np.ndarray | None = None) -> np.ndarray:
    """Ungrouped 2D convolution of ``x`` ``[B, C, H, W]`` (float32) with ``weights``
    ``[K, C, KH, KW]`` into ``out`` ``[B, K, OH, OW]`` (each image's maps contiguous), then
    ``epilogue``; returns ``out``.

    Where the weights outnumber the column matrix, the parts build the columns of their
    channels, then compute their maps from all of them; else each part builds the columns of
    its output rows and computes those rows."""
    batch, channels = x.shape[:2]
    maps, _, kh, kw = weights.shape
    (oh, ow) = (extent for _, _, extent in geometry)
    positions, taps = oh * ow, kh * kw
    if out is None:
        out = np.empty((batch, maps, oh, ow), np.float32)
    wmat = weights.reshape(maps, channels * taps)
    inner = wmat.shape[1]
    pointwise = kh == kw == 1 and tuple(strides) == (1, 1) and all(
        pre == post == 0 for pre, post, _ in geometry)
    padded = x if pointwise else \
        pad_for_windows(x, geometry, dilated_extent((kh, kw), dilations), strides)
    flops = 2.0 * maps * inner * positions
    # Measured: a 1x1 convolution's parts are faster splitting its maps, each part's block of
    # the output contiguous, whatever the operands' sizes.
    by_maps = taps == 1 or wmat.size >= inner * positions

    def map_part(image: int, cols: np.ndarray, start: int, stop: int) -> None:
        block = out[image].reshape(maps, positions)[start:stop]  # the image's maps: contiguous
        epilogue.product(wmat[start:stop], cols, block,
                         (image, slice(start, stop), slice(0, positions)), prefill)

    def channel_part(planes: Taps, cols: np.ndarray, start: int, stop: int) -> None:
        _columns(planes, (start, stop), (0, oh), ow, cols[start:stop])

    def row_part(image: int, planes: Taps | None, first: int, last: int) -> None:
        block = out[image].reshape(maps, positions)[:, first * ow:last * ow]
        if planes is None:
            cols = x[image].reshape(channels, positions)[:, first * ow:last * ow]
        else:
            cols = np.empty((channels, taps, last - first, ow), np.float32)
            _columns(planes, (0, channels), (first, last), ow, cols)
        epilogue.product(wmat, cols.reshape(inner, -1), block,
                         (image, slice(0, maps), slice(first * ow, last * ow)), prefill)

    parts = split(maps, flops) if by_maps else split(oh, flops)
    prefill = epilogue.prefills(parts, positions if by_maps else maps * ow)
    for image in range(batch):
        planes = None if pointwise else _tap_planes(padded[image], (kh, kw), strides, dilations)
        if by_maps and planes is not None:
            cols = np.empty((channels, taps, oh, ow), np.float32)
            run_parts(partial(channel_part, planes, cols),
                      split(channels, cols.size, PARALLEL_MIN_ELEMENTS))
            run_parts(partial(map_part, image, cols.reshape(inner, positions)), parts)
        elif by_maps:
            run_parts(partial(map_part, image, x[image].reshape(channels, positions)), parts)
        else:
            run_parts(partial(row_part, image, planes), parts)
    return out


def conv2d_shifted_gemm(x: np.ndarray, weights: np.ndarray,
                        geometry: Sequence[tuple[int, int, int]],
                        dilations: Sequence[int], epilogue: Epilogue = Epilogue()) -> np.ndarray:
    """Ungrouped stride-1 2D convolution without a column matrix: with the padded input
    flattened to ``[C, Hp * Wp]``, kernel tap ``(i, j)`` reads the contiguous slice that starts
    ``i * dh * Wp + j * dw`` further on, so the output (computed ``Wp`` wide, the extra columns
    dropped) is a sum of one ``[K, C] @ [C, OH * Wp]`` product per tap. It beats the column
    matrix where that matrix is large and the maps few."""
    batch, channels = x.shape[:2]
    maps, _, kh, kw = weights.shape
    (oh, ow) = (extent for _, _, extent in geometry)
    dh, dw = dilations
    extents = dilated_extent((kh, kw), dilations)
    pads = [(pre, max(post, out + extent - 1 - size - pre))
            for (pre, post, out), extent, size in zip(geometry, extents, x.shape[2:])]
    if min(min(pad) for pad in pads) < 0:  # a crop: the padded input is another array
        x = pad_for_windows(x, geometry, extents, (1, 1))
        pads = [(0, 0), (0, 0)]
    (top, bottom), (left, right) = pads
    height, width = x.shape[2:]
    hp, wp = top + height + bottom, left + width + right
    slack = (kw - 1) * dw  # the last tap's slice runs this far past the last padded row
    taps = np.ascontiguousarray(weights.transpose(2, 3, 0, 1))  # [KH, KW, K, C]
    out = np.empty((batch, maps, oh, ow), np.float32)
    flat = np.zeros((channels, hp * wp + slack), np.float32)
    inside = flat[:, :hp * wp].reshape(channels, hp, wp)[:, top:top + height, left:left + width]

    def output_rows(image: int, first: int, last: int) -> None:
        wide = np.empty((maps, (last - first) * wp), np.float32)
        for i in range(kh):
            for j in range(kw):
                start = i * dh * wp + j * dw + first * wp
                rows = flat[:, start:start + (last - first) * wp]
                if i == j == 0:
                    np.matmul(taps[i, j], rows, out=wide)
                else:
                    matmul_accumulate(taps[i, j], rows, wide)
        out[image, :, first:last] = wide.reshape(maps, last - first, wp)[:, :, :ow]
        block = out[image].reshape(maps, oh * ow)[:, first * ow:last * ow]
        epilogue.finish(block, (image, slice(0, maps), slice(first * ow, last * ow)))

    parts = split(oh, 2.0 * maps * channels * kh * kw * oh * wp)
    for image in range(batch):
        inside[...] = x[image]  # the padding stays zero
        run_parts(partial(output_rows, image), parts)
    return out


def conv2d_depthwise_taps(x: np.ndarray, weights: np.ndarray,
                          geometry: Sequence[tuple[int, int, int]], strides: Sequence[int],
                          dilations: Sequence[int], epilogue: Epilogue = Epilogue()
                          ) -> np.ndarray:
    """Depthwise 2D convolution (one input channel per group, one map per channel) of ``x``
    ``[B, C, H, W]`` (float32) with ``weights`` ``[C, 1, KH, KW]``: a multiply-add per kernel
    tap instead of a matrix product per channel; the parts split the channels.

    Each stride phase of the padded input (every ``sh``-th row from row ``p``, every
    ``sw``-th column from column ``q``) is flattened to ``[B, C, Hq * Wq]``, so that a tap
    reads one contiguous slice per channel, as ``conv2d_shifted_gemm`` does: the output is
    computed ``Wq`` wide and the extra columns dropped. NumPy then runs long inner loops
    instead of one of ``OW`` elements per output row."""
    batch, channels = x.shape[:2]
    kh, kw = weights.shape[2:]
    (oh, ow) = (extent for _, _, extent in geometry)
    sh, sw = strides
    dh, dw = dilations
    padded = pad_for_windows(x, geometry, dilated_extent((kh, kw), dilations), strides)
    hq, wq = -(-padded.shape[2] // sh), -(-padded.shape[3] // sw)
    slack = (kw - 1) * dw // sw + 1  # the last tap's slice runs this far past the plane
    flat = np.zeros((sh * sw, batch, channels, hq * wq + slack), np.float32)
    for p in range(sh):
        for q in range(sw):
            phase = padded[:, :, p::sh, q::sw]
            plane = flat[p * sw + q, :, :, :hq * wq].reshape(batch, channels, hq, wq)
            plane[:, :, :phase.shape[2], :phase.shape[3]] = phase
    # Per tap: its phase and where output (0, 0) reads in that phase's flattened plane.
    reads = [((i * dh % sh) * sw + j * dw % sw, i * dh // sh * wq + j * dw // sw)
             for i in range(kh) for j in range(kw)]
    taps = weights.reshape(channels, kh * kw, 1)
    out = np.empty((batch, channels, oh, ow), np.float32)

    def channel_part(start: int, stop: int) -> None:
        wide = np.empty((batch, stop - start, oh * wq), np.float32)
        product = np.empty_like(wide)
        for t, (phase, offset) in enumerate(reads):
            window = flat[phase, :, start:stop, offset:offset + oh * wq]
            if t == 0:
                np.multiply(window, taps[start:stop, t], out=wide)
            else:
                wide += np.multiply(window, taps[start:stop, t], out=product)
        out[:, start:stop] = wide.reshape(batch, stop - start, oh, wq)[:, :, :, :ow]
        for image in range(batch):
            epilogue.finish(out[image, start:stop].reshape(stop - start, oh * ow),
                            (image, slice(start, stop), slice(0, oh * ow)))

    run_parts(channel_part, split(channels, out.size * kh * kw, PARALLEL_MIN_ELEMENTS))
    return out


def _direct_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConvolutionLayer)
    return len(layer.kernel_size_nd) == 2 and _weights_fit(layer, inputs)


def _shifted_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConvolutionLayer)
    return len(layer.kernel_size_nd) == 2 and layer.num_groups == 1 and \
        tuple(layer.stride_nd) == (1, 1) and _weights_fit(layer, inputs)


def _channels_last_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    """Ungrouped 2D kernels of several taps, the padding non-negative."""
    assert isinstance(layer, IConvolutionLayer)
    return len(layer.kernel_size_nd) == 2 and layer.num_groups == 1 and \
        int(np.prod(layer.kernel_size_nd)) > 1 and \
        min(*layer.pre_padding, *layer.post_padding) >= 0 and _weights_fit(layer, inputs)


def _depthwise_fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IConvolutionLayer)
    x = inputs[0]
    return len(layer.kernel_size_nd) == 2 and x is not None and len(x.shape) >= 3 and \
        layer.num_groups == layer.num_output_maps == x.shape[-3] and _weights_fit(layer, inputs)


def _grouped_direct_gemm(x: np.ndarray, weights: np.ndarray,
                         geometry: Sequence[tuple[int, int, int]], strides: Sequence[int],
                         dilations: Sequence[int], groups: int, epilogue: Epilogue
                         ) -> np.ndarray:
    """A direct GEMM per group, then the epilogue over all maps at once (the groups of
    ShuffleNet are small: per-group epilogues cost more calls than they save)."""
    batch, channels = x.shape[:2]
    maps = weights.shape[0]
    per_group, group_maps = channels // groups, maps // groups
    out = np.empty((batch, maps) + tuple(extent for _, _, extent in geometry), np.float32)
    for g in range(groups):
        conv2d_direct_gemm(x[:, g * per_group:(g + 1) * per_group],
                           weights[g * group_maps:(g + 1) * group_maps], geometry, strides,
                           dilations, out=out[:, g * group_maps:(g + 1) * group_maps])
    blocks = out.reshape(batch, maps, -1)
    for image in range(batch):
        epilogue.finish(blocks[image], (image, slice(0, maps), slice(0, blocks.shape[2])))
    return out


def _convolve(layer: IConvolutionLayer, inputs: list[np.ndarray | None], method: str
              ) -> np.ndarray:
    """The finished float32 output (bias, and a fused layer's residual and activation);
    ``method`` is ``"im2col"``, ``"direct"`` (a direct GEMM per group), ``"shifted"``,
    ``"channels_last"`` or ``"depthwise"``."""
    x, weights, b = _operands(layer, inputs[:3])
    spatial = len(layer.kernel_size_nd)
    flat, lead = _flatten_batch(x, spatial)
    batch, channels = flat.shape[:2]
    maps, groups = layer.num_output_maps, layer.num_groups
    w = weights.reshape(maps, channels // groups, *layer.kernel_size_nd)
    geometry = layer.geometry(flat.shape[2:])
    strides, dilations = tuple(layer.stride_nd), tuple(layer.dilation_nd)
    residual = inputs[3] if len(inputs) > 3 else None
    if residual is not None:
        residual = residual.astype(np.float32, copy=False).reshape(batch, maps, -1)
    epilogue = Epilogue(b, residual, layer.activation, layer.alpha, layer.beta) \
        if isinstance(layer, IFusedConvolutionLayer) else Epilogue(b)
    if method == "depthwise":
        out = conv2d_depthwise_taps(flat, w, geometry, strides, dilations, epilogue)
    elif method == "shifted":
        out = conv2d_shifted_gemm(flat, w, geometry, dilations, epilogue)
    elif method == "channels_last":
        wmat = taps_last_weights(weights, w.shape)  # type: ignore[arg-type]
        out = conv2d_channels_last_gemm(flat, w, wmat, geometry, strides, dilations, epilogue)
    elif method == "direct" and groups == 1:
        out = conv2d_direct_gemm(flat, w, geometry, strides, dilations, epilogue)
    elif method == "direct":
        out = _grouped_direct_gemm(flat, w, geometry, strides, dilations, groups, epilogue)
    else:
        out = np.ascontiguousarray(conv_im2col_gemm(flat, w, geometry, strides, dilations,
                                                    groups))
        blocks = out.reshape(batch, maps, -1)
        for image in range(batch):
            epilogue.finish(blocks[image], (image, slice(0, maps), slice(0, blocks.shape[2])))
    assert inputs[0] is not None
    return out.reshape(lead + out.shape[1:]).astype(inputs[0].dtype, copy=False)


def _convolution(layer: ILayer, inputs: list[np.ndarray | None], method: str
                 ) -> list[np.ndarray]:
    assert isinstance(layer, IConvolutionLayer)
    return [_convolve(layer, inputs, method)]


# (tactic name suffix, method, supports), in registration order: optimization level 0 takes
# the first valid one. Plain convolutions have their im2col tactic in spatial_conv.
_METHODS = (("im2col_gemm", "im2col", _weights_fit), ("direct_gemm", "direct", _direct_fits),
            ("shifted_gemm", "shifted", _shifted_fits),
            ("channels_last_gemm", "channels_last", _channels_last_fits),
            ("depthwise_taps", "depthwise", _depthwise_fits))
for _type, _prefix, _methods in ((LayerType.CONVOLUTION, "cpu.convolution", _METHODS[1:]),
                                 (LayerType.FUSED_CONVOLUTION, "cpu.fused_convolution",
                                  _METHODS)):
    for _suffix, _method, _fits in _methods:
        kernel(_type, backend="cpu", name=f"{_prefix}_{_suffix}", supports=_fits)(
            partial(_convolution, method=_method))


@kernel(LayerType.FUSED_MATRIX_MULTIPLY, backend="cpu", name="cpu.fused_matrix_multiply")
def fused_matrix_multiply(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IFusedMatrixMultiplyLayer)
    (product,) = matrix_multiply(layer, inputs[:2])
    out = product.astype(np.float32)  # a copy the epilogue may write into
    bias = inputs[2] if len(inputs) > 2 else None
    if bias is not None:
        out += bias.astype(np.float32, copy=False)
    residual = inputs[3] if len(inputs) > 3 else None
    if residual is not None:
        out += residual.astype(np.float32, copy=False)
    Epilogue(activation=layer.activation, alpha=layer.alpha, beta=layer.beta).activate(out)
    return [narrow(out, dtype_of(inputs[0]))]


def _row_operands(layer: IFusedMatrixMultiplyLayer, shapes: list[tuple[int, ...] | None]
                  ) -> tuple[int, int, int] | None:
    """(rows, inner, columns) where the fused product is rows of the first operand (leading
    axes flattened, not transposed) times one matrix, plain or transposed, with a bias row
    and a residual of the output's shape; None otherwise."""
    a, b = shapes[0], shapes[1]
    if a is None or b is None or len(a) < 2 or len(b) < 2 or \
            MatrixOperation(layer.op0) != MatrixOperation.NONE or \
            MatrixOperation(layer.op1) not in (MatrixOperation.NONE, MatrixOperation.TRANSPOSE) \
            or int(np.prod(b[:-2], dtype=np.int64)) != 1 or min(a + b) < 0:
        return None
    transposed = MatrixOperation(layer.op1) == MatrixOperation.TRANSPOSE
    inner, columns = (b[-1], b[-2]) if transposed else (b[-2], b[-1])
    if a[-1] != inner:
        return None
    rows = int(np.prod(a[:-1], dtype=np.int64))
    bias = shapes[2] if len(shapes) > 2 else None
    if bias is not None and (bias[-1:] != (columns,) or int(np.prod(bias)) != columns):
        return None
    residual = shapes[3] if len(shapes) > 3 else None
    if residual is not None and tuple(residual) != tuple(a[:-1]) + (columns,):
        return None
    return rows, int(inner), int(columns)


def _row_parts_fit(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IFusedMatrixMultiplyLayer)
    floats = all(i is None or i.dtype.name in ("FLOAT", "HALF", "BF16") for i in inputs)
    return floats and _row_operands(
        layer, [None if i is None else tuple(i.shape) for i in inputs]) is not None


@kernel(LayerType.FUSED_MATRIX_MULTIPLY, backend="cpu", name="cpu.fused_matrix_multiply_rows",
        supports=_row_parts_fit)
def fused_matrix_multiply_rows(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The fused product cut into parts of rows (``blas_threads``): each part's product, bias,
    residual and activation run on its own thread, as the convolutions' parts do."""
    assert isinstance(layer, IFusedMatrixMultiplyLayer)
    operands = _row_operands(layer, [None if i is None else i.shape for i in inputs])
    assert operands is not None
    rows, inner, columns = operands
    a = inputs[0].astype(np.float32, copy=False).reshape(rows, inner)
    b = inputs[1].astype(np.float32, copy=False).reshape(inputs[1].shape[-2:])
    if MatrixOperation(layer.op1) == MatrixOperation.TRANSPOSE:
        b = b.T
    bias = inputs[2] if len(inputs) > 2 else None
    bias_row = None if bias is None else bias.astype(np.float32, copy=False).reshape(columns)
    residual = inputs[3] if len(inputs) > 3 else None
    residual_rows = None if residual is None else \
        residual.astype(np.float32, copy=False).reshape(rows, columns)
    epilogue = Epilogue(activation=layer.activation, alpha=layer.alpha, beta=layer.beta)
    out = np.empty((rows, columns), np.float32)

    def part(start: int, stop: int) -> None:
        block = out[start:stop]
        np.matmul(a[start:stop], b, out=block)
        if bias_row is not None:
            block += bias_row
        if residual_rows is not None:
            block += residual_rows[start:stop]
        epilogue.activate(block)

    run_parts(part, split(rows, 2.0 * rows * inner * columns))
    return [narrow(out.reshape(tuple(inputs[0].shape[:-1]) + (columns,)), dtype_of(inputs[0]))]
