"""Convolution and deconvolution layers (TensorRT's ``IConvolutionLayer`` and
``IDeconvolutionLayer``), 2D and 3D, grouped and dilated.

Kernels are laid out as TensorRT lays them: convolution ``[K, C/G, *kernel]``,
deconvolution ``[C, K/G, *kernel]`` (C input channels, K output maps, G groups). Either may
come from a tensor through ``set_input(1, kernel)`` (with empty kernel weights), and the bias
through ``set_input(2, bias)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.spatial_window import (
    PaddingMode,
    conv_window,
    deconv_window,
    dilated_extent,
)
from engine.types import DataType, Dims, Weights, as_weights, volume

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor

FLOAT_TYPES = (DataType.FLOAT, DataType.HALF, DataType.BF16)


def weights_array(value: Any) -> np.ndarray:
    """The array behind a Weights attribute (users may assign arrays or None)."""
    if value is None:
        return np.zeros((0,), np.float32)
    return as_weights(value).numpy()


class _WindowedLayer(ILayer):
    """What convolution, deconvolution and pooling share: N-d window attributes.

    ``padding_nd`` reads the pre-padding and writes both pre- and post-padding, as in
    TensorRT.
    """

    def _init_window(self, spatial: int) -> None:
        self.stride_nd = Dims([1] * spatial)
        self.pre_padding = Dims([0] * spatial)
        self.post_padding = Dims([0] * spatial)
        self.padding_mode = PaddingMode.EXPLICIT_ROUND_DOWN

    @property
    def padding_nd(self) -> Dims:
        return Dims(self.pre_padding)

    @padding_nd.setter
    def padding_nd(self, padding: Sequence[int]) -> None:
        self.pre_padding = Dims(padding)
        self.post_padding = Dims(padding)

    def _check_window(self, spatial: int, window: Sequence[int], name: str) -> None:
        if spatial not in (2, 3):
            self.fail(f"{name} must have 2 or 3 dimensions (2D or 3D), got {tuple(window)}")
        if any(k < 1 for k in window):
            self.fail(f"{name} {tuple(window)} must be positive")
        for attr in ("stride_nd", "pre_padding", "post_padding") + self._extra_window_attrs:
            value = tuple(getattr(self, attr))
            if len(value) != spatial:
                self.fail(f"{attr} {value} must have {spatial} dimensions, like {name} "
                          f"{tuple(window)}")
        if any(s < 1 for s in self.stride_nd):
            self.fail(f"stride_nd {tuple(self.stride_nd)} must be positive")
        if PaddingMode(self.padding_mode) not in PaddingMode:
            self.fail(f"unknown padding_mode {self.padding_mode!r}")

    _extra_window_attrs: ClassVar[tuple[str, ...]] = ()


class _ConvolutionBase(_WindowedLayer):
    """Attributes and checks common to convolution and deconvolution."""

    _attributes: ClassVar[tuple[str, ...]] = (
        "kernel_size_nd", "num_output_maps", "stride_nd", "pre_padding", "post_padding",
        "padding_mode", "dilation_nd", "num_groups", "kernel", "bias",
    )
    _max_inputs = 3
    _extra_window_attrs = ("dilation_nd",)

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 num_output_maps: int, kernel_shape: Sequence[int], kernel: Any,
                 bias: Any) -> None:
        super().__init__(network, [input])
        self.kernel_size_nd = Dims(kernel_shape)
        self.num_output_maps = int(num_output_maps)
        self._init_window(len(self.kernel_size_nd))
        self.dilation_nd = Dims([1] * len(self.kernel_size_nd))
        self.num_groups = 1
        self.kernel = as_weights(kernel) if kernel is not None else Weights()
        self.bias = as_weights(bias) if bias is not None else Weights()

    # The layout of the kernel: (in channels per group, out maps per group) order differs.
    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        raise NotImplementedError

    def _window(self, mode: PaddingMode, size: int, extent: int, stride: int, pre: int,
                post: int) -> tuple[int, int, int]:
        raise NotImplementedError

    def geometry(self, spatial_in: Sequence[int]) -> list[tuple[int, int, int]]:
        """``(pre, post, out)`` per spatial axis for an input of spatial size ``spatial_in``."""
        extents = dilated_extent(self.kernel_size_nd, self.dilation_nd)
        return [self._window(PaddingMode(self.padding_mode), size, dk, s, b, a)
                for size, dk, s, b, a in zip(spatial_in, extents, self.stride_nd,
                                             self.pre_padding, self.post_padding)]

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        kernel_dims = tuple(self.kernel_size_nd)
        spatial = len(kernel_dims)
        self._check_window(spatial, kernel_dims, "kernel_size_nd")
        if any(d < 1 for d in self.dilation_nd):
            self.fail(f"dilation_nd {tuple(self.dilation_nd)} must be positive")
        if x.dtype not in FLOAT_TYPES:
            self.fail(f"input type {x.dtype.name} is not supported; expected FLOAT, HALF or BF16")
        if x.rank < spatial + 2:
            self.fail(f"input of shape {x.shape} needs at least {spatial + 2} dimensions "
                      f"(batch, channels and {spatial} spatial) for a {spatial}D kernel")
        maps, groups = self.num_output_maps, self.num_groups
        if maps < 1:
            self.fail(f"num_output_maps {maps} must be positive")
        if groups < 1 or maps % groups:
            self.fail(f"num_output_maps {maps} is not divisible by num_groups {groups}")
        channels = x.shape[-spatial - 1]
        if channels >= 0 and channels % groups:
            self.fail(f"input has {channels} channels, not divisible by num_groups {groups}")
        self._check_kernel(inputs, channels)
        self._check_bias(inputs)
        windows = self.geometry(x.shape[-spatial:])
        if any(0 <= out < 1 for _, _, out in windows):  # padding set after add_* may fix it
            self.fail(f"output would be empty: input spatial shape {x.shape[-spatial:]}, "
                      f"kernel {kernel_dims}, output spatial shape "
                      f"{tuple(out for _, _, out in windows)}", settable=True)
        shape = x.shape[:-spatial - 1] + (maps,) + tuple(out for _, _, out in windows)
        return [TensorInfo(shape, x.dtype)]

    def check_weights(self, inputs: list[TensorInfo | None]) -> bool:
        """Fail unless the kernel fits the input and the final ``num_groups`` exactly."""
        x = inputs[0]
        assert x is not None
        self._check_kernel(inputs, x.shape[-len(self.kernel_size_nd) - 1], strict=True)
        return True

    def _check_kernel(self, inputs: list[TensorInfo | None], channels: int,
                      strict: bool = False) -> None:
        tensor = inputs[1] if len(inputs) > 1 else None
        # The size alone: folded kernels are computed only when read (scaled_weights).
        count = 0 if self.kernel is None else as_weights(self.kernel).size
        if tensor is not None:
            if count:
                self.fail("the kernel is given both as weights and as input 1; leave the "
                          "kernel weights empty when the kernel is a tensor")
            if tensor.dtype not in FLOAT_TYPES:
                self.fail(f"kernel tensor type {tensor.dtype.name} is not a float type")
            want = self._kernel_shape(channels)
            if len(tensor.shape) != len(want) or any(
                    w >= 0 and d >= 0 and w != d for w, d in zip(want, tensor.shape)):
                self.fail(f"kernel tensor has shape {tensor.shape}, expected "
                          f"{tuple(want)}")
            return
        if not count:
            # set_input(1, kernel) usually follows add_convolution_nd: insist only at build.
            if strict:
                self.fail("kernel weights are empty and input 1 (the kernel tensor) is not set")
            return
        if channels < 0:
            return
        want = self._kernel_shape(channels)
        # TensorRT's users (and its ONNX parser) set num_groups after add_convolution_nd: a
        # kernel that fits another group count passes shape inference, and check_weights
        # (run when a tactic is chosen) insists on the final one.
        if count != volume(want) and (strict or not self._fits_other_groups(count, channels)):
            # Both layouts hold (K / G) * prod(kernel) values per input channel.
            per_channel = self.num_output_maps // self.num_groups * volume(self.kernel_size_nd)
            if count % per_channel == 0:
                self.fail(f"input has {channels} channels, kernel expects "
                          f"{count // per_channel}")
            self.fail(f"kernel weights hold {count} values, expected {volume(want)} "
                      f"for shape {tuple(want)}")

    def _fits_other_groups(self, count: int, channels: int) -> bool:
        """Whether ``count`` kernel values fit ``channels`` inputs with some group count."""
        maps = self.num_output_maps
        per_group = maps * volume(self.kernel_size_nd)
        return any(count == per_group * (channels // g)
                   for g in range(1, min(channels, maps) + 1)
                   if channels % g == 0 and maps % g == 0)

    def _check_bias(self, inputs: list[TensorInfo | None]) -> None:
        tensor = inputs[2] if len(inputs) > 2 else None
        count = weights_array(self.bias).size
        maps = self.num_output_maps
        if tensor is not None:
            if count:
                self.fail("the bias is given both as weights and as input 2")
            known = all(d >= 0 for d in tensor.shape)
            if known and volume(tensor.shape) != maps:
                self.fail(f"bias tensor has shape {tensor.shape}; expected {maps} values "
                          f"(one per output map)")
            return
        if count not in (0, maps):
            self.fail(f"bias weights hold {count} values, expected {maps} (one per output map)")


class IConvolutionLayer(_ConvolutionBase):
    """A 2D or 3D convolution: ``add_convolution_nd``."""

    type = LayerType.CONVOLUTION

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        return (self.num_output_maps, channels // self.num_groups, *self.kernel_size_nd)

    def _window(self, mode: PaddingMode, size: int, extent: int, stride: int, pre: int,
                post: int) -> tuple[int, int, int]:
        return conv_window(mode, size, extent, stride, pre, post)


class IDeconvolutionLayer(_ConvolutionBase):
    """A 2D or 3D deconvolution (transposed convolution): ``add_deconvolution_nd``."""

    type = LayerType.DECONVOLUTION

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        return (channels, self.num_output_maps // self.num_groups, *self.kernel_size_nd)

    def _window(self, mode: PaddingMode, size: int, extent: int, stride: int, pre: int,
                post: int) -> tuple[int, int, int]:
        return deconv_window(mode, size, extent, stride, pre, post)
