"""``MultiHeadAttention`` (this library's own plugin): scaled dot-product attention over
heads packed in the last dimension.

Inputs: ``q`` [B, Sq, H*D], ``k`` and ``v`` [B, Sk, H*D]; output [B, Sq, H*D]. Fields:
``num_heads``, ``scale`` (0: 1/sqrt(D)), ``causal`` (1: query i attends to keys j <= i).
Tactics: 0 computes all heads at once, 1 one head at a time (less memory); the builder times
both at the profile's opt shapes and keeps the faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.plugins.dimensions import DimsExprs
from engine.plugins.interfaces import PluginFieldType
from engine.plugins.library.base import LibraryPlugin, array_module, register_library_plugin
from engine.types import DataType


def _softmax(x: np.ndarray) -> np.ndarray:
    e = array_module(x).exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


@register_library_plugin
class MultiHeadAttentionPlugin(LibraryPlugin):
    NAME = "MultiHeadAttention"
    FIELDS = {"num_heads": (PluginFieldType.INT32, 1), "scale": (PluginFieldType.FLOAT32, 0.0),
              "causal": (PluginFieldType.INT32, 0)}

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.tactic = 0

    def check(self) -> None:
        if self.num_heads <= 0:
            raise ValueError(f"MultiHeadAttention: num_heads must be > 0, got {self.num_heads}")

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        return [DataType(input_types[0])]

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        if len(inputs) != 3 or any(len(i) != 3 for i in inputs):
            raise ValueError("MultiHeadAttention takes q, k and v of shape [B, S, H*D]")
        width = inputs[0][2].value
        if width > 0 and width % self.num_heads:
            raise ValueError(f"MultiHeadAttention: width {width} does not split into "
                             f"{self.num_heads} heads")
        return [DimsExprs(inputs[0])]

    def get_valid_tactics(self) -> list[int]:
        return [0, 1]

    def set_tactic(self, tactic: int) -> None:
        self.tactic = int(tactic)

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        xp = array_module(inputs[0])
        q, k, v = (a.astype(np.float32, copy=False) for a in inputs)
        batch, sq, width = q.shape
        sk, heads = k.shape[1], self.num_heads
        depth = width // heads

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, t.shape[1], heads, depth).transpose(0, 2, 1, 3)

        scale = np.float32(self.scale or 1.0 / np.sqrt(depth))
        mask = xp.triu(xp.ones((sq, sk), bool), 1) if self.causal else None
        qh, kh, vh = split(q), split(k), split(v)

        def attend(qs: np.ndarray, ks: np.ndarray, vs: np.ndarray) -> np.ndarray:
            logits = qs @ xp.swapaxes(ks, -1, -2) * scale
            if mask is not None:
                logits = xp.where(mask, np.float32(-np.inf), logits)
            return _softmax(logits) @ vs  # type: ignore[no-any-return]

        if self.tactic == 1:
            result = xp.stack([attend(qh[:, h], kh[:, h], vh[:, h]) for h in range(heads)], 1)
        else:
            result = attend(qh, kh, vh)
        outputs[0][...] = result.transpose(0, 2, 1, 3).reshape(batch, sq, width)
