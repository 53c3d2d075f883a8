"""What the quantize-fusion passes share: putting a quantized layer in place of the layer whose
dequantized operands it reads."""

from __future__ import annotations

from engine.builder.passes.quantize_operands import DequantizedOperand
from engine.builder.passes.rewrite import remove_layer, replace_tensor
from engine.network.definition import INetworkDefinition
from engine.network.layer import ILayer
from engine.types import Weights


def install_quantized(network: INetworkDefinition, layer: ILayer, fused: ILayer,
                      weights: DequantizedOperand, activation: DequantizedOperand | None
                      ) -> None:
    """Give ``fused`` the scales of ``weights`` (and of ``activation``, the run-time codes it
    reads, if any) and put it in place of ``layer``."""
    if activation is not None:
        fused.input_scale = float(activation.scale.reshape(()))  # type: ignore[attr-defined]
    fused.kernel_scale = Weights(weights.scale)  # type: ignore[attr-defined]
    fused.kernel_axis = weights.axis  # type: ignore[attr-defined]
    fused.output_type = layer._outputs[0].dtype  # type: ignore[attr-defined]
    fused.name = f"{layer.name} [quantized]"
    network._add_layer(fused)
    fused._outputs[0].name = layer._outputs[0].name
    replace_tensor(network, layer._outputs[0], fused._outputs[0])
    remove_layer(network, layer)
