"""``GridSample_TRT``: sampling an image at the points of a grid, as ONNX's ``GridSample``
(opsets 16 and 20; any number of spatial dimensions). It runs ``IGridSampleLayer``'s sampling;
the ONNX parser takes it where that layer does not serve (volumetric or integer images, a
grid of another type).

Inputs: ``X`` [N, C, D1, ..., Dr], ``grid`` [N, H1, ..., Hr, r] holding normalized coordinates
in [-1, 1], innermost dimension first (x, y, ...). Output [N, C, H1, ..., Hr] of ``X``'s type.
Fields: ``mode`` (0 nearest, rounding halves to even; 1 linear; 2 cubic, Keys' kernel with
a = -0.75), ``padding_mode`` (0 zeros, 1 border, 2 reflection), ``align_corners`` (1: -1 and
1 are the centres of the corner pixels; 0: their outer edges).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.kernels.cpu.spatial_grid_sample import grid_sample
from engine.network.layers.shape_slice import SampleMode
from engine.network.layers.spatial_resize import InterpolationMode
from engine.plugins.dimensions import DimsExprs
from engine.plugins.interfaces import PluginFieldType
from engine.plugins.library.base import LibraryPlugin, array_module, register_library_plugin
from engine.types import DataType

NEAREST, LINEAR, CUBIC = 0, 1, 2
ZEROS, BORDER, REFLECTION = 0, 1, 2
# The plugin's padding modes as the sample modes of IGridSampleLayer, whose sampling it runs.
_SAMPLE_MODES = {ZEROS: SampleMode.FILL, BORDER: SampleMode.CLAMP,
                 REFLECTION: SampleMode.REFLECT}


@register_library_plugin
class GridSamplePlugin(LibraryPlugin):
    NAME = "GridSample_TRT"
    FIELDS = {
        "mode": (PluginFieldType.INT32, LINEAR),
        "padding_mode": (PluginFieldType.INT32, ZEROS),
        "align_corners": (PluginFieldType.INT32, 0),
    }

    def check(self) -> None:
        if self.mode not in (0, 1, 2) or self.padding_mode not in (0, 1, 2):
            raise ValueError("GridSample_TRT: mode and padding_mode must be 0, 1 or 2")

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        return [DataType(input_types[0])]

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        if len(inputs) != 2 or len(inputs[0]) < 3 or len(inputs[1]) != len(inputs[0]):
            raise ValueError("GridSample_TRT takes X [N, C, D1..Dr] and grid [N, H1..Hr, r]")
        x, grid = inputs
        return [DimsExprs([x[0], x[1], *list(grid)[1:-1]])]

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        x, grid = inputs[0], inputs[1]
        outputs[0][...] = grid_sample(array_module(x), x, grid,
                                      interpolation=InterpolationMode(self.mode),
                                      sample_mode=_SAMPLE_MODES[self.padding_mode],
                                      align_corners=bool(self.align_corners))
