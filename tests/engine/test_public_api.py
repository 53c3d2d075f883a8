"""The public API is pinned: removing or renaming a name must be a deliberate change here."""

import engine as trt

PUBLIC = {
    'ActivationType', 'BuildError', 'Builder', 'BuilderFlag', 'CalibrationAlgoType',
    'CumulativeOperation', 'DataType', 'DeviceType', 'DimensionOperation', 'Dims', 'Dims2',
    'Dims3', 'Dims4', 'DimsExprs', 'DimsHW', 'DynamicPluginTensorDesc',
    'ElementWiseOperation', 'EngineError', 'ErrorCode', 'ExecutionError', 'FillOperation',
    'GatherMode', 'HardwareCompatibilityLevel', 'IActivationLayer', 'IAssertionLayer',
    'IBuilderConfig', 'ICastLayer', 'IConcatenationLayer', 'IConstantLayer',
    'IConvolutionLayer', 'ICudaEngine', 'ICumulativeLayer', 'IDeconvolutionLayer',
    'IDequantizeLayer', 'IDimensionExpr', 'IEinsumLayer', 'IElementWiseLayer',
    'IEngineInspector', 'IExecutionContext', 'IExprBuilder', 'IFillLayer', 'IGatherLayer',
    'IHostMemory', 'IIdentityLayer', 'IInt8Calibrator', 'IInt8EntropyCalibrator',
    'IInt8EntropyCalibrator2', 'IInt8LegacyCalibrator', 'IInt8MinMaxCalibrator',
    'ILRNLayer', 'ILayer', 'ILogger', 'IMatrixMultiplyLayer', 'INetworkDefinition',
    'INonZeroLayer', 'INormalizationLayer', 'IOneHotLayer', 'IOptimizationProfile',
    'IOutputAllocator', 'IPaddingLayer', 'IParametricReLULayer', 'IPluginCapability',
    'IPluginCreatorInterface', 'IPluginCreatorV3One', 'IPluginRegistry',
    'IPluginResourceContext', 'IPluginV3', 'IPluginV3Layer', 'IPluginV3OneBuild',
    'IPluginV3OneCore', 'IPluginV3OneRuntime', 'IPoolingLayer', 'IProgressMonitor',
    'IQuantizeLayer', 'IReduceLayer', 'IResizeLayer', 'IScaleLayer', 'IScatterLayer',
    'ISelectLayer', 'IShapeLayer', 'IShuffleLayer', 'ISliceLayer', 'ISoftMaxLayer',
    'ISqueezeLayer', 'ITensor', 'ITimingCache', 'ITopKLayer', 'IUnaryLayer',
    'IUnsqueezeLayer', 'InterpolationMode', 'LayerInformationFormat', 'LayerType', 'Logger',
    'MatrixOperation', 'MemoryPoolType', 'NetworkDefinitionCreationFlag', 'NetworkError',
    'OnnxParser', 'OnnxParserFlag', 'OnnxParserRefitter', 'PaddingMode', 'ParserError', 'Permutation',
    'PlanError', 'PlanInfo', 'PluginCapabilityType', 'PluginField', 'PluginFieldCollection',
    'PluginFieldType', 'PluginTensorDesc', 'PoolingType', 'ProfilingVerbosity',
    'ReduceOperation', 'Refitter', 'ResizeCoordinateTransformation', 'ResizeRoundMode',
    'ResizeSelector', 'Runtime', 'SampleMode', 'ScaleMode', 'ScatterMode',
    'ScatterReduction', 'TacticSource', 'TensorFormat', 'TensorIOMode', 'TensorLocation',
    'TensorRTPhase', 'TopKOperation', 'UnaryOperation', 'UnsupportedError', 'Weights',
    'WeightsRole', '__version__', 'bfloat16', 'bool', 'engine_from_plan',
    'find_plugin_creator', 'float16', 'float32', 'fp8', 'get_plugin_registry',
    'inspect_plan', 'int32', 'int4', 'int64', 'int8', 'nptype', 'pack_int4', 'uint8',
    'unpack_int4', 'volume',
}


def test_public_names_are_pinned():
    assert set(trt.__all__) == PUBLIC
    assert len(trt.__all__) == len(PUBLIC), "a name is listed twice in engine.__all__"


def test_every_public_name_resolves():
    for name in trt.__all__:
        assert getattr(trt, name) is not None, name


def test_import_needs_no_gpu_stack():
    import subprocess
    import sys

    code = ("import sys, engine; "
            "assert 'cupy' not in sys.modules and 'torch' not in sys.modules; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
