"""Normalization layers: local response normalization across channels (TensorRT's
``ILRNLayer``) and mean/variance normalization over axes — layer, instance and group norm
(``INormalizationLayer``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.spatial_conv import FLOAT_TYPES
from engine.network.shapes import axes_from_mask
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


class ILRNLayer(ILayer):
    """``y = x / (k + alpha / window * sum(x^2 over window channels)) ^ beta``: ``add_lrn``.

    The channel axis is the third from last (axis 1 of NCHW), as in TensorRT.
    """

    type = LayerType.LRN
    _attributes: ClassVar[tuple[str, ...]] = ("window_size", "alpha", "beta", "k")

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 window: int, alpha: float, beta: float, k: float) -> None:
        super().__init__(network, [input])
        self.window_size = int(window)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.k = float(k)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        if x.dtype not in FLOAT_TYPES:
            self.fail(f"input type {x.dtype.name} is not supported; expected FLOAT, HALF or BF16")
        if x.rank < 3:
            self.fail(f"input of shape {x.shape} needs at least 3 dimensions (channels, height, "
                      f"width)")
        # TensorRT's documented ranges for the parameters.
        if self.window_size not in range(1, 16, 2):
            self.fail(f"window_size {self.window_size} must be odd and in [1, 15]")
        if not -1e20 <= self.alpha <= 1e20:
            self.fail(f"alpha {self.alpha} must lie in [-1e20, 1e20]")
        if not 0.01 <= self.beta <= 1e5:
            self.fail(f"beta {self.beta} must lie in [0.01, 1e5]")
        if not 1e-5 <= self.k <= 1e10:
            self.fail(f"k {self.k} must lie in [1e-5, 1e10]")
        return [TensorInfo(x.shape, x.dtype)]


class INormalizationLayer(ILayer):
    """``y = (x - mean(x, axes)) / sqrt(var(x, axes) + epsilon) * scale + bias``:
    ``add_normalization``.

    Layer norm: ``axes`` the trailing axes, scale and bias of the input's rank with 1 outside
    ``axes``. Instance norm: ``axes`` the spatial axes, scale and bias ``[1, C, 1, ...]``.
    Group norm: ``num_groups`` G > 1 splits the channels (axis 1) into G groups, each
    normalized over its channels and ``axes`` (the spatial axes); scale and bias are
    ``[1, G, 1, ...]`` as TensorRT documents (``[1, C, 1, ...]`` is accepted as well).
    """

    type = LayerType.NORMALIZATION
    _attributes: ClassVar[tuple[str, ...]] = ("epsilon", "axes", "num_groups",
                                              "compute_precision")
    _max_inputs = 3

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 scale: ITensor, bias: ITensor, axes: int) -> None:
        super().__init__(network, [input, scale, bias])
        self.epsilon = 1e-5
        self.axes = int(axes)
        self.num_groups = 1
        self.compute_precision = DataType.FLOAT

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        x, scale, bias = self.require_inputs(inputs, 3)
        if x.dtype not in FLOAT_TYPES:
            self.fail(f"input type {x.dtype.name} is not supported; expected FLOAT, HALF or BF16")
        if DataType(self.compute_precision) not in FLOAT_TYPES:
            self.fail(f"compute_precision {DataType(self.compute_precision).name} must be "
                      f"FLOAT, HALF or BF16")
        try:
            axes = axes_from_mask(int(self.axes), x.rank)
        except ValueError as exc:
            self.fail(f"axes: {exc}")
        if not axes:
            self.fail("axes mask is empty: name at least one axis to normalize over")
        if not float(self.epsilon) > 0:
            self.fail(f"epsilon {self.epsilon} must be positive")
        groups = int(self.num_groups)
        channels = x.shape[1] if x.rank > 1 else -1
        if groups < 1:
            self.fail(f"num_groups {groups} must be positive")
        if groups > 1:
            if x.rank < 3:
                self.fail(f"group normalization needs an input of at least 3 dimensions "
                          f"[N, C, ...], got {x.shape}")
            if 0 in axes or 1 in axes:
                self.fail(f"group normalization normalizes within channel groups: axes "
                          f"{axes} must not include the batch or channel axis")
            if channels >= 0 and channels % groups:
                self.fail(f"input has {channels} channels, not divisible by num_groups "
                          f"{groups}")
        self._check_coefficients(x, scale, bias, strict=False)
        return [TensorInfo(x.shape, x.dtype)]

    def check_coefficients(self, inputs: list[TensorInfo | None]) -> bool:
        """Fail unless scale and bias fit the input and the final ``num_groups`` exactly."""
        x, scale, bias = self.require_inputs(inputs, 3)
        self._check_coefficients(x, scale, bias, strict=True)
        return True

    def _check_coefficients(self, x: TensorInfo, scale: TensorInfo, bias: TensorInfo,
                            strict: bool) -> None:
        groups = int(self.num_groups)
        for name, info in (("scale", scale), ("bias", bias)):
            if info.dtype not in FLOAT_TYPES:
                self.fail(f"{name} type {info.dtype.name} is not a float type")
            if info.rank != x.rank:
                self.fail(f"{name} of shape {info.shape} must have the rank of the input "
                          f"shape {x.shape}")
            for axis, (d, n) in enumerate(zip(info.shape, x.shape)):
                # Per-group coefficients [1, G, 1, ...]; num_groups is usually set after
                # add_normalization, so inference accepts any G dividing C, and
                # check_coefficients (run when a tactic is chosen) the final one only.
                grouped = axis == 1 and d > 0 and n >= 0 and n % d == 0 and (
                    d == groups or not strict)
                if d not in (1, -1) and n >= 0 and d != n and not grouped:
                    self.fail(f"{name} of shape {info.shape} does not broadcast to the input "
                              f"shape {x.shape} (axis {axis}; with num_groups {groups})")
