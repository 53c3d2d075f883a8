"""The order in which the builder runs its graph passes; the only place it is written.

A pass is ``def name(network, context) -> bool`` (True when it changed the network); the
``context`` (``PassContext``) tells it the target backend and the builder config. Passes that
need neither may take the network alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from engine.builder.passes.attention import recognize_attention
from engine.builder.passes.attention_layout import fold_attention_head_transposes
from engine.builder.passes.constant_folding import fold_constants
from engine.builder.passes.constant_weights import inline_constant_weights
from engine.builder.passes.context import PassContext
from engine.builder.passes.conv_bias_act import fuse_conv_bias_act
from engine.builder.passes.dead_layers import eliminate_dead_layers
from engine.builder.passes.gelu import recognize_gelu
from engine.builder.passes.layer_norm import recognize_layer_norm
from engine.builder.passes.matmul_bias_act import fuse_matmul_bias_act
from engine.builder.passes.matmul_residual import fuse_matmul_residual_add
from engine.builder.passes.pointwise_chains import fuse_pointwise_chains
from engine.builder.passes.quantize_fuse_convolution import fuse_quantized_convolution
from engine.builder.passes.quantize_fuse_epilogue import fuse_quantized_convolution_epilogue
from engine.builder.passes.quantize_fuse_matrix_multiply import fuse_quantized_matrix_multiply
from engine.builder.passes.quantize_implicit import quantize_implicit_int8
from engine.builder.passes.quantize_merge_duplicates import merge_duplicate_quantize
from engine.builder.passes.quantize_redundant_pairs import remove_redundant_dequantize_quantize
from engine.builder.passes.quantize_through_max_pool import quantize_through_max_pool
from engine.builder.passes.quantize_type_rules import refuse_misused_uint8
from engine.builder.passes.residual_add import fuse_residual_add
from engine.builder.passes.rms_norm import recognize_rms_norm
from engine.builder.passes.scale_folding import fold_scales
from engine.builder.passes.shuffles import eliminate_shuffles
from engine.errors import BuildError
from engine.network.definition import INetworkDefinition

Pass = Callable[..., bool]

PASSES: list[Pass] = [
    refuse_misused_uint8,  # TensorRT's UINT8 rules, checked on the network as the user made it
    eliminate_dead_layers,
    # Quantization first: constant folding would fold the dequantized weights into reals.
    quantize_implicit_int8,
    merge_duplicate_quantize,
    quantize_through_max_pool,
    remove_redundant_dequantize_quantize,
    fuse_quantized_convolution,
    fuse_quantized_matrix_multiply,
    eliminate_dead_layers,
    # Before fuse_pointwise_chains would take the residual add and activation.
    fuse_quantized_convolution_epilogue,
    fold_constants,
    inline_constant_weights,
    eliminate_dead_layers,
    eliminate_shuffles,
    recognize_gelu,
    recognize_layer_norm,
    eliminate_dead_layers,  # a recognized layer norm no longer looks like an RMS norm
    recognize_rms_norm,
    recognize_attention,
    fold_attention_head_transposes,
    eliminate_dead_layers,
    fold_scales,
    fuse_residual_add,
    fuse_conv_bias_act,
    fuse_matmul_bias_act,
    fuse_matmul_residual_add,
    fuse_pointwise_chains,
    eliminate_dead_layers,
]


def _takes_context(fn: Pass) -> bool:
    return len(inspect.signature(fn).parameters) >= 2


def run_passes(network: INetworkDefinition, passes: list[Pass] | None = None,
               context: PassContext | None = None) -> list[str]:
    """Run the passes in order; returns the names of those that changed the network.

    A pass that fails is re-raised as ``BuildError`` naming it and the passes before it.
    """
    context = context or PassContext()
    changed: list[str] = []
    ran: list[str] = []
    for fn in PASSES if passes is None else passes:
        try:
            if fn(network, context) if _takes_context(fn) else fn(network):
                changed.append(fn.__name__)
        except Exception as exc:
            raise BuildError(f"pass {fn.__name__} failed after {ran or 'no passes'}: "
                             f"{exc}") from exc
        ran.append(fn.__name__)
    return changed
