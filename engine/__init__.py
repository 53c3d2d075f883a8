"""An inference optimizer and runtime with TensorRT's programming model, in Python.

Use it as you would TensorRT::

    import engine as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (1, 3, 224, 224))
    ...
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    context = engine.create_execution_context()

The GPU target runs on CuPy; the CPU target runs on NumPy. ``import engine`` needs neither a GPU
nor CuPy.
"""

from __future__ import annotations

from engine.builder.builder import Builder, IHostMemory
from engine.builder.config import (
    BuilderFlag,
    DeviceType,
    EngineCapability,
    IBuilderConfig,
    MemoryPoolType,
    PreviewFeature,
    ProfilingVerbosity,
    QuantizationFlag,
    RuntimePlatform,
    TacticSource,
)
from engine.builder.profile import IOptimizationProfile
from engine.builder.progress import IProgressMonitor
from engine.builder.timing_cache import ITimingCache
from engine.error_recorder import ErrorCodeTRT, IErrorRecorder
from engine.errors import (
    BuildError,
    EngineError,
    ExecutionError,
    NetworkError,
    PlanError,
    UnsupportedError,
)
from engine.kernels.cpu import evaluate as _evaluate_on_cpu
from engine.logger import ILogger, Logger
from engine.network.definition import INetworkDefinition, NetworkDefinitionCreationFlag
from engine.network.inference import set_value_evaluator as _set_value_evaluator
from engine.network.layer import ILayer, LayerType
from engine.network.layers.basic import IConstantLayer, IIdentityLayer
from engine.network.layers.math import *  # noqa: F403 - each family lists its names in __all__
from engine.network.layers.math import __all__ as _math_all
from engine.network.layers.plugin import IPluginV3Layer
from engine.network.layers.shape import *  # noqa: F403
from engine.network.layers.shape import __all__ as _shape_all
from engine.network.layers.spatial import *  # noqa: F403
from engine.network.layers.spatial import __all__ as _spatial_all
from engine.network.tensor import ITensor
from engine.onnx import ErrorCode, OnnxParser, OnnxParserFlag, OnnxParserRefitter, ParserError
from engine.plan.compatibility import HardwareCompatibilityLevel, PlanInfo, inspect_plan
from engine.plugins import *  # noqa: F403 - the V3 plugin API
from engine.plugins import __all__ as _plugins_all
from engine.quantization import (
    CalibrationAlgoType,
    IInt8Calibrator,
    IInt8EntropyCalibrator,
    IInt8EntropyCalibrator2,
    IInt8LegacyCalibrator,
    IInt8MinMaxCalibrator,
)
from engine.runtime.context import IExecutionContext
from engine.runtime.engine import ICudaEngine
from engine.runtime.inspector import IEngineInspector, LayerInformationFormat
from engine.runtime.output_allocator import IOutputAllocator
from engine.runtime.profiler import IDebugListener, IProfiler
from engine.runtime.refit import Refitter, WeightsRole
from engine.runtime.runtime import Runtime, engine_from_plan
from engine.runtime.serialization import ISerializationConfig, SerializationFlag
from engine.runtime.stream_reader import IStreamReader, IStreamReaderV2, SeekPosition
from engine.types import (
    DataType,
    Dims,
    Dims2,
    Dims3,
    Dims4,
    DimsHW,
    TensorFormat,
    TensorIOMode,
    TensorLocation,
    Weights,
    nptype,
    pack_int4,
    unpack_int4,
    volume,
)
from engine.version import __version__

# Shape tensors are folded with the CPU kernels while a network is defined.
_set_value_evaluator(_evaluate_on_cpu)

# TensorRT's module-level aliases of DataType members.
float32 = DataType.FLOAT
float16 = DataType.HALF
bfloat16 = DataType.BF16
int8 = DataType.INT8
int32 = DataType.INT32
int64 = DataType.INT64
uint8 = DataType.UINT8
bool = DataType.BOOL  # noqa: A001 - TensorRT's name
fp8 = DataType.FP8
int4 = DataType.INT4

__all__ = [
    "bfloat16", "bool", "Builder", "BuilderFlag", "BuildError", "CalibrationAlgoType",
    "DataType", "DeviceType", "Dims", "Dims2", "Dims3", "Dims4", "DimsHW", "engine_from_plan",
    "EngineError", "ErrorCode", "ExecutionError", "float16", "float32", "fp8",
    "HardwareCompatibilityLevel", "IBuilderConfig", "IConstantLayer", "ICudaEngine",
    "IEngineInspector", "IExecutionContext", "IHostMemory", "IIdentityLayer", "IInt8Calibrator",
    "IInt8EntropyCalibrator", "IInt8EntropyCalibrator2", "IInt8LegacyCalibrator",
    "IInt8MinMaxCalibrator", "ILayer", "ILogger", "INetworkDefinition", "inspect_plan", "int32",
    "int4", "int64", "int8", "IOptimizationProfile", "IOutputAllocator", "IPluginV3Layer",
    "ISerializationConfig", "IStreamReader", "IStreamReaderV2", "SeekPosition",
    "EngineCapability", "PreviewFeature", "QuantizationFlag", "RuntimePlatform",
    "ErrorCodeTRT", "IErrorRecorder",
    "IDebugListener", "IProfiler", "IProgressMonitor", "ITensor", "ITimingCache",
    "LayerInformationFormat", "LayerType",
    "Logger", "MemoryPoolType", "NetworkDefinitionCreationFlag", "NetworkError", "nptype",
    "OnnxParser", "OnnxParserFlag", "OnnxParserRefitter", "pack_int4", "ParserError",
    "PlanError", "PlanInfo", "ProfilingVerbosity", "Refitter", "Runtime", "SerializationFlag",
    "TacticSource",
    "TensorFormat", "TensorIOMode", "TensorLocation", "uint8", "unpack_int4",
    "UnsupportedError", "volume", "Weights", "WeightsRole", "__version__",
    *_math_all, *_shape_all, *_spatial_all, *_plugins_all,
]
