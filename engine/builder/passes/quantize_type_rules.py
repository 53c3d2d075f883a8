"""TensorRT's rules for UINT8: a network I/O type only. A UINT8 input must go through a cast
to FLOAT or HALF before any other use, a UINT8 output must come from a cast of FLOAT or HALF,
and no constant is UINT8 (the quantize and dequantize layers refuse UINT8 themselves).

A check, not a rewrite: it changes nothing and raises ``BuildError`` naming the culprit. It is
the first pass of the default pipeline, so it sees the network as the user defined it. (The
ONNX parser widens UINT8 graph inputs and initializers to INT32 through FLOAT to follow it.)
"""

from __future__ import annotations

from engine.errors import BuildError
from engine.network.definition import INetworkDefinition
from engine.network.layer import LayerType
from engine.types import DataType

_CAST_PARTNERS = (DataType.FLOAT, DataType.HALF)


def refuse_misused_uint8(network: INetworkDefinition) -> bool:
    for tensor in network._inputs:
        if tensor.dtype != DataType.UINT8:
            continue
        for layer, _ in network._consumers_of(tensor):
            if layer.layer_type != LayerType.CAST or \
                    DataType(layer.to_type) not in _CAST_PARTNERS:  # type: ignore[attr-defined]
                raise BuildError(
                    f"network input '{tensor.name}' is UINT8, which is for network I/O only: "
                    f"it must go through a Cast to FLOAT or HALF before other use, but layer "
                    f"'{layer.name}' ({layer.layer_type.name}) reads it")
    for tensor in network._outputs:
        producer = tensor._producer
        if tensor.dtype != DataType.UINT8 or producer is None:
            continue
        source = producer._inputs[0] if producer._inputs else None
        if producer.layer_type != LayerType.CAST or source is None or \
                source.dtype not in _CAST_PARTNERS:
            raise BuildError(
                f"network output '{tensor.name}' is UINT8, which must come from a Cast of a "
                f"FLOAT or HALF tensor; it comes from layer '{producer.name}' "
                f"({producer.layer_type.name})")
    for layer in network._layers:
        if layer.layer_type == LayerType.CONSTANT and layer._outputs[0].dtype == DataType.UINT8:
            raise BuildError(f"constant layer '{layer.name}' holds UINT8 weights; UINT8 is for "
                             f"network I/O only (use INT32 or a float type, or Cast an input)")
    return False
