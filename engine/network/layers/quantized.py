"""Quantized convolution and matrix multiply: what the builder's quantization passes fold
``DequantizeLayer`` → convolution / matrix multiply patterns into. Internal layers, never
added by users (TensorRT's fused INT8 kernels, shown by its inspector, are the same idea).

Input 0 holds INT8 or FP8 codes whose real value is ``code * input_scale`` (the dequantize
layer that was folded in), or real values (FLOAT, HALF) when only the weights are quantized
(weight-only INT4/INT8). The weights are constant codes of ``kernel_type`` — INT4 packed two
per byte, low nibble first — with ``kernel_scale`` per tensor (a scalar), per channel (1-D
along ``kernel_axis``) or per block (the weights' rank), as ``IDequantizeLayer`` reads them.
The output is the real result, of ``output_type``.

``IFusedQuantizedConvolutionLayer`` adds the epilogue the builder folds in after the
convolution (residual add, activation) and, optionally, the quantization of the result for
the next layer (INT8 codes out).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.fused import (
    EPILOGUE_ATTRIBUTES,
    check_epilogue,
    check_residual,
    set_epilogue,
)
from engine.network.layers.math_contraction import IMatrixMultiplyLayer, MatrixOperation
from engine.network.layers.math_pointwise import ActivationType
from engine.network.layers.spatial_conv import _ConvolutionBase
from engine.network.layers.spatial_window import PaddingMode, conv_window
from engine.types import DataType, Dims, Weights, nptype, pack_int4, unpack_int4, volume

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor

CODE_TYPES = (DataType.INT8, DataType.FP8)
REAL_TYPES = (DataType.FLOAT, DataType.HALF, DataType.BF16)
WEIGHT_CODE_TYPES = (DataType.INT8, DataType.FP8, DataType.INT4)


def codes_as_weights(codes: np.ndarray, code_type: DataType) -> Weights:
    """Constant codes as layer weights: INT4 packed two per byte, the others as they are."""
    if code_type == DataType.INT4:
        return Weights(pack_int4(np.asarray(codes).astype(np.int8)), dtype=DataType.INT4)
    return Weights(np.ascontiguousarray(np.asarray(codes).astype(nptype(code_type))))


def weights_as_codes(weights: Weights, shape: Sequence[int]) -> np.ndarray:
    """Inverse of ``codes_as_weights``: the codes as an array of ``shape`` (INT4 as int8)."""
    if weights.dtype == DataType.INT4:
        return unpack_int4(weights.numpy(), volume(shape)).astype(np.int8).reshape(tuple(shape))
    return weights.numpy().reshape(tuple(shape))


def code_count(weights: Weights) -> int:
    """How many codes ``weights`` holds (an odd INT4 count cannot be told from its bytes)."""
    return weights.size * 2 if weights.dtype == DataType.INT4 else weights.size


class _QuantizedInput:
    """Checks shared by both layers: the input's type, the scales, the output type."""

    input_scale: float
    kernel_scale: Weights
    output_type: DataType

    def _check_quantized_input(self: Any, x: TensorInfo, kernel_type: DataType) -> None:
        if x.dtype not in CODE_TYPES + REAL_TYPES:
            self.fail(f"input type {x.dtype.name} is neither quantized codes (INT8, FP8) nor "
                      f"real values (FLOAT, HALF, BF16)")
        if x.dtype in CODE_TYPES and not self.input_scale > 0:
            self.fail(f"input holds {x.dtype.name} codes but input_scale is "
                      f"{self.input_scale}; it must be positive")
        if kernel_type not in WEIGHT_CODE_TYPES:
            self.fail(f"weights of type {kernel_type.name} are not quantized codes (INT8, FP8, "
                      f"INT4)")
        scale = self.kernel_scale.numpy()
        if scale.size == 0 or (scale.astype(np.float32) <= 0).any():
            self.fail("kernel_scale must hold positive values")
        if DataType(self.output_type) not in REAL_TYPES:
            self.fail(f"output_type {DataType(self.output_type).name} is not FLOAT, HALF or "
                      f"BF16")


class IQuantizedConvolutionLayer(_ConvolutionBase, _QuantizedInput):
    """A convolution of quantized (or real) input with quantized constant weights."""

    type = LayerType.QUANTIZED_CONVOLUTION
    _attributes: ClassVar[tuple[str, ...]] = _ConvolutionBase._attributes + (
        "input_scale", "kernel_scale", "kernel_axis", "output_type")
    _max_inputs = 1

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 num_output_maps: int, kernel_shape: Sequence[int], kernel: Weights,
                 bias: Any) -> None:
        super().__init__(network, input, num_output_maps, kernel_shape, kernel, bias)
        self.input_scale = 0.0
        self.kernel_scale = Weights(np.ones((), np.float32))
        self.kernel_axis = 0
        self.output_type = DataType.FLOAT

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        return (self.num_output_maps, channels // self.num_groups, *self.kernel_size_nd)

    def _window(self, mode: PaddingMode, size: int, extent: int, stride: int, pre: int,
                post: int) -> tuple[int, int, int]:
        return conv_window(mode, size, extent, stride, pre, post)

    def kernel_codes(self) -> np.ndarray:
        """The weight codes as ``[K, C/G, *kernel]`` (INT4 unpacked to int8)."""
        count = code_count(self.kernel)
        per_map = volume(self.kernel_size_nd)
        shape = (self.num_output_maps, count // (self.num_output_maps * per_map),
                 *self.kernel_size_nd)
        return weights_as_codes(self.kernel, shape)

    def _check_kernel(self, inputs: list[TensorInfo | None], channels: int,
                      strict: bool = False) -> None:
        if channels < 0:
            return
        want = self._kernel_shape(channels)
        count = code_count(self.kernel)
        if count != volume(want) and not (self.kernel.dtype == DataType.INT4
                                          and count == volume(want) + 1):
            self.fail(f"kernel holds {count} codes, expected {volume(want)} for shape {want}")

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        self._check_quantized_input(x, self.kernel.dtype)
        (out,) = super().infer([TensorInfo(x.shape, DataType.FLOAT)])
        return [TensorInfo(out.shape, DataType(self.output_type))]


class IFusedQuantizedConvolutionLayer(IQuantizedConvolutionLayer):
    """A quantized convolution of INT8 (or FP8) codes with its epilogue and, when
    ``output_scale`` is positive, the next layer's per-tensor quantization to
    ``output_codes`` (INT8 or FP8)::

        conv[k] = sum(x_codes * w_codes) * input_scale * kernel_scale[k]
        y = activation(conv + bias + residual)              # in float32
        output = y as output_type                           # output_scale == 0
        output = clip(round_half_to_even(y / output_scale), -128, 127) as INT8   # > 0
        output = FP8(clip(y / output_scale, -448, 448))     # > 0, output_codes FP8

    The residual (input 1, optional) has the output's shape and ``output_type``, or, when
    ``residual_scale`` is positive, is INT8 or FP8 codes of that shape, dequantized first as
    the dequantize layer they replace does: ``residual = output_type(codes *
    residual_scale)`` (a residual branch quantized as NVIDIA's QAT recipe places Q/DQ, read
    as codes). ``activation`` is None or an ``ActivationType`` with its ``alpha`` and
    ``beta``.
    """

    type = LayerType.FUSED_QUANTIZED_CONVOLUTION
    _attributes: ClassVar[tuple[str, ...]] = IQuantizedConvolutionLayer._attributes \
        + EPILOGUE_ATTRIBUTES + ("output_scale", "residual_scale", "output_codes")
    _max_inputs = 2

    @classmethod
    def from_quantized_convolution(cls, conv: IQuantizedConvolutionLayer,
                                   residual: ITensor | None, activation: ActivationType | None,
                                   alpha: float = 0.0, beta: float = 0.0,
                                   output_scale: float = 0.0, residual_scale: float = 0.0,
                                   output_codes: DataType = DataType.INT8
                                   ) -> IFusedQuantizedConvolutionLayer:
        """A fused layer with ``conv``'s attributes and input (not yet added to a network)."""
        x = conv._inputs[0]
        assert x is not None
        layer = cls(conv._network, x, conv.num_output_maps, conv.kernel_size_nd, conv.kernel,
                    conv.bias)
        for name in IQuantizedConvolutionLayer._attributes:
            setattr(layer, name, getattr(conv, name))
        layer._inputs = [x] if residual is None else [x, residual]
        layer._precision = conv._precision  # a precision constraint carries over
        set_epilogue(layer, activation, alpha, beta)
        layer.output_scale = float(output_scale)
        layer.residual_scale = float(residual_scale)
        layer.output_codes = DataType(output_codes)
        return layer

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 num_output_maps: int, kernel_shape: Sequence[int], kernel: Weights,
                 bias: Any) -> None:
        super().__init__(network, input, num_output_maps, kernel_shape, kernel, bias)
        self.activation: ActivationType | None = None
        self.alpha = 0.0
        self.beta = 0.0
        self.output_scale = 0.0
        self.residual_scale = 0.0
        self.output_codes = DataType.INT8

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (out,) = super().infer(inputs[:1])
        check_epilogue(self)
        residual = inputs[1] if len(inputs) > 1 else None
        for name in ("output_scale", "residual_scale"):
            scale = float(getattr(self, name))
            if not (scale == 0.0 or 0.0 < scale < float("inf")):
                self.fail(f"{name} {scale} must be 0 (real values) or a positive finite scale "
                          f"(INT8 or FP8 codes)")
        if DataType(self.output_codes) not in CODE_TYPES:
            self.fail(f"output_codes {DataType(self.output_codes).name} is not INT8 or FP8")
        if residual is not None and float(self.residual_scale) > 0:
            if residual.dtype not in CODE_TYPES:
                self.fail(f"residual {residual.shape} {residual.dtype.name} must be INT8 or FP8 "
                          f"codes when residual_scale is {float(self.residual_scale)}")
            residual = TensorInfo(residual.shape, out.dtype)  # dequantized to the output type
        check_residual(self, residual, out, "convolution output")
        scale = float(self.output_scale)
        return [TensorInfo(out.shape, DataType(self.output_codes))] if scale > 0 else [out]


class IQuantizedMatrixMultiplyLayer(ILayer, _QuantizedInput):
    """``op0(input 0) @ op1(weights)`` with quantized (or real) input 0 and quantized constant
    weights of ``weights_shape``."""

    type = LayerType.QUANTIZED_MATRIX_MULTIPLY
    _attributes: ClassVar[tuple[str, ...]] = (
        "op0", "op1", "kernel", "weights_shape", "input_scale", "kernel_scale", "kernel_axis",
        "output_type")
    _max_inputs = 1
    _split = IMatrixMultiplyLayer._split

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 op0: MatrixOperation, kernel: Weights, weights_shape: Sequence[int],
                 op1: MatrixOperation) -> None:
        super().__init__(network, [input])
        self.op0 = MatrixOperation(op0)
        self.op1 = MatrixOperation(op1)
        self.kernel = kernel
        self.weights_shape = Dims(weights_shape)
        self.input_scale = 0.0
        self.kernel_scale = Weights(np.ones((), np.float32))
        self.kernel_axis = -1
        self.output_type = DataType.FLOAT

    def kernel_codes(self) -> np.ndarray:
        return weights_as_codes(self.kernel, self.weights_shape)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        self._check_quantized_input(x, self.kernel.dtype)
        count, want = code_count(self.kernel), volume(self.weights_shape)
        if count != want and not (self.kernel.dtype == DataType.INT4 and count == want + 1):
            self.fail(f"weights hold {count} codes, expected {want} for weights_shape "
                      f"{tuple(self.weights_shape)}")
        real = TensorInfo(x.shape, DataType.FLOAT)
        weights = TensorInfo(tuple(self.weights_shape), DataType.FLOAT)
        (out,) = IMatrixMultiplyLayer.infer(self, [real, weights])  # type: ignore[arg-type]
        return [TensorInfo(out.shape, DataType(self.output_type))]
