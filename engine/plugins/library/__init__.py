"""The plugins shipped with the engine, registered in the plugin registry on import:
``EfficientNMS_TRT``, ``ROIAlign_TRT``, ``GroupNormalizationPlugin``, ``MultiHeadAttention``,
for ONNX ops TensorRT has no layer for: ``BitCast_TRT``, ``Col2Im_TRT``, ``DeformConv_TRT``,
``Determinant_TRT``, ``EmulatedCast_TRT``, and for ONNX nodes that ``IGridSampleLayer`` and
``INMSLayer`` do not serve: ``GridSample_TRT`` and ``NonMaxSuppression_TRT`` (all version
"1", empty namespace)."""

from engine.plugins.library import (  # noqa: F401
    attention,
    bit_cast,
    col2im,
    deform_conv,
    determinant,
    emulated_cast,
    grid_sample,
    group_norm,
    nms,
    onnx_nms,
    roi_align,
)
