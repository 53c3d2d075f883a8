"""The public API is pinned: removing or renaming a name must be a deliberate change here."""

import engine as trt

PUBLIC = {
    'ActivationType', 'BoundingBoxFormat', 'BuildError', 'Builder', 'BuilderFlag',
    'CalibrationAlgoType',
    'CumulativeOperation', 'DataType', 'DeviceType', 'DimensionOperation', 'Dims', 'Dims2',
    'Dims3', 'Dims4', 'DimsExprs', 'DimsHW', 'DynamicPluginTensorDesc',
    'ElementWiseOperation', 'EngineError', 'ErrorCode', 'ExecutionError', 'FillOperation',
    'GatherMode', 'HardwareCompatibilityLevel', 'IActivationLayer', 'IAssertionLayer',
    'IBuilderConfig', 'ICastLayer', 'IConcatenationLayer', 'IConstantLayer', 'IDebugListener',
    'IConvolutionLayer', 'ICudaEngine', 'ICumulativeLayer', 'IDeconvolutionLayer',
    'IDequantizeLayer', 'IDimensionExpr', 'IEinsumLayer', 'IElementWiseLayer',
    'IEngineInspector', 'IExecutionContext', 'IExprBuilder', 'IFillLayer', 'IGatherLayer',
    'IGridSampleLayer',
    'IHostMemory', 'IIdentityLayer', 'IInt8Calibrator', 'IInt8EntropyCalibrator',
    'IInt8EntropyCalibrator2', 'IInt8LegacyCalibrator', 'IInt8MinMaxCalibrator',
    'ILRNLayer', 'ILayer', 'ILogger', 'IMatrixMultiplyLayer', 'INMSLayer', 'INetworkDefinition',
    'INonZeroLayer', 'INormalizationLayer', 'IOneHotLayer', 'IOptimizationProfile',
    'IOutputAllocator', 'ISerializationConfig', 'IStreamReader', 'IStreamReaderV2',
    'IPaddingLayer', 'IParametricReLULayer', 'SeekPosition', 'EngineCapability',
    'PreviewFeature', 'QuantizationFlag', 'RuntimePlatform', 'ErrorCodeTRT', 'IErrorRecorder',
    'IPluginCapability',
    'IPluginCreatorInterface', 'IPluginCreatorV3One', 'IPluginRegistry',
    'IPluginResourceContext', 'IPluginV3', 'IPluginV3Layer', 'IPluginV3OneBuild',
    'IPluginV3OneCore', 'IPluginV3OneRuntime', 'IPoolingLayer', 'IProfiler', 'IProgressMonitor',
    'IQuantizeLayer', 'IReduceLayer', 'IResizeLayer', 'IReverseSequenceLayer', 'IScaleLayer',
    'IScatterLayer',
    'ISelectLayer', 'IShapeLayer', 'IShuffleLayer', 'ISliceLayer', 'ISoftMaxLayer',
    'ISqueezeLayer', 'ITensor', 'ITimingCache', 'ITopKLayer', 'IUnaryLayer',
    'IUnsqueezeLayer', 'InterpolationMode', 'LayerInformationFormat', 'LayerType', 'Logger',
    'MatrixOperation', 'MemoryPoolType', 'NetworkDefinitionCreationFlag', 'NetworkError',
    'OnnxParser', 'OnnxParserFlag', 'OnnxParserRefitter', 'PaddingMode', 'ParserError',
    'Permutation',
    'PlanError', 'PlanInfo', 'PluginCapabilityType', 'PluginField', 'PluginFieldCollection',
    'PluginFieldType', 'PluginTensorDesc', 'PoolingType', 'ProfilingVerbosity',
    'ReduceOperation', 'Refitter', 'SerializationFlag', 'ResizeCoordinateTransformation',
    'ResizeRoundMode',
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
            "assert not {'cupy', 'torch', 'nvmath'} & set(sys.modules); print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# Without nvmath-python (``import nvmath`` fails) the GPU kernels still import, the cuBLASLt
# tactic is registered under its tactic source, and it accepts nothing.
_WITHOUT_NVMATH = """
import sys
sys.modules["nvmath"] = None
import engine as trt
from engine.kernels.gpu import cublaslt
from engine.kernels.registry import get_tactic
from engine.network.layer import LayerType, TensorInfo
from engine.network.layers.fused import IFusedMatrixMultiplyLayer

fused = get_tactic("gpu", LayerType.FUSED_MATRIX_MULTIPLY, "gpu.fused_matmul_cublaslt")
plain = get_tactic("gpu", LayerType.MATRIX_MULTIPLY, "gpu.matmul_cublaslt")
assert fused.source == plain.source == "CUBLAS_LT"
network = trt.Builder(trt.Logger()).create_network(0)
x = network.add_input("x", trt.float32, (8, 16))
w = network.add_input("w", trt.float32, (16, 4))
layer = IFusedMatrixMultiplyLayer(network, x, trt.MatrixOperation.NONE, w,
                                  trt.MatrixOperation.NONE)
infos = [TensorInfo((8, 16), trt.float32), TensorInfo((16, 4), trt.float32)]
assert not cublaslt.available()
assert not fused.accepts(layer, infos)
print("ok")
"""


def test_gpu_kernels_import_without_nvmath():
    import importlib.util
    import subprocess
    import sys

    import pytest

    if importlib.util.find_spec("cupy") is None:
        pytest.skip("the GPU kernels need CuPy to import")
    result = subprocess.run([sys.executable, "-c", _WITHOUT_NVMATH], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
