"""GPU kernel of the reverse sequence layer: the CPU kernel's element gather
(``reverse_sequence``) on CuPy arrays, its index table made on the device (capturable)."""

from __future__ import annotations

import cupy

from engine.kernels.cpu.shape_reverse_sequence import reverse_sequence
from engine.kernels.gpu.capabilities import device_types_only
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.shape_reverse_sequence import IReverseSequenceLayer


@kernel(LayerType.REVERSE_SEQUENCE, backend="gpu", name="gpu.reverse_sequence",
        supports=device_types_only)
def reverse_sequence_layer(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IReverseSequenceLayer)
    x, sequence_lens = inputs
    return [reverse_sequence(cupy, x, sequence_lens, batch_axis=layer.batch_axis,
                             sequence_axis=layer.sequence_axis)]
