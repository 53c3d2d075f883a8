"""Fold dequantize layers into the convolution they feed: ``conv(DQ(x_codes), DQ(w_codes))``
becomes one quantized convolution computing on the codes (exact integer sums, scaled once).

Preconditions: the kernel (input 1) is the dequantized output of constant codes (or of a
quantize layer on constant weights); the bias, if any, is constant. When input 0 is the
dequantized output of run-time codes with a per-tensor scale, the convolution reads the
codes; otherwise it reads the real input and only the weights are quantized (weight-only,
TensorRT's INT4 mode). Dequantize layers left without readers go with dead-layer elimination.
"""

from __future__ import annotations

import numpy as np

from engine.builder.passes.quantize_operands import DequantizedOperand, dequantized_operand
from engine.builder.passes.quantize_patterns import install_quantized
from engine.builder.passes.rewrite import producer_constant
from engine.network.definition import INetworkDefinition
from engine.network.layer import ILayer, LayerType
from engine.network.layers.quantized import CODE_TYPES, IQuantizedConvolutionLayer, codes_as_weights
from engine.network.layers.spatial_conv import IConvolutionLayer, weights_array
from engine.network.tensor import ITensor

_WINDOW = ("stride_nd", "pre_padding", "post_padding", "padding_mode", "dilation_nd",
           "num_groups")


def dynamic_codes(tensor: ITensor | None) -> DequantizedOperand | None:
    """``tensor`` as the per-tensor dequantized output of run-time INT8/FP8 codes, if it is."""
    operand = dequantized_operand(tensor)
    if operand is None or operand.constant_codes is not None or not operand.per_tensor \
            or operand.code_type not in CODE_TYPES:
        return None
    return operand


def _constant_bias(layer: ILayer) -> np.ndarray | None:
    """The bias as an array (empty when there is none); None when it is computed at run time."""
    tensor = layer._inputs[2] if len(layer._inputs) > 2 else None
    if tensor is None:
        return weights_array(layer.bias)  # type: ignore[attr-defined]
    constant = producer_constant(tensor)
    return None if constant is None else np.asarray(constant.array()).reshape(-1)


def fuse_quantized_convolution(network: INetworkDefinition) -> bool:
    changed = False
    for layer in list(network._layers):
        if layer.layer_type != LayerType.CONVOLUTION:
            continue
        assert isinstance(layer, IConvolutionLayer)
        weights = dequantized_operand(layer._inputs[1] if len(layer._inputs) > 1 else None)
        bias = _constant_bias(layer)
        if weights is None or weights.constant_codes is None or bias is None:
            continue
        x = layer._inputs[0]
        assert x is not None
        activation = dynamic_codes(x)
        fused = IQuantizedConvolutionLayer(
            network, x if activation is None else activation.codes, layer.num_output_maps,
            tuple(layer.kernel_size_nd), codes_as_weights(weights.constant_codes,
                                                         weights.code_type), bias)
        for name in _WINDOW:
            setattr(fused, name, getattr(layer, name))
        install_quantized(network, layer, fused, weights, activation)
        changed = True
    return changed
