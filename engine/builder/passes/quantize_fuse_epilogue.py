"""Fold the epilogue of a quantized convolution — a residual add, an activation and the next
layers' INT8 (or FP8) quantization — into one ``IFusedQuantizedConvolutionLayer``, named
``"conv1 [quantized] + add1 + relu1 + q2"``: on the GPU one kernel over the activation
instead of three, and an INT8 (FP8) activation instead of a float one between the layers.

Preconditions, each part optional, absorbed in this order while the previous result has the
part as its only reader (and is no network output):

- a SUM whose other input has the convolution output's shape and type (no broadcasting),
  the residual; when that input is the per-tensor dequantized output of INT8 or FP8 codes
  (the residual branch quantized, as NVIDIA's QAT recipe places Q/DQ), the fused layer reads
  the codes and their scale (``residual_scale``) instead, so the block's input stays codes;
- an activation;
- quantize layers, all with the same constant per-tensor scale, no zero point (or zeros) and
  the same output type (INT8 or FP8), reading the float result, which has no other reader (a
  block output that is also the next block's residual stays float). Their outputs all become
  the fused layer's.

The convolution reads INT8 or FP8 codes; the target backend has a tactic accepting the fused
layer (otherwise the longest shorter chain it accepts is fused). When both inputs of the SUM
are quantized convolutions, the one computed later is fused, as in ``fuse_residual_add``.
Runs before ``fuse_pointwise_chains``, which would take the SUM and the activation.
"""

from __future__ import annotations

import numpy as np

from engine.builder.passes.context import PassContext
from engine.builder.passes.quantize_operands import dequantized_operand
from engine.builder.passes.rewrite import (
    constant_value,
    only_consumer,
    other_input,
    remove_layer,
    replace_chain,
    replace_tensor,
)
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layer import ILayer, LayerType
from engine.network.layers.math_elementwise import ElementWiseOperation, IElementWiseLayer
from engine.network.layers.math_pointwise import ActivationType, IActivationLayer
from engine.network.layers.quantized import (
    IFusedQuantizedConvolutionLayer,
    IQuantizedConvolutionLayer,
)
from engine.network.layers.shape_quantize import IQuantizeLayer
from engine.network.tensor import ITensor
from engine.types import DataType


def _residual_add(network: INetworkDefinition, out: ITensor) -> tuple[ILayer, ITensor] | None:
    """The SUM that is the only reader of ``out``, and its other input, when that input is a
    residual of ``out``'s shape and type."""
    add = only_consumer(network, out)
    if not isinstance(add, IElementWiseLayer) or add.op != ElementWiseOperation.SUM:
        return None
    residual = other_input(add, out)
    if residual is None or residual is out:
        return None
    ours, theirs = network._info(out), network._info(residual)
    if theirs.shape != ours.shape or theirs.dtype != ours.dtype:
        return None
    return add, residual


def _requantization(network: INetworkDefinition, result: ITensor
                    ) -> tuple[list[IQuantizeLayer], float, DataType] | None:
    """The quantize layers that are all the readers of ``result``, their common scale and
    code type, when they quantize it per tensor to INT8 (or all to FP8) with one constant
    scale and no zero point."""
    if result in network._outputs:
        return None
    uses = network._consumers_of(result)
    layers: list[IQuantizeLayer] = []
    scales: set[float] = set()
    code_types: set[DataType] = set()
    for layer, index in uses:
        if type(layer) is not IQuantizeLayer or index != 0 or \
                layer.to_type not in (DataType.INT8, DataType.FP8):
            return None
        code_types.add(DataType(layer.to_type))
        scale = constant_value(layer._inputs[1])
        if scale is None or scale.ndim != 0 or not float(scale) > 0:
            return None
        zero = layer._inputs[2] if len(layer._inputs) > 2 else None
        if zero is not None:
            value = constant_value(zero)
            if value is None or np.any(value.astype(np.float32) != 0):
                return None
        layers.append(layer)
        scales.add(float(np.float32(scale)))  # the quantize kernel divides in float32
    if not layers or len(scales) != 1 or len(code_types) != 1:
        return None
    if len(layers) > 1 and any(q._outputs[0] in network._outputs for q in layers):
        return None  # several network outputs cannot become one tensor
    return layers, scales.pop(), code_types.pop()


def _epilogue(network: INetworkDefinition, conv: IQuantizedConvolutionLayer
              ) -> tuple[list[ILayer], ITensor | None]:
    """``conv`` and the SUM and activation after it that can join it, and the residual."""
    out = conv._outputs[0]
    chain: list[ILayer] = [conv]
    residual = None
    found = _residual_add(network, out)
    if found is not None:
        chain.append(found[0])
        residual = found[1]
    act = only_consumer(network, chain[-1]._outputs[0])
    if isinstance(act, IActivationLayer):
        chain.append(act)
    # The float type stays the convolution's through the epilogue (a weakly typed layer
    # may have been given another output type).
    while len(chain) > 1 and network._info(chain[-1]._outputs[0]).dtype != \
            network._info(out).dtype:
        chain.pop()
    return chain, residual


def _residual_codes(residual: ITensor | None) -> tuple[ITensor, float] | None:
    """(codes, scale) where ``residual`` is the per-tensor dequantized output of run-time
    INT8 or FP8 codes with a constant positive scale and no zero point."""
    operand = dequantized_operand(residual)
    if operand is None or not operand.per_tensor or \
            operand.code_type not in (DataType.INT8, DataType.FP8) or \
            operand.constant_codes is not None:
        return None
    scale = float(np.float32(operand.scale.reshape(-1)[0]))  # the dequantize multiplies in float32
    return (operand.codes, scale) if scale > 0 else None


def _fused_layer(conv: IQuantizedConvolutionLayer, parts: list[ILayer],
                 residual: ITensor | None, output_scale: float, residual_scale: float,
                 output_codes: DataType = DataType.INT8) -> IFusedQuantizedConvolutionLayer:
    act = parts[-1] if isinstance(parts[-1], IActivationLayer) else None
    has_add = any(isinstance(layer, IElementWiseLayer) for layer in parts)
    return IFusedQuantizedConvolutionLayer.from_quantized_convolution(
        conv, residual if has_add else None,
        None if act is None else ActivationType(act.type), getattr(act, "alpha", 0.0),
        getattr(act, "beta", 0.0), output_scale, residual_scale if has_add else 0.0,
        output_codes)


def _fuse(network: INetworkDefinition, context: PassContext,
          conv: IQuantizedConvolutionLayer) -> bool:
    chain, residual = _epilogue(network, conv)
    residuals = [(residual, 0.0)]
    codes = _residual_codes(residual)
    if codes is not None:  # the residual codes first; the dequantized ones where refused
        residuals.insert(0, codes)
    requantization = _requantization(network, chain[-1]._outputs[0])
    for residual_input, residual_scale in residuals:
        if requantization is not None:
            quantizes, scale, code_type = requantization
            fused = _fused_layer(conv, chain, residual_input, scale, residual_scale, code_type)
            if context.accepts(fused):
                first, *others = quantizes
                for quantize in others:  # their readers read the first one's codes
                    replace_tensor(network, quantize._outputs[0], first._outputs[0])
                    remove_layer(network, quantize)
                replace_chain(network, fused, [*chain, first])
                return True
        for end in range(len(chain), 1, -1):  # the longest epilogue the backend accepts
            fused = _fused_layer(conv, chain[:end], residual_input, 0.0, residual_scale)
            if context.accepts(fused):
                replace_chain(network, fused, chain[:end])
                return True
    return False


def fuse_quantized_convolution_epilogue(network: INetworkDefinition,
                                        context: PassContext | None = None) -> bool:
    context = context or PassContext()
    if not context.has_tactics(LayerType.FUSED_QUANTIZED_CONVOLUTION):
        return False
    changed = False
    for conv in reversed(topological_order(network._layers)):
        if type(conv) is IQuantizedConvolutionLayer and _fuse(network, context, conv):
            changed = True
    return changed
