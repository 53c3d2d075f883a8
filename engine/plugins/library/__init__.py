"""The plugins shipped with the engine, registered in the plugin registry on import:
``EfficientNMS_TRT``, ``ROIAlign_TRT``, ``GroupNormalizationPlugin``, ``EmulatedCast_TRT`` and
``MultiHeadAttention`` (all version "1", empty namespace)."""

from engine.plugins.library import (  # noqa: F401
    attention,
    emulated_cast,
    group_norm,
    nms,
    roi_align,
)
