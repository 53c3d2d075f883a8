"""Fold dequantize layers into the matrix multiply they feed: ``DQ(x_codes) @ DQ(w_codes)``
becomes one quantized matrix multiply computing on the codes (exact integer sums, scaled
once); ``x @ DQ(w_codes)`` with real ``x`` becomes a weight-only quantized one (INT4 weights
with block scales, dequantized before the product as TensorRT does).

Preconditions: input 1 is the dequantized output of constant codes (or of a quantize layer on
constant weights); input 0 is real, or the per-tensor dequantized output of run-time codes.
"""

from __future__ import annotations

from engine.builder.passes.quantize_fuse_convolution import dynamic_codes
from engine.builder.passes.quantize_operands import dequantized_operand
from engine.builder.passes.quantize_patterns import install_quantized
from engine.network.definition import INetworkDefinition
from engine.network.layer import LayerType
from engine.network.layers.math_contraction import IMatrixMultiplyLayer
from engine.network.layers.quantized import IQuantizedMatrixMultiplyLayer, codes_as_weights


def fuse_quantized_matrix_multiply(network: INetworkDefinition) -> bool:
    changed = False
    for layer in list(network._layers):
        if layer.layer_type != LayerType.MATRIX_MULTIPLY:
            continue
        assert isinstance(layer, IMatrixMultiplyLayer)
        weights = dequantized_operand(layer._inputs[1])
        if weights is None or weights.constant_codes is None:
            continue
        x = layer._inputs[0]
        assert x is not None
        activation = dynamic_codes(x)
        codes = weights.constant_codes
        fused = IQuantizedMatrixMultiplyLayer(
            network, x if activation is None else activation.codes, layer.op0,
            codes_as_weights(codes, weights.code_type), codes.shape, layer.op1)
        install_quantized(network, layer, fused, weights, activation)
        changed = True
    return changed
