"""The plugins shipped with the engine, registered in the plugin registry on import:
``EfficientNMS_TRT``, ``ROIAlign_TRT``, ``GroupNormalizationPlugin`` and
``MultiHeadAttention`` (all version "1", empty namespace)."""

from engine.plugins.library import attention, group_norm, nms, roi_align  # noqa: F401
