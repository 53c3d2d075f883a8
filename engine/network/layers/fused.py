"""Layers the builder's fusion passes create: a convolution or matrix multiply with its
epilogue (bias, residual add, activation) in one layer. Users never add them; the engine
inspector shows them under the fused name TensorRT would give (``conv1 + relu1``).

The epilogue is ``activation(contraction(x) + bias + residual)``: ``activation`` is None or an
``ActivationType`` with its ``alpha`` and ``beta``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.math_contraction import IMatrixMultiplyLayer
from engine.network.layers.math_pointwise import ActivationType
from engine.network.layers.spatial_conv import IConvolutionLayer
from engine.network.shapes import broadcast_shapes

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor

EPILOGUE_ATTRIBUTES = ("activation", "alpha", "beta")


def epilogue_of(layer: ILayer) -> tuple[ActivationType | None, float, float]:
    """(activation, alpha, beta) of a layer with the epilogue attributes; (None, 0, 0) for a
    layer without them (a plain convolution or product)."""
    activation = getattr(layer, "activation", None)
    return (None if activation is None else ActivationType(activation),
            float(getattr(layer, "alpha", 0.0) or 0.0), float(getattr(layer, "beta", 0.0) or 0.0))


def check_epilogue(layer: ILayer) -> None:
    if layer.activation is not None:  # type: ignore[attr-defined]
        ActivationType(layer.activation)  # type: ignore[attr-defined]


def set_epilogue(layer: ILayer, activation: ActivationType | None, alpha: float,
                 beta: float) -> None:
    """Give a fused layer its epilogue attributes (``EPILOGUE_ATTRIBUTES``)."""
    values = (None if activation is None else ActivationType(activation), float(alpha),
              float(beta))
    for name, value in zip(EPILOGUE_ATTRIBUTES, values):
        setattr(layer, name, value)


def check_residual(layer: ILayer, residual: TensorInfo | None, out: TensorInfo,
                   what: str) -> None:
    """Fail unless a fused layer's residual (if any) has its output's type and shape
    (``what``: the output's name in the message)."""
    if residual is not None and (residual.dtype != out.dtype or residual.rank != out.rank
                                 or any(r >= 0 and o >= 0 and r != o
                                        for r, o in zip(residual.shape, out.shape))):
        layer.fail(f"residual {residual.shape} {residual.dtype.name} does not match the "
                   f"{what} {out.shape} {out.dtype.name}")


class IFusedConvolutionLayer(IConvolutionLayer):
    """Convolution (kernel and bias as weights) + optional residual (input 3, the output's
    shape) + optional activation."""

    type = LayerType.FUSED_CONVOLUTION
    _attributes: ClassVar[tuple[str, ...]] = IConvolutionLayer._attributes + EPILOGUE_ATTRIBUTES
    _max_inputs = 4

    @classmethod
    def from_convolution(cls, conv: IConvolutionLayer, residual: ITensor | None,
                         activation: ActivationType | None, alpha: float = 0.0,
                         beta: float = 0.0) -> IFusedConvolutionLayer:
        """A fused layer with ``conv``'s attributes and input (not yet added to a network)."""
        network: INetworkDefinition = conv._network
        x = conv._inputs[0]
        assert x is not None, f"layer '{conv.name}' has no input 0"
        layer = cls(network, x, conv.num_output_maps, conv.kernel_size_nd, conv.kernel,
                    conv.bias)
        for name in IConvolutionLayer._attributes:
            setattr(layer, name, getattr(conv, name))
        layer._inputs = [conv._inputs[0], None, None, residual] if residual is not None \
            else [conv._inputs[0]]
        layer._precision = conv._precision  # a precision constraint carries over
        set_epilogue(layer, activation, alpha, beta)
        return layer

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 num_output_maps: int, kernel_shape: Any, kernel: Any, bias: Any) -> None:
        super().__init__(network, input, num_output_maps, kernel_shape, kernel, bias)
        self.activation: ActivationType | None = None
        self.alpha = 0.0
        self.beta = 0.0

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (out,) = super().infer(inputs[:3])
        check_epilogue(self)
        check_residual(self, inputs[3] if len(inputs) > 3 else None, out, "convolution output")
        return [out]


class IFusedMatrixMultiplyLayer(IMatrixMultiplyLayer):
    """Matrix multiply + optional bias (input 2, broadcast to the product) + optional
    residual (input 3, the product's shape) + optional activation:
    ``activation(a @ b + bias + residual)``."""

    type = LayerType.FUSED_MATRIX_MULTIPLY
    _attributes: ClassVar[tuple[str, ...]] = IMatrixMultiplyLayer._attributes \
        + EPILOGUE_ATTRIBUTES
    _max_inputs = 4

    def __init__(self, network: INetworkDefinition, input0: ITensor, op0: Any, input1: ITensor,
                 op1: Any, bias: ITensor | None = None) -> None:
        super().__init__(network, input0, op0, input1, op1)
        if bias is not None:
            self._inputs.append(bias)
        self.activation: ActivationType | None = None
        self.alpha = 0.0
        self.beta = 0.0

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (out,) = super().infer(inputs[:2])
        check_epilogue(self)
        bias = inputs[2] if len(inputs) > 2 else None
        if bias is not None:
            if bias.dtype != out.dtype:
                self.fail(f"bias type {bias.dtype.name} differs from the product's "
                          f"{out.dtype.name}")
            try:
                shape = broadcast_shapes(out.shape, bias.shape)
            except ValueError as exc:
                self.fail(f"bias: {exc}")
            if len(shape) != len(out.shape) or any(
                    s >= 0 and o >= 0 and s != o for s, o in zip(shape, out.shape)):
                self.fail(f"bias {bias.shape} would enlarge the product {out.shape}")
        check_residual(self, inputs[3] if len(inputs) > 3 else None, out, "product")
        return [out]
