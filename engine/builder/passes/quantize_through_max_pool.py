"""Move a quantize layer ahead of the max pooling it reads: ``Q(maxpool(x))`` becomes
``maxpool(Q(x))``, so the pooling runs on INT8 codes (a quarter of the FP32 bytes, half of
the FP16 ones) and the layer before it can write the codes itself (the quantized
convolution's epilogue absorbs a quantize layer that is its result's only reader). Exact:
quantization is monotonic non-decreasing, so the code of a window's maximum is the maximum
of its codes (rounding and saturation included). TensorRT propagates Q/DQ through max
pooling the same way.

Preconditions: the pooling is MAX, its output is no network output and its only reader is
the quantize layer (``merge_duplicate_quantize`` first makes equal quantize layers one);
the quantize layer is per tensor, to INT8, with a constant positive scale and no zero point
(or zeros); the pooling has no requested output type.
"""

from __future__ import annotations

import numpy as np

from engine.builder.passes.rewrite import constant_value, only_consumer, replace_tensor
from engine.network.definition import INetworkDefinition
from engine.network.layers.shape_quantize import IQuantizeLayer
from engine.network.layers.spatial_pooling import IPoolingLayer, PoolingType
from engine.types import DataType


def _per_tensor_int8(layer: IQuantizeLayer) -> bool:
    scale = constant_value(layer._inputs[1])
    zero = layer._inputs[2] if len(layer._inputs) > 2 else None
    if zero is not None:
        value = constant_value(zero)
        if value is None or np.any(value.astype(np.float32) != 0):
            return False
    return layer.to_type == DataType.INT8 and scale is not None and scale.size == 1 and \
        float(scale.reshape(-1)[0]) > 0


def quantize_through_max_pool(network: INetworkDefinition) -> bool:
    changed = False
    for quantize in list(network._layers):
        if type(quantize) is not IQuantizeLayer or not _per_tensor_int8(quantize):
            continue
        pooled = quantize._inputs[0]
        if pooled is None:
            continue
        pool = pooled._producer
        if not isinstance(pool, IPoolingLayer) or PoolingType(pool.type) != PoolingType.MAX \
                or pool._output_types or only_consumer(network, pooled) is not quantize \
                or quantize._outputs[0] in network._outputs:
            continue
        codes = quantize._outputs[0]
        # The readers of the codes read the pooling output, which becomes the pooled codes;
        # the quantize layer reads the pooling's input and the pooling reads its codes.
        replace_tensor(network, codes, pooled)
        quantize._inputs[0] = pool._inputs[0]
        network._invalidate(quantize)
        pool._inputs[0] = codes
        network._invalidate(pool)
        network._layers.remove(quantize)  # keep the list in execution order
        network._layers.insert(network._layers.index(pool), quantize)
        changed = True
    return changed
