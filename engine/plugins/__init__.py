"""Plugins: TensorRT's V3 plugin interfaces, the plugin registry, quick plugins written as
Python functions (``engine.plugin``), and the shipped plugin library (registered on import).

The parts::

    interfaces.py   IPluginV3, IPluginV3One{Core,Build,Runtime}, IPluginCreatorV3One,
                    PluginField(Collection), PluginFieldType, TensorRTPhase, tensor descs
    dimensions.py   IDimensionExpr, DimsExprs, IExprBuilder, DimensionOperation
    registry.py     IPluginRegistry, get_plugin_registry, find_plugin_creator
    quick.py        @register / @impl / op: plugins as plain functions
    execution.py    running a plugin layer on a backend
    build_phase.py  configure_plugin and plugin tactic timing in the builder
    library/        EfficientNMS_TRT, ROIAlign_TRT, GroupNormalizationPlugin, MultiHeadAttention
"""

from engine.plugins import library  # noqa: F401 - registers the shipped plugins
from engine.plugins.dimensions import DimensionOperation, DimsExprs, IDimensionExpr, IExprBuilder
from engine.plugins.interfaces import (
    DynamicPluginTensorDesc,
    IPluginCapability,
    IPluginCreatorInterface,
    IPluginCreatorV3One,
    IPluginResourceContext,
    IPluginV3,
    IPluginV3OneBuild,
    IPluginV3OneCore,
    IPluginV3OneRuntime,
    PluginCapabilityType,
    PluginField,
    PluginFieldCollection,
    PluginFieldType,
    PluginTensorDesc,
    TensorRTPhase,
)
from engine.plugins.registry import IPluginRegistry, find_plugin_creator, get_plugin_registry

__all__ = [
    "DimensionOperation", "DimsExprs", "DynamicPluginTensorDesc", "IDimensionExpr",
    "IExprBuilder", "IPluginCapability", "IPluginCreatorInterface", "IPluginCreatorV3One",
    "IPluginRegistry", "IPluginResourceContext", "IPluginV3", "IPluginV3OneBuild",
    "IPluginV3OneCore", "IPluginV3OneRuntime", "PluginCapabilityType", "PluginField",
    "PluginFieldCollection", "PluginFieldType", "PluginTensorDesc", "TensorRTPhase",
    "find_plugin_creator", "get_plugin_registry",
]
