"""The grid sample layer (TensorRT's ``IGridSampleLayer``): an image read at the points of a
grid, as ONNX's ``GridSample`` and PyTorch's ``grid_sample`` on 2-D images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.math_types import FLOATS, require_dtype, require_same_dtype
from engine.network.layers.shape_slice import SampleMode
from engine.network.layers.spatial_resize import InterpolationMode

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor

# TensorRT's layer takes these three; WRAP and STRICT_BOUNDS are refused.
GRID_SAMPLE_MODES = (SampleMode.FILL, SampleMode.CLAMP, SampleMode.REFLECT)
_COERCE = {"interpolation_mode": InterpolationMode, "align_corners": bool,
           "sample_mode": SampleMode}


class IGridSampleLayer(ILayer):
    """Samples ``input`` [N, C, H, W] at the points of ``grid`` [N, H_out, W_out, 2]: output
    [N, C, H_out, W_out] of the input's type (FLOAT, HALF or BF16; the grid of the same type).

    A grid point holds normalized coordinates (x, y): -1 and 1 are the outer edges of the
    first and last pixels, or their centres with ``align_corners``. ``interpolation_mode``:
    NEAREST (halves round to even), LINEAR (the default) or CUBIC (Keys' kernel, a = -0.75).
    ``sample_mode`` says what points outside the image read: FILL zeros (the default), CLAMP
    the border pixels, REFLECT the image mirrored at its borders.

    >>> import engine as trt
    >>> network = trt.Builder(trt.Logger()).create_network(0)
    >>> x = network.add_input("x", trt.float32, (1, 3, 8, 8))
    >>> grid = network.add_input("grid", trt.float32, (1, 4, 5, 2))
    >>> layer = network.add_grid_sample(x, grid)
    >>> layer.sample_mode = trt.SampleMode.CLAMP
    >>> tuple(layer.get_output(0).shape)
    (1, 3, 4, 5)
    """

    type = LayerType.GRID_SAMPLE
    _attributes: ClassVar[tuple[str, ...]] = ("interpolation_mode", "align_corners",
                                              "sample_mode")
    _max_inputs = 2

    def __init__(self, network: INetworkDefinition, input: ITensor,  # noqa: A002
                 grid: ITensor) -> None:
        super().__init__(network, [input, grid])
        self.interpolation_mode = InterpolationMode.LINEAR
        self.align_corners = False
        self.sample_mode = SampleMode.FILL

    def __setattr__(self, key: str, value: Any) -> None:
        convert = _COERCE.get(key)
        super().__setattr__(key, value if convert is None else convert(value))

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        x, grid = self.require_inputs(inputs, 2)
        if self.sample_mode not in GRID_SAMPLE_MODES:
            self.fail(f"sample_mode {self.sample_mode.name} is not supported; grid sampling "
                      f"takes FILL, CLAMP or REFLECT")
        require_dtype(self, "input", x.dtype, FLOATS)
        require_same_dtype(self, ("input", "grid"), x.dtype, grid.dtype)
        if x.rank != 4:
            self.fail(f"input must be 4-D [N, C, H, W], got shape {x.shape}")
        if grid.rank != 4 or grid.shape[3] not in (2, -1):
            self.fail(f"grid must be 4-D [N, H_out, W_out, 2], got shape {grid.shape}")
        batch, grid_batch = x.shape[0], grid.shape[0]
        if min(batch, grid_batch) >= 0 and batch != grid_batch:
            self.fail(f"input has {batch} images but grid has {grid_batch}")
        shape = (max(batch, grid_batch), x.shape[1], grid.shape[1], grid.shape[2])
        return [TensorInfo(shape, x.dtype)]
