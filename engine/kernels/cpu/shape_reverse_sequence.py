"""CPU kernel of the reverse sequence layer, and the reversal itself on NumPy or CuPy arrays
(``xp``; the GPU kernel runs the same code): an element gather along the sequence axis
whose index table reverses the first ``sequence_lens[b]`` steps of each batch entry."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.shape_reverse_sequence import IReverseSequenceLayer


def reverse_sequence(xp: Any, x: Any, sequence_lens: Any, *, batch_axis: int,
                     sequence_axis: int) -> Any:
    """``x`` with the first ``sequence_lens[b]`` elements along ``sequence_axis`` of entry
    ``b`` along ``batch_axis`` reversed (lengths clamped to [0, steps])."""
    steps = x.shape[sequence_axis]
    lens = xp.clip(sequence_lens.astype(xp.int64), 0, steps)[None, :]
    t = xp.arange(steps, dtype=xp.int64)[:, None]
    table = xp.where(t < lens, lens - 1 - t, t)  # [steps, batch]
    if sequence_axis > batch_axis:
        table = table.T
    shape = [1] * x.ndim
    shape[sequence_axis], shape[batch_axis] = steps, lens.size
    index = xp.broadcast_to(table.reshape(shape), x.shape)
    return xp.take_along_axis(x, index, axis=sequence_axis)


@kernel(LayerType.REVERSE_SEQUENCE, backend="cpu", name="cpu.reverse_sequence")
def reverse_sequence_layer(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IReverseSequenceLayer)
    x, sequence_lens = inputs
    return [reverse_sequence(np, x, sequence_lens, batch_axis=layer.batch_axis,
                             sequence_axis=layer.sequence_axis)]
