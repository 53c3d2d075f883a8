"""SpatialLayers: convolution, deconvolution, pooling, padding, resize, LRN, scale,
normalization (layer, instance, group), grid sampling and non-maximum suppression, mixed into
``INetworkDefinition``.

Each layer lives in its own module (``spatial_conv``, ``spatial_pooling``, ...); this module
holds the ``add_*`` methods, with TensorRT 10's names, argument names and defaults.

>>> import engine as trt, numpy as np
>>> network = trt.Builder(trt.Logger()).create_network(0)
>>> x = network.add_input("x", trt.float32, (1, 3, 8, 8))
>>> conv = network.add_convolution_nd(x, 4, (3, 3), np.ones((4, 3, 3, 3), np.float32))
>>> conv.padding_nd = (1, 1)
>>> tuple(conv.get_output(0).shape)
(1, 4, 8, 8)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.network.layers.family import LayerFamily
from engine.network.layers.spatial_conv import IConvolutionLayer, IDeconvolutionLayer
from engine.network.layers.spatial_grid_sample import IGridSampleLayer
from engine.network.layers.spatial_nms import BoundingBoxFormat, INMSLayer
from engine.network.layers.spatial_norm import ILRNLayer, INormalizationLayer
from engine.network.layers.spatial_padding import IPaddingLayer
from engine.network.layers.spatial_pooling import IPoolingLayer, PoolingType
from engine.network.layers.spatial_resize import (
    InterpolationMode,
    IResizeLayer,
    ResizeCoordinateTransformation,
    ResizeRoundMode,
    ResizeSelector,
)
from engine.network.layers.spatial_scale import IScaleLayer, ScaleMode
from engine.network.layers.spatial_window import PaddingMode

if TYPE_CHECKING:
    from engine.network.tensor import ITensor

__all__: list[str] = [
    "BoundingBoxFormat", "IConvolutionLayer", "IDeconvolutionLayer", "IGridSampleLayer",
    "ILRNLayer", "INMSLayer", "INormalizationLayer", "IPaddingLayer", "IPoolingLayer",
    "IResizeLayer", "IScaleLayer", "InterpolationMode",
    "PaddingMode", "PoolingType", "ResizeCoordinateTransformation", "ResizeRoundMode",
    "ResizeSelector", "ScaleMode",
]


class SpatialLayers(LayerFamily):
    """The ``add_*`` methods of the spatial family (mixed into ``INetworkDefinition``)."""

    def add_convolution_nd(
        self, input: ITensor, num_output_maps: int,  # noqa: A002
        kernel_shape: Sequence[int], kernel: Any, bias: Any = None,
    ) -> IConvolutionLayer:
        """A 2D or 3D convolution; ``kernel`` is ``[K, C/G, *kernel_shape]`` (empty weights
        when the kernel comes from input 1), ``bias`` ``[K]`` or None."""
        return self._add(IConvolutionLayer, input, num_output_maps, kernel_shape, kernel, bias)

    def add_deconvolution_nd(
        self, input: ITensor, num_output_maps: int,  # noqa: A002
        kernel_shape: Sequence[int], kernel: Any, bias: Any = None,
    ) -> IDeconvolutionLayer:
        """A 2D or 3D deconvolution; ``kernel`` is ``[C, K/G, *kernel_shape]``."""
        return self._add(IDeconvolutionLayer, input, num_output_maps, kernel_shape, kernel, bias)

    def add_pooling_nd(
        self, input: ITensor, type: PoolingType,  # noqa: A002
        window_size: Sequence[int],
    ) -> IPoolingLayer:
        """Max, average or blended pooling over a 2D or 3D window."""
        return self._add(IPoolingLayer, input, type, window_size)

    def add_padding_nd(
        self, input: ITensor, pre_padding: Sequence[int],  # noqa: A002
        post_padding: Sequence[int],
    ) -> IPaddingLayer:
        """Zero padding (negative: cropping) of the innermost dimensions."""
        return self._add(IPaddingLayer, input, pre_padding, post_padding)

    def add_resize(self, input: ITensor) -> IResizeLayer:  # noqa: A002
        """A resize; set ``shape`` or ``scales`` (or input 1) before building."""
        network = self._definition
        layer = IResizeLayer(network, input)
        # Like TensorRT, the layer is usable before its output shape is set: validate it once
        # an output shape exists, and until then keep it unvalidated.
        network._check_own(input, f"layer '{layer.name}' input 0")
        network._layers.append(layer)
        network._link(layer)
        return layer

    def add_lrn(
        self, input: ITensor, window: int, alpha: float,  # noqa: A002
        beta: float, k: float,
    ) -> ILRNLayer:
        """Local response normalization across channels."""
        return self._add(ILRNLayer, input, window, alpha, beta, k)

    def add_scale(
        self, input: ITensor, mode: ScaleMode,  # noqa: A002
        shift: Any = None, scale: Any = None, power: Any = None,
    ) -> IScaleLayer:
        """``(x * scale + shift) ^ power`` with the channel axis 1."""
        return self._add(IScaleLayer, input, mode, shift, scale, power, channel_axis=1)

    def add_scale_nd(
        self, input: ITensor, mode: ScaleMode,  # noqa: A002
        shift: Any = None, scale: Any = None, power: Any = None, channel_axis: int = 1,
    ) -> IScaleLayer:
        """``(x * scale + shift) ^ power`` with coefficients indexed from ``channel_axis``."""
        return self._add(IScaleLayer, input, mode, shift, scale, power, channel_axis)

    def add_normalization(
        self, input: ITensor, scale: ITensor,  # noqa: A002
        bias: ITensor, axesMask: int,  # noqa: N803 - TensorRT's name
    ) -> INormalizationLayer:
        """Layer, instance or group normalization over the axes in ``axesMask``."""
        return self._add(INormalizationLayer, input, scale, bias, axesMask)

    def add_grid_sample(self, input: ITensor, grid: ITensor  # noqa: A002
                        ) -> IGridSampleLayer:
        """Sample ``input`` [N, C, H, W] at the points of ``grid`` [N, H_out, W_out, 2]
        (LINEAR interpolation, corners not aligned, FILL with zeros until set otherwise)."""
        return self._add(IGridSampleLayer, input, grid)

    def add_nms(self, boxes: ITensor, scores: ITensor,
                max_output_boxes_per_class: ITensor) -> INMSLayer:
        """Non-maximum suppression per batch item and class; outputs the selected (batch,
        class, box) rows and their count (thresholds: ``set_input(3 | 4, tensor)``)."""
        return self._add(INMSLayer, boxes, scores, max_output_boxes_per_class)
