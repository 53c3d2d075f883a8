"""Scale folding: a per-channel multiply or add after a convolution, or a multiply after a
matrix multiply by constant weights, is folded into the weights (batch norm, as exporters
write it, becomes the convolution's kernel and bias).

Folded into a convolution ``y = conv(x)`` whose only reader is the scaling layer, with the
kernel and bias given as weights:

- ``IScaleLayer`` in CHANNEL mode on the channel axis, or UNIFORM, with no power;
- elementwise PROD / SUM with a constant (either side), DIV / SUB by a constant (right side),
  the constant being 1 everywhere but the channel axis.

Folded into ``x @ W`` (W a constant, input 1, op NONE or TRANSPOSE): PROD with, or DIV by, a
constant that is 1 everywhere but the last axis. The bias add after a matrix multiply is the
business of ``fuse_matmul_bias_act``.

Preconditions: constants are folded (``fold_constants``); only FLOAT layers are changed.
"""

from __future__ import annotations

import numpy as np

from engine.builder.passes.context import PassContext
from engine.builder.passes.rewrite import (
    add_constant,
    constant_value,
    only_consumer,
    remove_layer,
    replace_tensor,
)
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layer import ILayer
from engine.network.layers.math_contraction import IMatrixMultiplyLayer, MatrixOperation
from engine.network.layers.math_elementwise import ElementWiseOperation, IElementWiseLayer
from engine.network.layers.spatial_conv import IConvolutionLayer, weights_array
from engine.network.layers.spatial_scale import IScaleLayer, ScaleMode
from engine.network.scaled_weights import array_dtype, scale_rows
from engine.network.tensor import ITensor
from engine.types import DataType, Weights, as_weights

_OPS = (ElementWiseOperation.PROD, ElementWiseOperation.SUM, ElementWiseOperation.DIV,
        ElementWiseOperation.SUB)


def _along(value: np.ndarray, rank: int, axis: int, size: int) -> np.ndarray | None:
    """``value`` as a vector of ``size`` along ``axis`` of a rank-``rank`` tensor, if it is 1
    on every other axis (None otherwise)."""
    if value.ndim > rank or value.dtype.kind != "f":
        return None
    shape = (1,) * (rank - value.ndim) + value.shape
    if any(d != 1 for i, d in enumerate(shape) if i != axis) or shape[axis] not in (1, size):
        return None
    return np.broadcast_to(value.reshape(-1).astype(np.float64), (size,))


def _scaling(layer: ILayer, tensor: ITensor, rank: int, axis: int, size: int
             ) -> tuple[np.ndarray, np.ndarray] | None:
    """``layer`` (reading ``tensor``) as ``tensor * scale + shift`` per index of ``axis``."""
    ones, zeros = np.ones(size), np.zeros(size)
    if isinstance(layer, IScaleLayer):
        mode = ScaleMode(layer.mode)
        if weights_array(layer.power).size and not np.all(weights_array(layer.power) == 1):
            return None
        if mode == ScaleMode.ELEMENTWISE or (mode == ScaleMode.CHANNEL
                                             and layer.channel_axis != axis):
            return None
        scale, shift = (weights_array(w).astype(np.float64).reshape(-1)
                        for w in (layer.scale, layer.shift))
        return (np.broadcast_to(scale, (size,)) if scale.size else ones,
                np.broadcast_to(shift, (size,)) if shift.size else zeros)
    if not isinstance(layer, IElementWiseLayer) or ElementWiseOperation(layer.op) not in _OPS:
        return None
    op = ElementWiseOperation(layer.op)
    if layer._inputs[0] is layer._inputs[1]:
        return None
    other = layer._inputs[1] if layer._inputs[0] is tensor else layer._inputs[0]
    if other is layer._inputs[0] and op in (ElementWiseOperation.DIV, ElementWiseOperation.SUB):
        return None
    value = constant_value(other)
    vector = None if value is None else _along(value, rank, axis, size)
    if vector is None:
        return None
    if op == ElementWiseOperation.PROD:
        return vector, zeros
    if op == ElementWiseOperation.DIV:
        return 1.0 / vector, zeros
    return ones, (vector if op == ElementWiseOperation.SUM else -vector)


def _fold_into_convolution(network: INetworkDefinition, conv: IConvolutionLayer) -> bool:
    if len([t for t in conv._inputs if t is not None]) != 1:
        return False
    out = conv._outputs[0]
    if network._info(out).dtype != DataType.FLOAT:
        return False
    reader = only_consumer(network, out)
    if reader is None:
        return False
    rank = len(network._info(out).shape)
    maps = conv.num_output_maps
    found = _scaling(reader, out, rank, rank - len(conv.kernel_size_nd) - 1, maps)
    if found is None:
        return False
    scale, shift = found
    kernel = as_weights(conv.kernel)
    dtype = array_dtype(kernel)
    bias = weights_array(conv.bias)
    bias64 = bias.astype(np.float64).reshape(-1) if bias.size else np.zeros(maps)
    if np.any(scale != 1.0):  # a pure shift (the add of a batch norm) leaves the kernel
        # In the kernel's own type, as TensorRT folds. Computed when the plan is written (or
        # a tactic reads it): 94 MB of new ResNet-50 kernels made here were the slowest step
        # of a warm rebuild.
        conv.kernel = scale_rows(kernel, scale)
    conv.bias = Weights((bias64 * scale + shift).astype(dtype))
    replace_tensor(network, reader._outputs[0], out)
    remove_layer(network, reader)
    return True


def _fold_into_matrix_multiply(network: INetworkDefinition, matmul: IMatrixMultiplyLayer
                               ) -> bool:
    op1 = MatrixOperation(matmul.op1)
    weights = constant_value(matmul._inputs[1])
    out = matmul._outputs[0]
    if weights is None or op1 == MatrixOperation.VECTOR or weights.dtype != np.float32:
        return False
    reader = only_consumer(network, out)
    if not isinstance(reader, IElementWiseLayer) or ElementWiseOperation(reader.op) not in (
            ElementWiseOperation.PROD, ElementWiseOperation.DIV):
        return False
    rank = len(network._info(out).shape)
    columns = weights.shape[-1] if op1 == MatrixOperation.NONE else weights.shape[-2]
    found = _scaling(reader, out, rank, rank - 1, columns)
    if found is None:
        return False
    scale, _ = found
    along = scale if op1 == MatrixOperation.NONE else scale[:, np.newaxis]
    scaled = (weights.astype(np.float64) * along).astype(weights.dtype)
    matmul._inputs[1] = add_constant(network, scaled, f"{matmul.name} [scaled weights]")
    network._invalidate(matmul)
    replace_tensor(network, reader._outputs[0], out)
    remove_layer(network, reader)
    return True


def fold_scales(network: INetworkDefinition, context: PassContext | None = None) -> bool:
    changed = False
    for layer in topological_order(network._layers):
        # Folding removes only the reader of the layer folded into, never the layer itself.
        if type(layer) is IConvolutionLayer:
            while _fold_into_convolution(network, layer):
                changed = True
        elif type(layer) is IMatrixMultiplyLayer:
            while _fold_into_matrix_multiply(network, layer):
                changed = True
    return changed
