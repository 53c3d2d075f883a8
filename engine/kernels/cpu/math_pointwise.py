"""CPU kernels of the activation, unary, parametric ReLU and cast layers."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from engine.kernels.cpu.math_numeric import dtype_of, erf, narrow, widen
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.math_pointwise import (
    ActivationType,
    IActivationLayer,
    ICastLayer,
    IUnaryLayer,
    UnaryOperation,
)
from engine.types import DataType, nptype

Activation = Callable[[np.ndarray, float, float], np.ndarray]


def _gelu_tanh(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    inner = math.sqrt(2.0 / math.pi) * (0.044715 * x ** 3 + x)
    return 0.5 * x * (1.0 + np.tanh(inner))


_ACTIVATIONS: dict[ActivationType, Activation] = {
    ActivationType.RELU: lambda x, a, b: np.maximum(x, 0),
    ActivationType.SIGMOID: lambda x, a, b: 1.0 / (1.0 + np.exp(-x)),
    ActivationType.TANH: lambda x, a, b: np.tanh(x),
    ActivationType.LEAKY_RELU: lambda x, a, b: np.where(x >= 0, x, a * x),
    ActivationType.ELU: lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1.0)),
    ActivationType.SELU: lambda x, a, b: np.where(x > 0, b * x, b * (a * np.exp(x) - a)),
    ActivationType.SOFTSIGN: lambda x, a, b: x / (1.0 + np.abs(x)),
    # log(exp(y) + 1) as logaddexp(0, y): the same value without overflow for large y.
    ActivationType.SOFTPLUS: lambda x, a, b: a * np.logaddexp(0.0, b * x),
    ActivationType.CLIP: lambda x, a, b: np.maximum(a, np.minimum(b, x)),
    ActivationType.HARD_SIGMOID: lambda x, a, b: np.maximum(0.0, np.minimum(1.0, a * x + b)),
    ActivationType.SCALED_TANH: lambda x, a, b: a * np.tanh(b * x),
    ActivationType.THRESHOLDED_RELU: lambda x, a, b: np.where(x > a, x, 0.0),
    ActivationType.GELU_ERF: lambda x, a, b: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0))),
    ActivationType.GELU_TANH: _gelu_tanh,
}


@kernel(LayerType.ACTIVATION, backend="cpu", name="cpu.activation")
def activation(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IActivationLayer)
    (x,) = inputs
    function = _ACTIVATIONS[ActivationType(layer.type)]
    with np.errstate(over="ignore", invalid="ignore"):
        result = function(widen(x), float(layer.alpha), float(layer.beta))
    return [narrow(result, dtype_of(x))]


_UNARY: dict[UnaryOperation, Callable[[np.ndarray], np.ndarray]] = {
    UnaryOperation.EXP: np.exp,
    UnaryOperation.LOG: np.log,
    UnaryOperation.SQRT: np.sqrt,
    UnaryOperation.RECIP: lambda x: np.divide(1.0, x),
    UnaryOperation.ABS: np.abs,
    UnaryOperation.NEG: np.negative,
    UnaryOperation.SIN: np.sin,
    UnaryOperation.COS: np.cos,
    UnaryOperation.TAN: np.tan,
    UnaryOperation.SINH: np.sinh,
    UnaryOperation.COSH: np.cosh,
    UnaryOperation.ASIN: np.arcsin,
    UnaryOperation.ACOS: np.arccos,
    UnaryOperation.ATAN: np.arctan,
    UnaryOperation.ASINH: np.arcsinh,
    UnaryOperation.ACOSH: np.arccosh,
    UnaryOperation.ATANH: np.arctanh,
    UnaryOperation.CEIL: np.ceil,
    UnaryOperation.FLOOR: np.floor,
    UnaryOperation.ERF: erf,
    UnaryOperation.NOT: np.logical_not,
    UnaryOperation.SIGN: np.sign,
    UnaryOperation.ROUND: np.rint,  # ties to even, as TensorRT rounds
    UnaryOperation.ISINF: np.isinf,
    UnaryOperation.ISNAN: np.isnan,
}


@kernel(LayerType.UNARY, backend="cpu", name="cpu.unary")
def unary(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IUnaryLayer)
    (x,) = inputs
    op = UnaryOperation(layer.op)
    # Out-of-domain inputs give NaN or infinity, as on the GPU, without a warning.
    with np.errstate(all="ignore"):
        result = _UNARY[op](widen(x))
    boolean = op in (UnaryOperation.ISINF, UnaryOperation.ISNAN)
    return [narrow(result, DataType.BOOL if boolean else dtype_of(x))]


@kernel(LayerType.PARAMETRIC_RELU, backend="cpu", name="cpu.parametric_relu")
def parametric_relu(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    x, slope = inputs
    wide = widen(x)
    return [narrow(np.where(wide >= 0, wide, widen(slope) * wide), dtype_of(x))]


@kernel(LayerType.CAST, backend="cpu", name="cpu.cast")
def cast(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, ICastLayer)
    (x,) = inputs
    to_type = DataType(layer.to_type)
    if to_type == DataType.BOOL:
        return [np.asarray(x != 0)]
    # NumPy's float-to-integer conversion truncates toward zero, as TensorRT's does; values
    # out of the target's range are undefined there and not worth a warning here.
    with np.errstate(invalid="ignore", over="ignore"):
        return [x.astype(nptype(to_type))]
