"""``GroupNormalizationPlugin``: group normalization with a scale and bias per channel.

Inputs: ``input`` [N, C, ...], ``scale`` [C], ``bias`` [C]; output like ``input``. Fields:
``eps``, ``num_groups`` (must divide C).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.plugins.dimensions import DimsExprs
from engine.plugins.interfaces import PluginFieldType
from engine.plugins.library.base import LibraryPlugin, array_module, register_library_plugin
from engine.types import DataType


@register_library_plugin
class GroupNormalizationPlugin(LibraryPlugin):
    NAME = "GroupNormalizationPlugin"
    FIELDS = {"eps": (PluginFieldType.FLOAT32, 1e-5), "num_groups": (PluginFieldType.INT32, 1)}

    def check(self) -> None:
        if self.num_groups <= 0:
            raise ValueError(f"GroupNormalizationPlugin: num_groups must be > 0, got "
                             f"{self.num_groups}")

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        return [DataType(input_types[0])]

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        if len(inputs) != 3 or len(inputs[0]) < 2:
            raise ValueError("GroupNormalizationPlugin takes input [N, C, ...], scale [C] and "
                             "bias [C]")
        channels = inputs[0][1].value
        if channels > 0 and channels % self.num_groups:
            raise ValueError(f"GroupNormalizationPlugin: {channels} channels do not split into "
                             f"{self.num_groups} groups")
        return [DimsExprs(inputs[0])]

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        x, scale, bias = inputs
        xp = array_module(x)
        n, c = x.shape[:2]
        grouped = x.astype(np.float32).reshape(n, self.num_groups, -1)
        mean = grouped.mean(axis=2, keepdims=True)
        var = grouped.var(axis=2, keepdims=True)
        normed = ((grouped - mean) / xp.sqrt(var + np.float32(self.eps))).reshape(x.shape)
        affine = (1, c) + (1,) * (x.ndim - 2)
        outputs[0][...] = normed * scale.reshape(affine) + bias.reshape(affine)
