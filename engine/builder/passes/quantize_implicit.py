"""Implicit INT8 (``BuilderFlag.INT8`` on a network without Q/DQ layers): each convolution and
matrix multiply with constant weights gets INT8 input and weights — a quantize/dequantize pair
on its input with the tensor's scale, and its weights as per-output-channel INT8 codes — which
the fusion passes that follow turn into quantized layers computing on the codes.

The input's range comes from ``ITensor.set_dynamic_range`` when the user set one, else from
calibration with ``config.int8_calibrator`` (run here, on the network as it is now, in FP32).
A layer whose input has no range, or whose precision is set to another type, stays in its
type, with a warning. A network with Q/DQ layers is explicitly quantized: ranges and the
calibrator are not used, as in TensorRT.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.builder.config import BuilderFlag
from engine.builder.passes.rewrite import producer_constant
from engine.errors import BuildError
from engine.logger import Severity, log
from engine.network.definition import INetworkDefinition
from engine.network.layer import ILayer, LayerType
from engine.network.layers.math_contraction import MatrixOperation
from engine.network.layers.spatial_conv import weights_array
from engine.network.tensor import ITensor
from engine.quantization.calibration import INT8_MAX, calibrate
from engine.types import DataType, Weights

_REAL = (DataType.FLOAT, DataType.HALF)


def _eligible(layer: ILayer) -> bool:
    if layer.layer_type not in (LayerType.CONVOLUTION, LayerType.MATRIX_MULTIPLY):
        return False
    if layer.precision_is_set and layer.precision != DataType.INT8:
        return False
    x = layer._inputs[0]
    if x is None or x.dtype not in _REAL:
        return False
    if layer.layer_type == LayerType.CONVOLUTION:
        return len(layer._inputs) < 2 or layer._inputs[1] is None
    if layer.layer_type == LayerType.MATRIX_MULTIPLY:
        return producer_constant(x) is None and producer_constant(layer._inputs[1]) is not None
    return False


def calibration_shapes(network: INetworkDefinition, config: Any) -> dict[str, list[int]]:
    """The shape of each input in the calibration batches: as declared, or the first
    profile's opt shape for dynamic inputs."""
    shapes = {}
    for t in network._inputs:
        shape = list(t.shape)
        if any(d < 0 for d in shape):
            got = config._profiles[0].get_shape(t.name) if config._profiles else None
            if not got:
                raise BuildError(f"calibration: input '{t.name}' has dynamic shape "
                                 f"{tuple(shape)} and no optimization profile gives its shape")
            shape = list(got[1])
        shapes[t.name] = shape
    return shapes


def _input_ranges(network: INetworkDefinition, inputs: list[ITensor], context: Any
                  ) -> dict[ITensor, float]:
    """amax per tensor: the user's dynamic range, else the calibrated one."""
    ranges = {t: max(abs(t.dynamic_range[0]), abs(t.dynamic_range[1]))
              for t in inputs if t.dynamic_range is not None}
    calibrator = getattr(context.config, "int8_calibrator", None)
    if len(ranges) < len(inputs) and calibrator is not None:
        scales = calibrate(network, calibrator, calibration_shapes(network, context.config),
                           context.logger)
        for t in inputs:
            if t not in ranges and t.name in scales:
                ranges[t] = scales[t.name] * INT8_MAX
    return ranges


def _per_channel_codes(weights: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric INT8 codes of ``weights`` with one scale per index of ``axis``."""
    moved = np.moveaxis(weights.astype(np.float32), axis, 0)
    amax = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1)
    scale = np.where(amax > 0, amax / INT8_MAX, 1.0).astype(np.float32)
    shape = [1] * weights.ndim
    shape[axis] = -1
    codes = np.clip(np.rint(weights / scale.reshape(shape)), -INT8_MAX, INT8_MAX)
    return codes.astype(np.int8), scale


def _dequantized_constant(network: INetworkDefinition, codes: np.ndarray, scale: np.ndarray,
                          axis: int, to_type: DataType, name: str) -> ITensor:
    constant = network.add_constant(codes.shape, Weights(codes))
    constant.name = f"{name} [int8 weights]"
    scale_tensor = network.add_constant(scale.shape, Weights(scale))._outputs[0]
    dequantize = network.add_dequantize(constant._outputs[0], scale_tensor, to_type)
    dequantize.axis = axis
    return dequantize._outputs[0]


def _quantize_input(network: INetworkDefinition, layer: ILayer, amax: float) -> None:
    x = layer._inputs[0]
    assert x is not None
    scale = network.add_constant((), Weights(np.array(amax / INT8_MAX, np.float32)))
    quantize = network.add_quantize(x, scale._outputs[0], DataType.INT8)
    quantize.name = f"{layer.name} [int8 input]"
    dequantize = network.add_dequantize(quantize._outputs[0], scale._outputs[0], x.dtype)
    layer.set_input(0, dequantize._outputs[0])


def quantize_implicit_int8(network: INetworkDefinition, context: Any) -> bool:
    config = context.config
    if config is None or not config.get_flag(BuilderFlag.INT8):
        return False
    if any(layer.layer_type in (LayerType.QUANTIZE, LayerType.DEQUANTIZE)
           for layer in network._layers):
        log(context.logger, Severity.INFO, "INT8: the network has Q/DQ layers (explicit "
                                           "quantization); dynamic ranges and the calibrator "
                                           "are not used")
        return False
    targets = [layer for layer in network._layers if _eligible(layer)]
    inputs = list(dict.fromkeys(layer._inputs[0] for layer in targets))
    ranges = _input_ranges(network, inputs, context) if targets else {}  # type: ignore[arg-type]
    changed = False
    for layer in targets:
        x = layer._inputs[0]
        assert x is not None
        if not ranges.get(x):
            log(context.logger, Severity.WARNING,
                f"INT8: no dynamic range or calibration scale for tensor '{x.name}'; layer "
                f"'{layer.name}' stays in {x.dtype.name}")
            continue
        if layer.layer_type == LayerType.CONVOLUTION:
            conv: Any = layer
            kernel = weights_array(conv.kernel).reshape(conv.num_output_maps, -1)
            codes, scale = _per_channel_codes(kernel, 0)
            shape = (conv.num_output_maps, -1, *conv.kernel_size_nd)
            conv.kernel = Weights()
            weights = _dequantized_constant(network, codes.reshape(shape), scale, 0, x.dtype,
                                            layer.name)
        else:
            constant = producer_constant(layer._inputs[1])
            assert constant is not None
            values = np.asarray(constant.array(), np.float32)
            op1 = MatrixOperation(layer.op1)  # type: ignore[attr-defined]
            axis = {MatrixOperation.NONE: values.ndim - 1,
                    MatrixOperation.TRANSPOSE: values.ndim - 2}.get(op1)
            if axis is None or values.ndim < 2:
                codes, scale = _per_channel_codes(values.reshape(1, -1), 0)
                codes, scale, axis = codes.reshape(values.shape), scale.reshape(()), -1
            else:
                codes, scale = _per_channel_codes(values, axis)
            weights = _dequantized_constant(network, codes, scale, axis, x.dtype, layer.name)
        _quantize_input(network, layer, ranges[x])
        layer.set_input(1, weights)
        changed = True
    return changed
