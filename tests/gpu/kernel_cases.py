"""Test cases for the GPU kernel comparison: per layer type, small layers on random inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

import engine as trt
from engine.network.layer import ILayer, LayerType

RNG = np.random.default_rng(20261123)


def rand(*shape: int, dtype: type = np.float32) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return RNG.standard_normal(shape).astype(dtype)
    if np.dtype(dtype) == np.bool_:
        return RNG.integers(0, 2, shape).astype(bool)
    return RNG.integers(-5, 6, shape).astype(dtype) if np.dtype(dtype).kind == "i" \
        else RNG.integers(0, 11, shape).astype(dtype)


@dataclass
class KernelCase:
    name: str
    inputs: dict[str, np.ndarray]
    define: Callable[[trt.INetworkDefinition, dict[str, trt.ITensor]], ILayer]
    tolerance: dict[str, float] = field(default_factory=dict)


CASES: dict[LayerType, list[KernelCase]] = {}


def case(layer_type: LayerType, name: str, inputs: dict[str, np.ndarray],
         define: Callable[[trt.INetworkDefinition, dict[str, trt.ITensor]], ILayer],
         **tolerance: float) -> None:
    CASES.setdefault(layer_type, []).append(KernelCase(name, inputs, define, tolerance))


# -- basic ------------------------------------------------------------------------------------
for dtype in (np.float32, np.float16, np.int32, np.int64, np.bool_):
    case(LayerType.IDENTITY, f"identity-{np.dtype(dtype).name}", {"x": rand(2, 3, 4, dtype=dtype)},
         lambda net, t: net.add_identity(t["x"]))


def _identity_to_half(net, t):
    layer = net.add_identity(t["x"])
    layer.set_output_type(0, trt.float16)
    return layer


case(LayerType.IDENTITY, "identity-cast-f16", {"x": rand(5, 7)}, _identity_to_half)
case(LayerType.CONSTANT, "constant-f32", {},
     lambda net, t: net.add_constant((3, 4), rand(3, 4)))
case(LayerType.CONSTANT, "constant-i64", {},
     lambda net, t: net.add_constant((6,), rand(6, dtype=np.int64)))


# -- math -------------------------------------------------------------------------------------
if hasattr(trt, "ElementWiseOperation"):
    for op in trt.ElementWiseOperation:
        if op.name in ("AND", "OR", "XOR"):
            pair = {"a": rand(3, 4, dtype=np.bool_), "b": rand(1, 4, dtype=np.bool_)}
        elif op.name == "POW":
            pair = {"a": np.abs(rand(3, 4)) + 0.5, "b": rand(1, 4)}
        else:
            pair = {"a": rand(3, 4), "b": rand(1, 4)}
        case(LayerType.ELEMENTWISE, f"elementwise-{op.name}", pair,
             lambda net, t, op=op: net.add_elementwise(t["a"], t["b"], op))
    for op in ("SUM", "SUB", "PROD", "DIV", "FLOOR_DIV", "MAX", "MIN", "EQUAL", "LESS"):
        divisor = rand(2, 1, 5, dtype=np.int32)
        divisor[divisor == 0] = 3
        case(LayerType.ELEMENTWISE, f"elementwise-{op}-int32",
             {"a": rand(2, 3, 5, dtype=np.int32), "b": divisor},
             lambda net, t, op=op: net.add_elementwise(t["a"], t["b"],
                                                       trt.ElementWiseOperation[op]))
    case(LayerType.ELEMENTWISE, "elementwise-SUM-f16",
         {"a": rand(4, 8, dtype=np.float16), "b": rand(4, 8, dtype=np.float16)},
         lambda net, t: net.add_elementwise(t["a"], t["b"], trt.ElementWiseOperation.SUM))

if hasattr(trt, "ActivationType"):
    for kind in trt.ActivationType:
        for dtype in (np.float32, np.float16):
            def _act(net, t, kind=kind):
                layer = net.add_activation(t["x"], kind)
                layer.alpha, layer.beta = 0.3, 0.7
                return layer
            case(LayerType.ACTIVATION, f"activation-{kind.name}-{np.dtype(dtype).name}",
                 {"x": rand(4, 33, dtype=dtype)}, _act)

if hasattr(trt, "UnaryOperation"):
    for op in trt.UnaryOperation:
        if op.name == "NOT":
            x = rand(3, 5, dtype=np.bool_)
        elif op.name in ("LOG", "SQRT", "ACOSH"):
            x = np.abs(rand(3, 5)) + 1.1
        elif op.name in ("ASIN", "ACOS", "ATANH"):
            x = np.clip(rand(3, 5), -0.9, 0.9).astype(np.float32)
        else:
            x = rand(3, 5)
        case(LayerType.UNARY, f"unary-{op.name}", {"x": x},
             lambda net, t, op=op: net.add_unary(t["x"], op))
    case(LayerType.UNARY, "unary-ABS-int32", {"x": rand(3, 5, dtype=np.int32)},
         lambda net, t: net.add_unary(t["x"], trt.UnaryOperation.ABS))

if hasattr(trt, "MatrixOperation"):
    M = trt.MatrixOperation
    for name, a, op0, b, op1 in [
        ("NN", rand(8, 16), M.NONE, rand(16, 24), M.NONE),
        ("TN-batched", rand(3, 16, 8), M.TRANSPOSE, rand(3, 16, 24), M.NONE),
        ("NT-broadcast", rand(3, 8, 16), M.NONE, rand(1, 24, 16), M.TRANSPOSE),
        ("VN", rand(2, 16), M.VECTOR, rand(2, 16, 5), M.NONE),
        ("NV", rand(2, 7, 16), M.NONE, rand(2, 16), M.VECTOR),
        ("VV", rand(16), M.VECTOR, rand(16), M.VECTOR),
        ("f16", rand(32, 64, dtype=np.float16), M.NONE, rand(64, 16, dtype=np.float16), M.NONE),
    ]:
        case(LayerType.MATRIX_MULTIPLY, f"matmul-{name}", {"a": a, "b": b},
             lambda net, t, op0=op0, op1=op1: net.add_matrix_multiply(t["a"], op0, t["b"], op1),
             float32=1e-4)
    case(LayerType.CAST, "cast-f32-to-i32", {"x": rand(4, 5) * 10},
         lambda net, t: net.add_cast(t["x"], trt.int32))
    case(LayerType.CAST, "cast-f32-to-f16", {"x": rand(4, 5)},
         lambda net, t: net.add_cast(t["x"], trt.float16))
    case(LayerType.CAST, "cast-i32-to-bool", {"x": rand(4, 5, dtype=np.int32)},
         lambda net, t: net.add_cast(t["x"], trt.bool))
    # BF16 as its patterns, compared exactly (round to nearest even, widening exact)
    case(LayerType.CAST, "cast-f32-to-bf16", {"x": rand(4, 5)},
         lambda net, t: net.add_cast(t["x"], trt.DataType.BF16))
    case(LayerType.CAST, "cast-bf16-to-f32", {"x": rand(4, 5).astype(ml_dtypes.bfloat16)},
         lambda net, t: net.add_cast(t["x"], trt.DataType.FLOAT))
    case(LayerType.SELECT, "select",
         {"c": rand(3, 4, dtype=np.bool_), "a": rand(3, 4), "b": rand(1, 4)},
         lambda net, t: net.add_select(t["c"], t["a"], t["b"]))
    case(LayerType.PARAMETRIC_RELU, "prelu", {"x": rand(2, 3, 4), "s": rand(1, 3, 1)},
         lambda net, t: net.add_parametric_relu(t["x"], t["s"]))

if hasattr(trt, "ReduceOperation"):
    for op in trt.ReduceOperation:
        for axes, keep in ((0b010, True), (0b101, False)):
            case(LayerType.REDUCE, f"reduce-{op.name}-{axes:b}-{keep}", {"x": rand(3, 4, 5)},
                 lambda net, t, op=op, axes=axes, keep=keep: net.add_reduce(t["x"], op, axes, keep),
                 float32=1e-5)
    case(LayerType.REDUCE, "reduce-SUM-int32", {"x": rand(3, 4, dtype=np.int32)},
         lambda net, t: net.add_reduce(t["x"], trt.ReduceOperation.SUM, 0b10, False))

    def _softmax(axis):
        def define(net, t):
            layer = net.add_softmax(t["x"])
            layer.axes = 1 << axis
            return layer
        return define

    for axis in (0, 1, 2):
        case(LayerType.SOFTMAX, f"softmax-axis{axis}", {"x": rand(3, 4, 5)}, _softmax(axis))
    case(LayerType.SOFTMAX, "softmax-f16", {"x": rand(2, 3, 16, dtype=np.float16)}, _softmax(2))
    case(LayerType.SOFTMAX, "softmax-long-rows", {"x": rand(3, 1000) * 4}, _softmax(1),
         float32=1e-5)
    case(LayerType.SOFTMAX, "softmax-block-rows", {"x": rand(3, 2, 2000) * 4}, _softmax(2),
         float32=1e-5)


# -- shape ------------------------------------------------------------------------------------
if hasattr(trt, "IShuffleLayer"):
    def _shuffle(first, dims, second):
        def define(net, t):
            layer = net.add_shuffle(t["x"])
            layer.first_transpose = first
            if dims is not None:
                layer.reshape_dims = dims
            layer.second_transpose = second
            return layer
        return define

    case(LayerType.SHUFFLE, "shuffle-transpose", {"x": rand(2, 3, 4)},
         _shuffle((2, 0, 1), None, (0, 1, 2)))
    case(LayerType.SHUFFLE, "shuffle-transpose-last-two-swapped",  # k^T: a swapped view
         {"x": rand(2, 3, 4, 8, dtype=np.float16)}, _shuffle((0, 2, 3, 1), None, (0, 1, 2, 3)))
    case(LayerType.SHUFFLE, "shuffle-reshape", {"x": rand(2, 3, 4)},
         _shuffle((0, 1, 2), (0, -1), (0, 1)))
    case(LayerType.SHUFFLE, "shuffle-all", {"x": rand(2, 3, 4, dtype=np.int64)},
         _shuffle((1, 0, 2), (3, 8), (1, 0)))

    def _concat(net, t):
        layer = net.add_concatenation([t["a"], t["b"]])
        layer.axis = 1
        return layer

    case(LayerType.CONCATENATION, "concat-axis1", {"a": rand(2, 3, 4), "b": rand(2, 5, 4)}, _concat)
    case(LayerType.SLICE, "slice-strided", {"x": rand(5, 6, 7)},
         lambda net, t: net.add_slice(t["x"], (1, 0, 6), (2, 3, 3), (2, 2, -3)))

    def _slice_mode(mode):
        def define(net, t):
            layer = net.add_slice(t["x"], (-2, 1), (6, 4), (1, 2))
            layer.mode = mode
            return layer
        return define

    for mode in ("WRAP", "CLAMP", "FILL", "REFLECT"):
        case(LayerType.SLICE, f"slice-{mode}", {"x": rand(4, 5)},
             _slice_mode(getattr(trt.SampleMode, mode)))
    case(LayerType.GATHER, "gather-axis1",
         {"x": rand(3, 5, 2), "i": np.array([[4, 0], [-1, 2]], np.int32)},
         lambda net, t: net.add_gather(t["x"], t["i"], 1))

    def _gather_elements(net, t):
        layer = net.add_gather_v2(t["x"], t["i"], trt.GatherMode.ELEMENT)
        layer.axis = 1
        return layer

    case(LayerType.GATHER, "gather-element",
         {"x": rand(3, 5), "i": RNG.integers(-5, 5, (3, 4)).astype(np.int64)}, _gather_elements)

    def _squeeze(net, t):
        axes = net.add_constant((2,), np.array([0, 2], np.int64)).get_output(0)
        return net.add_squeeze(t["x"], axes)

    def _unsqueeze(net, t):
        axes = net.add_constant((2,), np.array([0, -1], np.int64)).get_output(0)
        return net.add_unsqueeze(t["x"], axes)

    case(LayerType.SQUEEZE, "squeeze", {"x": rand(1, 3, 1, 4)}, _squeeze)
    case(LayerType.UNSQUEEZE, "unsqueeze", {"x": rand(3, 4)}, _unsqueeze)
    case(LayerType.SHAPE, "shape", {"x": rand(3, 4)}, lambda net, t: net.add_shape(t["x"]))


# -- spatial ----------------------------------------------------------------------------------
if hasattr(trt, "PoolingType"):
    def _conv(maps, kernel, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
              mode=None, channels=4):
        w = rand(maps, channels // groups, *kernel)
        b = rand(maps)

        def define(net, t):
            layer = net.add_convolution_nd(t["x"], maps, kernel, rand(maps, channels, *kernel), b)
            layer.stride_nd, layer.padding_nd = stride, padding
            layer.dilation_nd, layer.num_groups, layer.kernel = dilation, groups, trt.Weights(w)
            if mode is not None:
                layer.padding_mode = mode
            return layer
        return define

    for name, define in [
        ("3x3", _conv(8, (3, 3), padding=(1, 1))),
        ("3x3-stride2-dilated", _conv(6, (3, 3), stride=(2, 2), dilation=(2, 2))),
        ("grouped", _conv(8, (3, 3), groups=2, padding=(1, 1))),
        ("depthwise", _conv(4, (3, 3), groups=4, padding=(1, 1))),
        ("1x1", _conv(16, (1, 1))),
        ("same-upper", _conv(5, (4, 4), stride=(2, 2), mode=trt.PaddingMode.SAME_UPPER)),
        ("round-up", _conv(5, (3, 3), stride=(2, 2), mode=trt.PaddingMode.EXPLICIT_ROUND_UP)),
    ]:
        case(LayerType.CONVOLUTION, f"conv-{name}", {"x": rand(2, 4, 9, 10)}, define,
             float32=1e-4)
    case(LayerType.CONVOLUTION, "conv-3d", {"x": rand(1, 4, 5, 6, 7)},
         _conv(3, (3, 3, 3), stride=(1, 1, 1), padding=(1, 1, 1), dilation=(1, 1, 1)),
         float32=1e-4)
    case(LayerType.CONVOLUTION, "conv-1x1-f16", {"x": rand(2, 4, 6, 6, dtype=np.float16)},
         lambda net, t: net.add_convolution_nd(t["x"], 8, (1, 1), rand(8, 4, 1, 1), rand(8)))

    def _deconv(maps, kernel, channels=4, stride=None, padding=None, dilation=None, groups=1,
                bias=True):
        w = rand(channels, maps // groups, *kernel)
        b = rand(maps) if bias else None

        def define(net, t):
            layer = net.add_deconvolution_nd(t["x"], maps, kernel, w, b)
            layer.num_groups = groups
            if stride is not None:
                layer.stride_nd = stride
            if padding is not None:
                layer.padding_nd = padding
            if dilation is not None:
                layer.dilation_nd = dilation
            return layer
        return define

    case(LayerType.DECONVOLUTION, "deconv-2x2-stride2", {"x": rand(2, 4, 5, 6)},
         _deconv(6, (2, 2), stride=(2, 2)), float32=1e-4)
    case(LayerType.DECONVOLUTION, "deconv-3x3-stride2-pad1-grouped", {"x": rand(1, 4, 5, 5)},
         _deconv(6, (3, 3), stride=(2, 2), padding=(1, 1), groups=2), float32=1e-4)
    case(LayerType.DECONVOLUTION, "deconv-3x3-dilated-no-bias", {"x": rand(2, 4, 4, 7)},
         _deconv(3, (3, 3), dilation=(2, 1), bias=False), float32=1e-4)
    case(LayerType.DECONVOLUTION, "deconv-4x4-stride2-f16",
         {"x": rand(2, 4, 6, 6, dtype=np.float16)},
         _deconv(8, (4, 4), stride=(2, 2), padding=(1, 1)))
    case(LayerType.LRN, "lrn-5", {"x": rand(2, 7, 4, 5)},
         lambda net, t: net.add_lrn(t["x"], 5, 1e-2, 0.75, 2.0), float32=1e-5)
    case(LayerType.LRN, "lrn-3-f16", {"x": rand(1, 6, 3, 3, dtype=np.float16)},
         lambda net, t: net.add_lrn(t["x"], 3, 0.5, 0.6, 1.0))

    def _pool(kind, window, stride, padding=(0, 0), exclude=True, mode=None, blend=0.0):
        def define(net, t):
            layer = net.add_pooling_nd(t["x"], kind, window)
            layer.stride_nd, layer.padding_nd = stride, padding
            layer.average_count_excludes_padding = exclude
            layer.blend_factor = blend
            if mode is not None:
                layer.padding_mode = mode
            return layer
        return define

    P = trt.PoolingType
    for name, define in [
        ("max-2x2", _pool(P.MAX, (2, 2), (2, 2))),
        ("max-3x3-pad", _pool(P.MAX, (3, 3), (2, 2), (1, 1))),
        ("avg-3x3-excl", _pool(P.AVERAGE, (3, 3), (1, 1), (1, 1))),
        ("avg-3x3-incl", _pool(P.AVERAGE, (3, 3), (2, 2), (1, 1), exclude=False)),
        ("avg-round-up", _pool(P.AVERAGE, (2, 2), (2, 2),
                               mode=trt.PaddingMode.EXPLICIT_ROUND_UP)),
        ("avg-round-up-incl-pad", _pool(P.AVERAGE, (3, 3), (2, 2), (1, 1), exclude=False,
                                        mode=trt.PaddingMode.EXPLICIT_ROUND_UP)),
        ("blend", _pool(P.MAX_AVERAGE_BLEND, (2, 2), (1, 1), blend=0.25)),
    ]:
        case(LayerType.POOLING, f"pool-{name}", {"x": rand(2, 3, 7, 9)}, define)
    case(LayerType.POOLING, "pool-max-3x3-pad-f16", {"x": rand(2, 8, 9, 9, dtype=np.float16)},
         _pool(P.MAX, (3, 3), (2, 2), (1, 1)))


# -- fused layers (the builder's passes create them; the cases make them directly) ------------
if hasattr(trt, "PoolingType"):
    from engine.network.layers.fused import IFusedConvolutionLayer, IFusedMatrixMultiplyLayer
    from engine.network.layers.fused_attention import (
        IFusedAttentionLayer,
        IFusedRMSNormalizationLayer,
    )
    from engine.network.layers.fused_pointwise import IFusedPointwiseLayer

    def _fused_conv(maps, kernel, activation, residual=False, padding=(0, 0), stride=(1, 1),
                    groups=1, channels=4):
        w, b = rand(maps, channels // groups, *kernel), rand(maps)

        def define(net, t):
            conv = net.add_convolution_nd(t["x"], maps, kernel, w, b)
            conv.padding_nd, conv.stride_nd, conv.num_groups = padding, stride, groups
            return IFusedConvolutionLayer.from_convolution(
                conv, t["r"] if residual else None, activation, 0.1, 0.0)
        return define

    A = trt.ActivationType
    case(LayerType.FUSED_CONVOLUTION, "fused-conv-3x3-relu", {"x": rand(2, 4, 9, 10)},
         _fused_conv(8, (3, 3), A.RELU, padding=(1, 1)), float32=1e-4)
    case(LayerType.FUSED_CONVOLUTION, "fused-conv-1x1-residual-relu",
         {"x": rand(2, 4, 6, 7), "r": rand(2, 16, 6, 7)},
         _fused_conv(16, (1, 1), A.RELU, residual=True), float32=1e-4)
    case(LayerType.FUSED_CONVOLUTION, "fused-conv-strided-residual",
         {"x": rand(2, 4, 9, 9), "r": rand(2, 6, 4, 4)},
         _fused_conv(6, (3, 3), None, residual=True, stride=(2, 2)), float32=1e-4)
    case(LayerType.FUSED_CONVOLUTION, "fused-conv-grouped-leaky",
         {"x": rand(2, 4, 7, 7)},
         _fused_conv(8, (3, 3), A.LEAKY_RELU, padding=(1, 1), groups=2), float32=1e-4)
    case(LayerType.FUSED_CONVOLUTION, "fused-conv-7x7-s2-residual-sigmoid",
         {"x": rand(2, 3, 13, 11), "r": rand(2, 17, 7, 6)},
         _fused_conv(17, (7, 7), A.SIGMOID, residual=True, padding=(3, 3), stride=(2, 2),
                     channels=3), float32=1e-4)
    case(LayerType.FUSED_CONVOLUTION, "fused-conv-3x3-relu-f16",
         {"x": rand(2, 4, 9, 10, dtype=np.float16)},
         _fused_conv(8, (3, 3), A.RELU, padding=(1, 1)), float16=3e-2)

    def _fused_matmul(op1, activation, bias_shape):
        def define(net, t):
            bias = None
            if bias_shape is not None:
                dtype = t["a"].dtype
                values = rand(*bias_shape).astype(np.float16 if dtype == trt.float16
                                                  else np.float32)
                bias = net.add_constant(bias_shape, values).get_output(0)
            layer = IFusedMatrixMultiplyLayer(net, t["a"], trt.MatrixOperation.NONE, t["b"],
                                              op1, bias)
            layer.activation = activation
            return layer
        return define

    M = trt.MatrixOperation
    case(LayerType.FUSED_MATRIX_MULTIPLY, "fused-matmul-bias-gelu",
         {"a": rand(2, 5, 8), "b": rand(1, 8, 6)}, _fused_matmul(M.NONE, A.GELU_ERF, (1, 1, 6)),
         float32=1e-4)
    case(LayerType.FUSED_MATRIX_MULTIPLY, "fused-matmul-transposed-relu",
         {"a": rand(3, 4, 8), "b": rand(3, 6, 8)}, _fused_matmul(M.TRANSPOSE, A.RELU, None),
         float32=1e-4)
    case(LayerType.FUSED_MATRIX_MULTIPLY, "fused-matmul-bias-gelu-f16",
         {"a": rand(3, 7, 32, dtype=np.float16), "b": rand(32, 24, dtype=np.float16)},
         _fused_matmul(M.NONE, A.GELU_ERF, (1, 1, 24)), float16=3e-2)
    case(LayerType.FUSED_CONVOLUTION, "fused-conv-1x1-residual-relu-f16",
         {"x": rand(2, 4, 6, 8, dtype=np.float16), "r": rand(2, 16, 6, 8, dtype=np.float16)},
         _fused_conv(16, (1, 1), A.RELU, residual=True), float16=3e-2)
    case(LayerType.FUSED_MATRIX_MULTIPLY, "fused-matmul-bias-f16",
         {"a": rand(4, 32, dtype=np.float16), "b": rand(32, 16, dtype=np.float16)},
         _fused_matmul(M.NONE, None, (1, 16)), float16=3e-2)
    # GELU_TANH is cuBLASLt's GELU epilogue, whose tanh may be the fast approximate one.
    case(LayerType.FUSED_MATRIX_MULTIPLY, "fused-matmul-transposed-bias-gelu-tanh",
         {"a": rand(2, 5, 8), "b": rand(1, 6, 8)},
         _fused_matmul(M.TRANSPOSE, A.GELU_TANH, (1, 1, 6)), float32=2e-3)

    def _fused_matmul_residual_relu(net, t):
        layer = IFusedMatrixMultiplyLayer(net, t["a"], M.NONE, t["b"], M.NONE)
        layer._inputs = [t["a"], t["b"], None, t["r"]]
        layer.activation = A.RELU
        return layer

    case(LayerType.FUSED_MATRIX_MULTIPLY, "fused-matmul-residual-relu",
         {"a": rand(7, 16), "b": rand(16, 12), "r": rand(7, 12)}, _fused_matmul_residual_relu,
         float32=1e-4)

    def _program(*steps):
        def define(net, t):
            return IFusedPointwiseLayer(net, [t[name] for name in sorted(t)], steps)
        return define

    case(LayerType.FUSED_POINTWISE, "fused-pointwise-mul-add-relu-exp",
         {"a": rand(3, 4), "b": rand(1, 4), "c": rand(3, 1)},
         _program(("elementwise", "PROD", 0, 1), ("elementwise", "SUM", 3, 2),
                  ("activation", "RELU", 4, 0.0, 0.0), ("unary", "EXP", 5)))
    case(LayerType.FUSED_POINTWISE, "fused-pointwise-gelu-tanh-f16",
         {"a": rand(4, 8, dtype=np.float16), "b": rand(4, 8, dtype=np.float16)},
         _program(("elementwise", "SUM", 0, 1), ("activation", "GELU_TANH", 2, 0.0, 0.0),
                  ("unary", "ABS", 3)))
    divisor = rand(2, 5, dtype=np.int32)
    divisor[divisor == 0] = 2
    case(LayerType.FUSED_POINTWISE, "fused-pointwise-int-floor-div-cast",
         {"a": rand(2, 5, dtype=np.int32), "b": divisor},
         _program(("elementwise", "FLOOR_DIV", 0, 1), ("elementwise", "SUB", 2, 1),
                  ("cast", "FLOAT", 3), ("unary", "SQRT", 4)))
    case(LayerType.FUSED_POINTWISE, "fused-pointwise-compare-and",
         {"a": rand(3, 5), "b": rand(3, 5)},
         _program(("elementwise", "GREATER", 0, 1), ("unary", "NEG", 0),
                  ("elementwise", "LESS", 3, 1), ("elementwise", "AND", 2, 4)))

    case(LayerType.FUSED_RMS_NORMALIZATION, "fused-rms-norm",
         {"x": rand(2, 5, 16), "g": rand(1, 1, 16)},
         lambda net, t: IFusedRMSNormalizationLayer(net, t["x"], t["g"], 1 << 2, 1e-5),
         float32=1e-5)
    case(LayerType.FUSED_RMS_NORMALIZATION, "fused-rms-norm-f16",
         {"x": rand(3, 64, dtype=np.float16), "g": rand(1, 64, dtype=np.float16)},
         lambda net, t: IFusedRMSNormalizationLayer(net, t["x"], t["g"], 1 << 1, 1e-5))
    case(LayerType.FUSED_ATTENTION, "fused-attention-mask",
         {"q": rand(2, 3, 8, 16), "k": rand(2, 3, 8, 16), "v": rand(2, 3, 8, 16),
          "m": rand(2, 1, 1, 8)},
         lambda net, t: IFusedAttentionLayer(net, t["q"], t["k"], t["v"], t["m"], 0.25, True),
         float32=1e-5)
    case(LayerType.FUSED_ATTENTION, "fused-attention-f16-mask",
         {"q": rand(2, 4, 32, 16, dtype=np.float16), "k": rand(2, 4, 32, 16, dtype=np.float16),
          "v": rand(2, 4, 32, 16, dtype=np.float16), "m": rand(1, 4, 32, 32, dtype=np.float16)},
         lambda net, t: IFusedAttentionLayer(net, t["q"], t["k"], t["v"], t["m"], 0.25, True))
    case(LayerType.FUSED_ATTENTION, "fused-attention-f16",
         {"q": rand(2, 4, 32, 16, dtype=np.float16), "k": rand(2, 4, 16, 32, dtype=np.float16),
          "v": rand(2, 4, 32, 16, dtype=np.float16)},
         lambda net, t: IFusedAttentionLayer(net, t["q"], t["k"], t["v"], None, 0.25, False))
    # Sequence-major: q, k, v and the output [B, S, H, D]; the mask in score layout.
    case(LayerType.FUSED_ATTENTION, "fused-attention-sequence-major-mask",
         {"q": rand(2, 8, 3, 16), "k": rand(2, 10, 3, 16), "v": rand(2, 10, 3, 16),
          "m": rand(2, 1, 1, 10)},
         lambda net, t: IFusedAttentionLayer(net, t["q"], t["k"], t["v"], t["m"], 0.25, True,
                                             sequence_major=True),
         float32=1e-5)
    case(LayerType.FUSED_ATTENTION, "fused-attention-sequence-major-f16-mask",
         {"q": rand(2, 32, 4, 16, dtype=np.float16), "k": rand(2, 32, 4, 16, dtype=np.float16),
          "v": rand(2, 32, 4, 16, dtype=np.float16), "m": rand(1, 4, 32, 32, dtype=np.float16)},
         lambda net, t: IFusedAttentionLayer(net, t["q"], t["k"], t["v"], t["m"], 0.25, True,
                                             sequence_major=True))


# -- normalization, resize, padding, scale ---------------------------------------------------
if hasattr(trt, "PoolingType"):
    def _normalization(axes, groups=1):
        def define(net, t):
            layer = net.add_normalization(t["x"], t["g"], t["b"], axes)
            layer.num_groups = groups
            return layer
        return define

    case(LayerType.NORMALIZATION, "layer-norm",
         {"x": rand(2, 5, 16), "g": rand(1, 1, 16), "b": rand(1, 1, 16)},
         _normalization(1 << 2), float32=1e-4)
    case(LayerType.NORMALIZATION, "layer-norm-f16",
         {"x": rand(4, 64, dtype=np.float16), "g": rand(1, 64, dtype=np.float16),
          "b": rand(1, 64, dtype=np.float16)}, _normalization(1 << 1), float16=3e-2)
    case(LayerType.NORMALIZATION, "layer-norm-768-f16",
         {"x": rand(2, 3, 768, dtype=np.float16), "g": rand(1, 1, 768, dtype=np.float16),
          "b": rand(1, 1, 768, dtype=np.float16)}, _normalization(1 << 2), float16=3e-2)
    case(LayerType.NORMALIZATION, "layer-norm-70-f16",  # not a multiple of 4 columns
         {"x": rand(3, 70, dtype=np.float16), "g": rand(1, 70, dtype=np.float16),
          "b": rand(1, 70, dtype=np.float16)}, _normalization(1 << 1), float16=3e-2)
    case(LayerType.NORMALIZATION, "layer-norm-block-rows",
         {"x": rand(3, 1500), "g": rand(1, 1500), "b": rand(1, 1500)}, _normalization(1 << 1),
         float32=1e-4)
    case(LayerType.NORMALIZATION, "layer-norm-scalar-coefficients",
         {"x": rand(5, 40) + 3, "g": rand(1, 1), "b": rand(1, 1)}, _normalization(1 << 1),
         float32=1e-4)
    case(LayerType.NORMALIZATION, "instance-norm",
         {"x": rand(2, 4, 5, 6), "g": rand(1, 4, 1, 1), "b": rand(1, 4, 1, 1)},
         _normalization(0b1100), float32=1e-4)
    case(LayerType.NORMALIZATION, "group-norm",
         {"x": rand(2, 4, 5, 6), "g": rand(1, 4, 1, 1), "b": rand(1, 4, 1, 1)},
         _normalization(0b1100, groups=2), float32=1e-4)

    def _resize(mode, shape):
        def define(net, t):
            layer = net.add_resize(t["x"])
            layer.shape = shape
            layer.resize_mode = mode
            return layer
        return define

    case(LayerType.RESIZE, "resize-nearest", {"x": rand(1, 2, 4, 5)},
         _resize(trt.InterpolationMode.NEAREST, (1, 2, 8, 10)))
    case(LayerType.RESIZE, "resize-linear", {"x": rand(1, 2, 4, 5)},
         _resize(trt.InterpolationMode.LINEAR, (1, 2, 7, 3)), float32=1e-5)
    case(LayerType.PADDING, "padding", {"x": rand(2, 3, 4, 5)},
         lambda net, t: net.add_padding_nd(t["x"], (1, -1), (2, 0)))
    case(LayerType.SCALE, "scale-channel", {"x": rand(2, 3, 4, 5)},
         lambda net, t: net.add_scale(t["x"], trt.ScaleMode.CHANNEL, rand(3), rand(3), None))
    case(LayerType.SCALE, "scale-uniform-power", {"x": np.abs(rand(2, 3, 4, 2)) + 0.5},
         lambda net, t: net.add_scale(t["x"], trt.ScaleMode.UNIFORM,
                                      np.array([0.5], np.float32), np.array([2.0], np.float32),
                                      np.array([1.5], np.float32)))


# -- grid sample, non-maximum suppression, reverse sequence -----------------------------------
if hasattr(trt, "IGridSampleLayer"):
    def _grid_sample(mode, sample_mode, align_corners):
        def define(net, t):
            layer = net.add_grid_sample(t["x"], t["grid"])
            layer.interpolation_mode, layer.sample_mode = mode, sample_mode
            layer.align_corners = align_corners
            return layer
        return define

    for mode in trt.InterpolationMode:
        for sample_mode in (trt.SampleMode.FILL, trt.SampleMode.CLAMP, trt.SampleMode.REFLECT):
            case(LayerType.GRID_SAMPLE, f"grid-sample-{mode.name}-{sample_mode.name}",
                 {"x": rand(2, 3, 5, 6),
                  "grid": RNG.uniform(-1.3, 1.3, (2, 4, 3, 2)).astype(np.float32)},
                 _grid_sample(mode, sample_mode, sample_mode == trt.SampleMode.CLAMP),
                 float32=1e-5)
    case(LayerType.GRID_SAMPLE, "grid-sample-f16",
         {"x": rand(1, 2, 6, 6, dtype=np.float16),
          "grid": RNG.uniform(-1.1, 1.1, (1, 5, 5, 2)).astype(np.float16)},
         _grid_sample(trt.InterpolationMode.LINEAR, trt.SampleMode.FILL, False))

    def _boxes(*lead: int, dtype: type = np.float32) -> np.ndarray:
        xy = RNG.uniform(0, 30, lead + (2,))
        return np.concatenate([xy, xy + RNG.uniform(2, 10, lead + (2,))], -1).astype(dtype)

    def _nms(limit, iou=None, score=None, fmt=trt.BoundingBoxFormat.CORNER_PAIRS):
        def define(net, t):
            def scalar(value, dtype):
                return net.add_constant((), np.array(value, dtype)).get_output(0)
            layer = net.add_nms(t["boxes"], t["scores"], scalar(limit, np.int32))
            if iou is not None:
                layer.set_input(3, scalar(iou, np.float32))
            if score is not None:
                layer.set_input(4, scalar(score, np.float32))
            layer.bounding_box_format = fmt
            return layer
        return define

    case(LayerType.NMS, "nms-shared-boxes",
         {"boxes": _boxes(2, 40), "scores": RNG.uniform(0, 1, (2, 40, 3)).astype(np.float32)},
         _nms(5, 0.3, 0.2))
    case(LayerType.NMS, "nms-per-class-center-sizes",
         {"boxes": _boxes(1, 30, 4), "scores": RNG.uniform(0, 1, (1, 30, 4)).astype(np.float32)},
         _nms(3, 0.4, fmt=trt.BoundingBoxFormat.CENTER_SIZES))
    case(LayerType.NMS, "nms-f16-default-thresholds",
         {"boxes": _boxes(2, 20, dtype=np.float16),
          "scores": rand(2, 20, 2, dtype=np.float16)}, _nms(4))

    def _reverse_sequence(batch_axis, sequence_axis):
        def define(net, t):
            layer = net.add_reverse_sequence(t["x"], t["lens"])
            layer.batch_axis, layer.sequence_axis = batch_axis, sequence_axis
            return layer
        return define

    case(LayerType.REVERSE_SEQUENCE, "reverse-sequence",
         {"x": rand(6, 4, 3), "lens": np.array([6, 0, 3, 9], np.int32)},
         _reverse_sequence(1, 0))
    case(LayerType.REVERSE_SEQUENCE, "reverse-sequence-batch-first-int64-lengths",
         {"x": rand(3, 2, 5, dtype=np.int64), "lens": np.array([5, 2, 1], np.int64)},
         _reverse_sequence(0, 2))
    case(LayerType.REVERSE_SEQUENCE, "reverse-sequence-bool",
         {"x": rand(4, 5, dtype=np.bool_), "lens": np.array([4, 3, 2, 1, 0], np.int32)},
         _reverse_sequence(1, 0))

# -- top-k, cumulative, gather ND, scatter, one-hot, fill, quantize, einsum -------------------
if hasattr(trt, "TopKOperation"):
    case(LayerType.TOPK, "topk-max", {"x": rand(3, 10)},
         lambda net, t: net.add_topk(t["x"], trt.TopKOperation.MAX, 4, 1 << 1))
    case(LayerType.TOPK, "topk-min-axis0", {"x": rand(6, 5)},
         lambda net, t: net.add_topk(t["x"], trt.TopKOperation.MIN, 2, 1 << 0))

    def _cumulative(axis, exclusive, reverse):
        def define(net, t):
            a = net.add_constant((), np.array(axis, np.int32)).get_output(0)
            return net.add_cumulative(t["x"], a, trt.CumulativeOperation.SUM, exclusive,
                                      reverse)
        return define

    case(LayerType.CUMULATIVE, "cumsum", {"x": rand(3, 6)}, _cumulative(1, False, False))
    case(LayerType.CUMULATIVE, "cumsum-exclusive-reverse", {"x": rand(4, 3)},
         _cumulative(0, True, True))

    def _gather_nd(net, t):
        layer = net.add_gather_v2(t["x"], t["i"], trt.GatherMode.ND)
        return layer

    case(LayerType.GATHER, "gather-nd",
         {"x": rand(3, 4, 5), "i": np.array([[0, 1], [2, -1], [1, 3]], np.int32)}, _gather_nd)
    case(LayerType.SCATTER, "scatter-element",
         {"x": rand(3, 5), "i": np.array([[0, 4], [2, 1], [3, 0]], np.int64),
          "u": rand(3, 2)},
         lambda net, t: _with_axis(net.add_scatter(t["x"], t["i"], t["u"],
                                                   trt.ScatterMode.ELEMENT), 1))
    case(LayerType.SCATTER, "scatter-nd",
         {"x": rand(4, 3), "i": np.array([[1], [3]], np.int32), "u": rand(2, 3)},
         lambda net, t: net.add_scatter(t["x"], t["i"], t["u"], trt.ScatterMode.ND))

    def _with_axis(layer, axis):
        layer.axis = axis
        return layer

    def _one_hot(net, t):
        values = net.add_constant((2,), np.array([0.5, 2.0], np.float32)).get_output(0)
        depth = net.add_constant((), np.array(5, np.int32)).get_output(0)
        return net.add_one_hot(t["i"], values, depth, -1)

    case(LayerType.ONE_HOT, "one-hot", {"i": np.array([[0, 4], [-1, 2]], np.int32)}, _one_hot)
    sparse = rand(3, 4, 5)
    sparse[sparse < 0.3] = 0
    case(LayerType.NON_ZERO, "non-zero-float", {"x": sparse},
         lambda net, t: net.add_non_zero(t["x"]))
    case(LayerType.NON_ZERO, "non-zero-bool", {"x": rand(6, 7, dtype=np.bool_)},
         lambda net, t: net.add_non_zero(t["x"]))
    case(LayerType.ASSERTION, "assertion-holds", {"c": np.ones(3, bool)},
         lambda net, t: net.add_assertion(t["c"], "every element is true"))

    def _fill(net, t):
        layer = net.add_fill((6,), trt.FillOperation.LINSPACE)
        layer.alpha, layer.beta = 1.0, 0.5
        return layer

    case(LayerType.FILL, "fill-linspace", {}, _fill)

    def _quantize(per_channel, to_type=trt.DataType.INT8, scales=(0.05, 0.1, 0.02, 0.04)):
        """Quantize to ``to_type`` with the first three ``scales`` per channel (axis 1) or
        the last per tensor."""
        def define(net, t):
            values = np.array(scales[:3] if per_channel else scales[3], np.float32)
            scale = net.add_constant(values.shape, values).get_output(0)
            layer = net.add_quantize(t["x"], scale, to_type)
            layer.axis = 1 if per_channel else -1
            return layer
        return define

    def _dequantize(net, t):
        scale = net.add_constant((), np.array(0.03, np.float32)).get_output(0)
        return net.add_dequantize(t["q"], scale, trt.DataType.FLOAT)

    case(LayerType.QUANTIZE, "quantize-per-tensor", {"x": rand(2, 3, 4)}, _quantize(False))
    case(LayerType.QUANTIZE, "quantize-per-channel", {"x": rand(2, 3, 4)}, _quantize(True))
    case(LayerType.DEQUANTIZE, "dequantize-per-tensor",
         {"q": RNG.integers(-128, 128, (3, 5)).astype(np.int8)}, _dequantize)
    case(LayerType.EINSUM, "einsum-batched",
         {"a": rand(2, 3, 4), "b": rand(2, 4, 5)},
         lambda net, t: net.add_einsum([t["a"], t["b"]], "bij,bjk->bik"), float32=1e-5)


# -- quantized (INT8 codes in, real out) -------------------------------------------------------
if hasattr(trt, "PoolingType"):
    from engine.network.layers.quantized import (
        IQuantizedConvolutionLayer,
        IQuantizedMatrixMultiplyLayer,
        codes_as_weights,
    )

    def codes(*shape: int) -> np.ndarray:
        return RNG.integers(-128, 128, shape).astype(np.int8)

    def fp8_codes(*shape: int) -> np.ndarray:
        """E4M3 codes over most of the range (no NaN), as ml_dtypes float8_e4m3fn."""
        import ml_dtypes

        values = RNG.standard_normal(shape) * 2.0 ** RNG.integers(-6, 8, shape)
        return np.clip(values, -448, 448).astype(ml_dtypes.float8_e4m3fn)

    def weight_codes(code_type: trt.DataType, *shape: int) -> np.ndarray:
        if code_type == trt.DataType.FP8:
            return fp8_codes(*shape)
        if code_type == trt.DataType.INT4:
            return RNG.integers(-8, 8, shape).astype(np.int8)
        return codes(*shape)

    def _quantized_conv(maps, kernel, channels, padding=(0, 0), stride=(1, 1), dilation=(1, 1),
                        per_channel=True, bias=True, output=trt.DataType.FLOAT,
                        code_type=trt.DataType.INT8, groups=1):
        w = weight_codes(code_type, maps, channels // groups, *kernel)
        b = rand(maps) if bias else np.zeros(0, np.float32)
        scale = (RNG.uniform(0.5, 2.0, maps) if per_channel else np.array(0.7)) * 1e-3

        def define(net, t):
            layer = IQuantizedConvolutionLayer(net, t["x"], maps, kernel,
                                               codes_as_weights(w, code_type),
                                               trt.Weights(b))
            layer.padding_nd, layer.stride_nd, layer.dilation_nd = padding, stride, dilation
            layer.num_groups = groups
            layer.input_scale = 0.02
            layer.kernel_scale = trt.Weights(scale.astype(np.float32))
            layer.kernel_axis = 0
            layer.output_type = output
            return layer
        return define

    # Channel counts and positions that are not multiples of 4 exercise the zero padding.
    case(LayerType.QUANTIZED_CONVOLUTION, "qconv-3x3-pad-per-channel", {"x": codes(2, 5, 9, 10)},
         _quantized_conv(6, (3, 3), 5, padding=(1, 1)))
    case(LayerType.QUANTIZED_CONVOLUTION, "qconv-1x1-per-tensor-no-bias",
         {"x": codes(3, 16, 7, 7)}, _quantized_conv(8, (1, 1), 16, per_channel=False, bias=False))
    case(LayerType.QUANTIZED_CONVOLUTION, "qconv-strided-dilated", {"x": codes(2, 7, 13, 11)},
         _quantized_conv(5, (3, 2), 7, padding=(2, 1), stride=(2, 3), dilation=(2, 1)))
    case(LayerType.QUANTIZED_CONVOLUTION, "qconv-7x7-s2-half-out", {"x": codes(2, 3, 20, 20)},
         _quantized_conv(16, (7, 7), 3, padding=(3, 3), stride=(2, 2),
                         output=trt.DataType.HALF), float16=2e-2)
    case(LayerType.QUANTIZED_CONVOLUTION, "qconv-deep-reduction", {"x": codes(1, 256, 6, 6)},
         _quantized_conv(12, (3, 3), 256, padding=(1, 1)))

    from engine.network.layers.quantized import IFusedQuantizedConvolutionLayer

    def _fused_quantized_conv(maps, kernel, channels, residual=False, relu=True,
                              output_scale=0.0, residual_scale=0.0,
                              output_codes=trt.DataType.INT8, **conv):
        """A quantized convolution + residual (input "r"; INT8 or FP8 codes with a positive
        ``residual_scale``) + ReLU + requantization to ``output_codes``."""
        plain = _quantized_conv(maps, kernel, channels, **conv)

        def define(net, t):
            return IFusedQuantizedConvolutionLayer.from_quantized_convolution(
                plain(net, t), t["r"] if residual else None,
                trt.ActivationType.RELU if relu else None, output_scale=output_scale,
                residual_scale=residual_scale, output_codes=output_codes)
        return define

    F = trt.DataType
    case(LayerType.FUSED_QUANTIZED_CONVOLUTION, "fqconv-3x3-relu-int8-out",
         {"x": codes(2, 5, 9, 10)},
         _fused_quantized_conv(6, (3, 3), 5, padding=(1, 1), output_scale=0.015))
    case(LayerType.FUSED_QUANTIZED_CONVOLUTION, "fqconv-1x1-residual-relu-int8-out",
         {"x": codes(2, 16, 7, 7), "r": rand(2, 8, 7, 7)},
         _fused_quantized_conv(8, (1, 1), 16, residual=True, output_scale=0.02))
    case(LayerType.FUSED_QUANTIZED_CONVOLUTION, "fqconv-strided-residual-half-in-int8-out",
         {"x": codes(2, 7, 13, 11), "r": rand(2, 5, 7, 4, dtype=np.float16)},
         _fused_quantized_conv(5, (3, 2), 7, residual=True, relu=False, padding=(1, 0),
                               stride=(2, 3), output=F.HALF, output_scale=0.01))
    case(LayerType.FUSED_QUANTIZED_CONVOLUTION, "fqconv-3x3-residual-relu-half-out",
         {"x": codes(2, 8, 9, 9), "r": rand(2, 12, 9, 9, dtype=np.float16)},
         _fused_quantized_conv(12, (3, 3), 8, residual=True, padding=(1, 1),
                               output=F.HALF), float16=2e-2)
    case(LayerType.FUSED_QUANTIZED_CONVOLUTION, "fqconv-1x1-int8-residual-relu-int8-out",
         {"x": codes(2, 16, 7, 7), "r": codes(2, 8, 7, 7)},
         _fused_quantized_conv(8, (1, 1), 16, residual=True, output_scale=0.02,
                               residual_scale=0.004))
    case(LayerType.FUSED_QUANTIZED_CONVOLUTION, "fqconv-3x3-int8-residual-half-out",
         {"x": codes(2, 8, 9, 9), "r": codes(2, 12, 9, 9)},
         _fused_quantized_conv(12, (3, 3), 8, residual=True, padding=(1, 1),
                               output=F.HALF, residual_scale=0.01), float16=2e-2)
    case(LayerType.FUSED_QUANTIZED_CONVOLUTION, "fqconv-deep-residual-float-out",
         {"x": codes(1, 256, 6, 6), "r": rand(1, 12, 6, 6)},
         _fused_quantized_conv(12, (3, 3), 256, residual=True, relu=False, padding=(1, 1)))
    # FP8 codes in and out: the float sums round differently on each target, so an FP8 code
    # may be one step (up to 12.5%) off; float outputs as the plain FP8 cases.
    F8 = trt.DataType.FP8
    case(LayerType.FUSED_QUANTIZED_CONVOLUTION, "fqconv-fp8-3x3-relu-fp8-out",
         {"x": fp8_codes(2, 5, 9, 10)},
         _fused_quantized_conv(6, (3, 3), 5, padding=(1, 1), output_scale=0.01,
                               output_codes=F8, code_type=F8), float8=0.13)
    case(LayerType.FUSED_QUANTIZED_CONVOLUTION, "fqconv-fp8-1x1-fp8-residual-relu-fp8-out",
         {"x": fp8_codes(2, 16, 7, 7), "r": fp8_codes(2, 8, 7, 7)},
         _fused_quantized_conv(8, (1, 1), 16, residual=True, output_scale=0.02,
                               residual_scale=0.004, output_codes=F8, code_type=F8),
         float8=0.13)
    case(LayerType.FUSED_QUANTIZED_CONVOLUTION, "fqconv-fp8-3x3-residual-half-out",
         {"x": fp8_codes(2, 8, 9, 9), "r": rand(2, 12, 9, 9, dtype=np.float16)},
         _fused_quantized_conv(12, (3, 3), 8, residual=True, padding=(1, 1),
                               output=trt.DataType.HALF, code_type=F8), float16=2e-2)

    def _quantized_matmul(shape, op0, op1, per_channel=True, output=trt.DataType.FLOAT,
                          code_type=trt.DataType.INT8, block=0):
        w = weight_codes(code_type, *shape)
        columns = shape[-1] if op1 == trt.MatrixOperation.NONE else shape[-2]
        scale = (RNG.uniform(0.5, 2.0, columns) if per_channel else np.array(0.7)) * 1e-3
        if block:  # per block of `block` rows of K (op1 NONE: K is axis 0)
            scale = RNG.uniform(0.5, 2.0, (shape[0] // block, shape[1])) * 1e-3

        def define(net, t):
            layer = IQuantizedMatrixMultiplyLayer(net, t["x"], op0,
                                                  codes_as_weights(w, code_type), shape,
                                                  op1)
            layer.input_scale = 0.05
            layer.kernel_scale = trt.Weights(scale.astype(np.float32))
            layer.kernel_axis = len(shape) - (1 if op1 == trt.MatrixOperation.NONE else 2)
            layer.output_type = output
            return layer
        return define

    M = trt.MatrixOperation
    case(LayerType.QUANTIZED_MATRIX_MULTIPLY, "qmatmul-per-channel", {"x": codes(7, 30)},
         _quantized_matmul((30, 9), M.NONE, M.NONE))
    case(LayerType.QUANTIZED_MATRIX_MULTIPLY, "qmatmul-batched-rows-transposed-weights",
         {"x": codes(2, 5, 64)}, _quantized_matmul((24, 64), M.NONE, M.TRANSPOSE))
    case(LayerType.QUANTIZED_MATRIX_MULTIPLY, "qmatmul-transposed-input-per-tensor-half",
         {"x": codes(2, 33, 6)}, _quantized_matmul((33, 17), M.TRANSPOSE, M.NONE,
                                                   per_channel=False, output=trt.DataType.HALF),
         float16=2e-2)

    # FP8 codes on both sides (FP8 or FP16 tensor cores, float32 sums; FP8 tensor cores sum
    # with about 13 mantissa bits between FP32 promotions, hence 3e-3)
    F8, I4 = trt.DataType.FP8, trt.DataType.INT4
    case(LayerType.QUANTIZED_CONVOLUTION, "qconv-fp8-3x3-pad-per-channel",
         {"x": fp8_codes(2, 5, 9, 10)},
         _quantized_conv(6, (3, 3), 5, padding=(1, 1), code_type=F8), float32=3e-3)
    case(LayerType.QUANTIZED_CONVOLUTION, "qconv-fp8-1x1-strided-half-out",
         {"x": fp8_codes(2, 24, 9, 9)},
         _quantized_conv(16, (1, 1), 24, stride=(2, 2), output=trt.DataType.HALF,
                         code_type=F8), float16=2e-2)
    case(LayerType.QUANTIZED_MATRIX_MULTIPLY, "qmatmul-fp8-per-channel",
         {"x": fp8_codes(7, 30)}, _quantized_matmul((30, 9), M.NONE, M.NONE, code_type=F8),
         float32=3e-3)
    case(LayerType.QUANTIZED_MATRIX_MULTIPLY, "qmatmul-fp8-batched-transposed-weights",
         {"x": fp8_codes(2, 5, 64)},
         _quantized_matmul((24, 64), M.NONE, M.TRANSPOSE, code_type=F8), float32=3e-3)
    # dequantized weights: weight-only (real input), block scales, grouped convolution
    case(LayerType.QUANTIZED_CONVOLUTION, "qconv-int4-weight-only",
         {"x": rand(2, 6, 8, 8)}, _quantized_conv(8, (3, 3), 6, padding=(1, 1), code_type=I4),
         float32=1e-4)
    case(LayerType.QUANTIZED_CONVOLUTION, "qconv-int8-codes-grouped",
         {"x": codes(2, 8, 7, 7)}, _quantized_conv(4, (3, 3), 8, groups=2), float32=1e-4)
    case(LayerType.QUANTIZED_MATRIX_MULTIPLY, "qmatmul-int4-weight-only-blocks",
         {"x": rand(3, 5, 64)}, _quantized_matmul((64, 12), M.NONE, M.NONE, code_type=I4,
                                                  block=16), float32=1e-4)
    case(LayerType.QUANTIZED_MATRIX_MULTIPLY, "qmatmul-fp8-weights-half-input",
         {"x": rand(4, 32, dtype=np.float16)},
         _quantized_matmul((32, 8), M.NONE, M.NONE, code_type=F8), float32=2e-2)

    # FP8 quantize, dequantize and casts (the patterns compared exactly)
    def _quantize_fp8(per_channel):
        return _quantize(per_channel, trt.DataType.FP8, (0.01, 0.2, 0.003, 0.004))

    def _dequantize_fp8(to_type):
        def define(net, t):
            scale = net.add_constant((), np.array(0.03, np.float32)).get_output(0)
            return net.add_dequantize(t["q"], scale, to_type)
        return define

    wide = rand(2, 3, 40) * np.float32(2.0) ** RNG.integers(-12, 2, (2, 3, 40))
    wide[0, 0, :4] = [np.inf, -np.inf, 1e6, -3.0]  # saturate to +-448 codes
    case(LayerType.QUANTIZE, "quantize-fp8-per-tensor", {"x": wide.astype(np.float32)},
         _quantize_fp8(False))
    case(LayerType.QUANTIZE, "quantize-fp8-per-channel-half",
         {"x": rand(2, 3, 16, dtype=np.float16)}, _quantize_fp8(True))
    case(LayerType.DEQUANTIZE, "dequantize-fp8-float", {"q": fp8_codes(3, 17)},
         _dequantize_fp8(trt.DataType.FLOAT))
    case(LayerType.DEQUANTIZE, "dequantize-fp8-half", {"q": fp8_codes(3, 17)},
         _dequantize_fp8(trt.DataType.HALF))
    case(LayerType.CAST, "cast-fp8-to-float", {"x": fp8_codes(4, 9)},
         lambda net, t: net.add_cast(t["x"], trt.DataType.FLOAT))
    case(LayerType.CAST, "cast-half-to-fp8",
         {"x": (rand(4, 9) * 40).astype(np.float16)},
         lambda net, t: net.add_cast(t["x"], trt.DataType.FP8))

    def _plugin(name, **values):
        """A shipped plugin (``engine.plugins.library``) on every input of the case."""
        def define(net, t):
            creator = trt.get_plugin_registry().get_creator(name, "1", "")
            kinds = {f.name: f.type for f in creator.field_names}
            fields = trt.PluginFieldCollection(
                trt.PluginField(k, np.array(np.atleast_1d(v), np.float32 if
                                            kinds[k] == trt.PluginFieldType.FLOAT32 else
                                            np.int32), kinds[k]) for k, v in values.items())
            plugin = creator.create_plugin(name, fields, trt.TensorRTPhase.BUILD)
            return net.add_plugin_v3(list(t.values()), [], plugin)
        return define

    case(LayerType.PLUGIN_V3, "plugin-group-normalization",  # capturable: gpu.plugin
         {"x": rand(2, 6, 4, 5), "scale": rand(6), "bias": rand(6)},
         _plugin("GroupNormalizationPlugin", num_groups=3, eps=1e-5), float32=1e-4)
    case(LayerType.PLUGIN_V3, "plugin-roi-align",  # reads regions on the host
         {"x": rand(2, 3, 10, 12),
          "rois": np.array([[0, 0, 9, 9], [2.5, 1.5, 11, 7.2]], np.float32),
          "batch_indices": np.array([0, 1], np.int32)},
         _plugin("ROIAlign_TRT", mode=1, output_height=3, output_width=4, sampling_ratio=2,
                 spatial_scale=0.5))
