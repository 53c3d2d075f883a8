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
from engine.builder.passes.rewrite import remove_layer, replace_tensor
from engine.network.definition import INetworkDefinition
from engine.network.layer import LayerType
from engine.network.layers.math_contraction import IMatrixMultiplyLayer
from engine.network.layers.quantized import IQuantizedMatrixMultiplyLayer, codes_as_weights
from engine.types import Weights


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
        if activation is not None:
            fused.input_scale = float(activation.scale.reshape(()))
        fused.kernel_scale = Weights(weights.scale)
        fused.kernel_axis = weights.axis
        fused.output_type = layer._outputs[0].dtype
        fused.name = f"{layer.name} [quantized]"
        network._add_layer(fused)
        fused._outputs[0].name = layer._outputs[0].name
        replace_tensor(network, layer._outputs[0], fused._outputs[0])
        remove_layer(network, layer)
        changed = True
    return changed
