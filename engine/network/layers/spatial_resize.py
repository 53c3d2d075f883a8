"""The resize layer (TensorRT's ``IResizeLayer``): nearest, linear and cubic interpolation to
an output shape given as dimensions, as scales, or by a tensor (input 1).

Two extensions TensorRT 10 lacks, both from ONNX Resize: ``antialias`` (linear and cubic
filters stretched by 1 / scale when downscaling) and the ``TF_CROP_AND_RESIZE`` coordinate
transformation (a crop ``roi`` resized to the output, ``extrapolation_value`` outside the
input)."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from engine.network.layer import ILayer, LayerType, TensorInfo, attribute_enum
from engine.types import DataType, Dims

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


@attribute_enum
class InterpolationMode(enum.IntEnum):
    """How output values are interpolated from the input."""

    NEAREST = 0
    LINEAR = 1
    CUBIC = 2


@attribute_enum
class ResizeCoordinateTransformation(enum.IntEnum):
    """How an output coordinate maps to an input coordinate."""

    ALIGN_CORNERS = 0
    ASYMMETRIC = 1
    HALF_PIXEL = 2
    # An extension (TensorRT has no such member): ONNX's tf_crop_and_resize. The layer's
    # ``roi`` is resized to the output; coordinates outside the input read
    # ``extrapolation_value``.
    TF_CROP_AND_RESIZE = 3


@attribute_enum
class ResizeSelector(enum.IntEnum):
    """What an axis resized to a single pixel reads: the formula's coordinate, or the upper
    (first) pixel."""

    FORMULA = 0
    UPPER = 1


@attribute_enum
class ResizeRoundMode(enum.IntEnum):
    """How NEAREST rounds a fractional input coordinate."""

    HALF_UP = 0
    HALF_DOWN = 1
    FLOOR = 2
    CEIL = 3


# TensorRT's limits: linear interpolates at most the 3 innermost axes, cubic the 2 innermost.
_MAX_INTERPOLATED_AXES = {InterpolationMode.LINEAR: 3, InterpolationMode.CUBIC: 2}
_INDEX_TYPES = (DataType.INT32, DataType.INT64)
_FLOAT_TYPES = (DataType.FLOAT, DataType.HALF, DataType.BF16)


class IResizeLayer(ILayer):
    """Resizes its input: ``add_resize``. Set ``shape`` (output dimensions) or ``scales``
    (output = floor(input * scale)); setting one clears the other. ``set_input(1, tensor)``
    gives them at run time instead: an INT32/INT64 shape tensor of output dimensions, or a
    FLOAT tensor of scales.

    Extensions (not in TensorRT 10): ``antialias`` stretches LINEAR and CUBIC filters by
    1 / scale on downscaled axes (ONNX Resize-18's antialias; NEAREST ignores it).
    ``roi`` (starts then ends, one pair per dimension, normalized to the input) and
    ``extrapolation_value`` serve ``ResizeCoordinateTransformation.TF_CROP_AND_RESIZE``. As in
    ONNX's reference and onnxruntime, the output shape is that of the shape or scales alone,
    not scaled by the roi.

        layer = network.add_resize(x)  # x: (1, 1, 4, 4)
        layer.shape = (1, 1, 3, 3)
        layer.resize_mode = InterpolationMode.LINEAR
        layer.coordinate_transformation = ResizeCoordinateTransformation.TF_CROP_AND_RESIZE
        layer.roi = (0, 0, 0.4, 0.6, 1, 1, 0.6, 0.8)
    """

    type = LayerType.RESIZE
    _attributes: ClassVar[tuple[str, ...]] = (
        "shape", "scales", "resize_mode", "coordinate_transformation",
        "selector_for_single_pixel", "nearest_rounding", "cubic_coeff", "exclude_outside",
        "antialias", "roi", "extrapolation_value",
    )
    _max_inputs = 2
    _shape_inputs = (1,)

    def __init__(self, network: INetworkDefinition, input: ITensor) -> None:  # noqa: A002
        super().__init__(network, [input])
        self.shape = None
        self.scales = None
        self.resize_mode = InterpolationMode.NEAREST
        self.coordinate_transformation = ResizeCoordinateTransformation.ASYMMETRIC
        self.selector_for_single_pixel = ResizeSelector.FORMULA
        self.nearest_rounding = ResizeRoundMode.FLOOR
        self.cubic_coeff = -0.75
        self.exclude_outside = False
        self.antialias = False
        self.roi = None
        self.extrapolation_value = 0.0

    @property
    def roi(self) -> tuple[float, ...] | None:
        return getattr(self, "_roi", None)

    @roi.setter
    def roi(self, values: Sequence[float] | None) -> None:
        self._roi = None if values is None else tuple(float(v) for v in values)

    def crops(self, axis: int) -> bool:
        """Whether ``axis`` is cropped: TF_CROP_AND_RESIZE with a roi other than [0, 1]."""
        transform = ResizeCoordinateTransformation(self.coordinate_transformation)
        if transform != ResizeCoordinateTransformation.TF_CROP_AND_RESIZE or self.roi is None:
            return False
        rank = len(self.roi) // 2
        return (self.roi[axis], self.roi[rank + axis]) != (0.0, 1.0)

    @property
    def shape(self) -> Dims | None:
        return getattr(self, "_output_shape", None)

    @shape.setter
    def shape(self, dims: Sequence[int] | None) -> None:
        self._output_shape: Dims | None = None if dims is None else Dims(dims)
        if dims is not None:
            self._scales: tuple[float, ...] | None = None

    @property
    def scales(self) -> tuple[float, ...] | None:
        return getattr(self, "_scales", None)

    @scales.setter
    def scales(self, values: Sequence[float] | None) -> None:
        self._scales = None if values is None else tuple(float(v) for v in values)
        if values is not None:
            self._output_shape = None

    def resolve(self, in_shape: Sequence[int], shape_or_scales: np.ndarray | None = None,
                input_type: DataType | None = None) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """The output shape and per-axis scales for ``in_shape`` (which may hold -1).

        ``shape_or_scales`` is input 1's value when it is set (``input_type`` its type); the
        scales are the given ones, or output / input when the output shape is given.
        """
        rank = len(in_shape)
        if input_type is not None and input_type in _FLOAT_TYPES:
            scales: tuple[float, ...] | None = tuple(float(s) for s in shape_or_scales)  # type: ignore[union-attr]
            dims: tuple[int, ...] | None = None
        elif input_type is not None:
            dims, scales = tuple(int(d) for d in shape_or_scales), None  # type: ignore[union-attr]
        else:
            dims = None if self.shape is None else tuple(self.shape)
            scales = self.scales
        if scales is not None:
            if len(scales) != rank:
                self.fail(f"scales {scales} must have one value per input dimension "
                          f"({rank})")
            if any(not s > 0 for s in scales):
                self.fail(f"scales {scales} must be positive")
            out = tuple(-1 if d < 0 else int(math.floor(d * s)) for d, s in zip(in_shape, scales))
            return out, scales
        if dims is None:
            self.fail("neither shape nor scales is set, and input 1 is not set")
        if len(dims) != rank:
            self.fail(f"output shape {dims} must have the rank of the input shape "
                      f"{tuple(in_shape)}")
        if any(d < 0 for d in dims):
            self.fail(f"output shape {dims} must be fully specified")
        return dims, tuple(-1.0 if i <= 0 else o / i for i, o in zip(in_shape, dims))

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        mode = InterpolationMode(self.resize_mode)
        if mode != InterpolationMode.NEAREST and x.dtype not in _FLOAT_TYPES:
            self.fail(f"{mode.name} resize needs a float input, got {x.dtype.name}")
        if x.rank < 1:
            self.fail("input must have at least one dimension")
        self._check_crop(x.rank)
        given = inputs[1] if len(inputs) > 1 else None
        if given is not None:
            if given.dtype not in _INDEX_TYPES + (DataType.FLOAT,):
                self.fail(f"input 1 must be an INT32/INT64 shape tensor or FLOAT scales, got "
                          f"{given.dtype.name}")
            if given.rank != 1 or given.shape[0] not in (-1, x.rank):
                self.fail(f"input 1 must be a 1D tensor of {x.rank} values, got shape "
                          f"{given.shape}")
            if given.value is None:
                return [TensorInfo((-1,) * x.rank, x.dtype)]
            out, scales = self.resolve(x.shape, given.value, given.dtype)
        else:
            out, scales = self.resolve(x.shape, None, None)
        changed = [axis for axis, (i, o, s) in enumerate(zip(x.shape, out, scales))
                   if (i >= 0 and i != o) or (s > 0 and s != 1.0) or self.crops(axis)]
        limit = _MAX_INTERPOLATED_AXES.get(mode)
        if limit is not None and changed and changed[0] < x.rank - limit:
            self.fail(f"{mode.name} resize interpolates at most the {limit} innermost "
                      f"dimensions; axis {changed[0]} changes ({x.shape} -> {out})")
        if any(0 <= o < 1 for o in out):
            self.fail(f"output shape {out} would be empty")
        return [TensorInfo(out, x.dtype)]

    def _check_crop(self, rank: int) -> None:
        transform = ResizeCoordinateTransformation(self.coordinate_transformation)
        if transform != ResizeCoordinateTransformation.TF_CROP_AND_RESIZE:
            return
        if self.roi is None:
            self.fail("TF_CROP_AND_RESIZE needs roi (a start and an end per dimension)")
        if len(self.roi) != 2 * rank:
            self.fail(f"roi {self.roi} must hold a start and an end per input dimension "
                      f"({2 * rank} values)")
