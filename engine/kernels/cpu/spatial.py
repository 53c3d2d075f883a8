"""CPU kernels of the spatial layer family; each layer's kernel lives in its own module."""

from engine.kernels.cpu import (  # noqa: F401 - importing registers the kernels
    spatial_conv,
    spatial_grid_sample,
    spatial_nms,
    spatial_norm,
    spatial_padding,
    spatial_pooling,
    spatial_resize,
    spatial_scale,
)
