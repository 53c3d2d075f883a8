"""The fused matrix multiply (product + bias + residual + activation) on cuDNN's frontend as
one graph, ``matmul -> bias -> add(residual) -> activation`` (TacticSource.CUDNN): the
epilogue runs inside the matrix product's kernel instead of a second pass over the output.
The builder times it against the cuBLAS tactic (product, then one epilogue kernel) and keeps
the faster per layer.

The product is ``[M, K] @ [K, N]`` over the rows of the first operand (its leading axes
flattened; it must not be transposed); the second operand is one matrix, plain or
transposed (read through its strides), as a network's weights are. HALF and FLOAT (FLOAT
without TF32). Where cuDNN has no engine for a shape (met only with dynamic shapes), the
cuBLAS tactic runs instead.
"""

from __future__ import annotations

from typing import Any

import cupy
import numpy as np

from engine.kernels.gpu import cudnn_conv
from engine.kernels.gpu.capabilities import contiguous
from engine.kernels.gpu.fused_conv import fused_matrix_multiply
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.fused import IFusedMatrixMultiplyLayer
from engine.network.layers.math_contraction import IMatrixMultiplyLayer, MatrixOperation
from engine.network.layers.math_pointwise import ActivationType


class _MatmulGraph:
    def __init__(self, m: int, k: int, n: int, transposed: bool, bias: bool, residual: bool,
                 activation: ActivationType | None, alpha: float, dtype: np.dtype) -> None:
        cudnn, graph, io = cudnn_conv.new_graph(dtype)
        self.a = graph.tensor(name="a", dim=[1, m, k], stride=[m * k, k, 1], data_type=io)
        self.b = graph.tensor(name="b", dim=[1, k, n],
                              stride=[k * n, 1, k] if transposed else [k * n, n, 1],
                              data_type=io)
        y = graph.matmul(A=self.a, B=self.b, compute_data_type=cudnn.data_type.FLOAT)
        self.bias = None
        if bias:
            self.bias = graph.tensor(name="bias", dim=[1, 1, n], stride=[n, n, 1],
                                     data_type=io)
            y = graph.bias(input=y, bias=self.bias)
        self.residual = None
        if residual:
            self.residual = graph.tensor(name="residual", dim=[1, m, n], stride=[m * n, n, 1],
                                         data_type=io)
            y = graph.add(a=y, b=self.residual)
        y = cudnn_conv.activate(cudnn, graph, y, activation, alpha)
        y.set_output(True).set_data_type(io).set_dim([1, m, n]).set_stride([m * n, n, 1])
        self.y = y
        self.graph = graph
        self.workspace_bytes = cudnn_conv.finish_graph(cudnn, graph, dtype, [
            t for t in (self.a, self.b, self.bias, self.residual, y) if t is not None])


def matmul_operands(layer: IMatrixMultiplyLayer, a_shape: tuple[int, ...],
                    b_shape: tuple[int, ...]) -> tuple[int, int, int, bool] | None:
    """(M, K, N, second operand transposed) of ``[M, K] @ [K, N]`` over the rows of the first
    operand (leading axes flattened) and one matrix, or None where the layer is not such a
    product (the cuBLASLt tactic takes the same)."""
    if MatrixOperation(layer.op0) != MatrixOperation.NONE or len(a_shape) < 2 or \
            MatrixOperation(layer.op1) not in (MatrixOperation.NONE, MatrixOperation.TRANSPOSE):
        return None
    if len(b_shape) < 2 or int(np.prod(b_shape[:-2], dtype=np.int64)) != 1:
        return None
    transposed = MatrixOperation(layer.op1) == MatrixOperation.TRANSPOSE
    k, n = (b_shape[-1], b_shape[-2]) if transposed else (b_shape[-2], b_shape[-1])
    if a_shape[-1] != k:
        return None
    return int(np.prod(a_shape[:-1], dtype=np.int64)), int(k), int(n), transposed


def _graph(layer: IFusedMatrixMultiplyLayer, m: int, k: int, n: int, transposed: bool,
           bias: bool, residual: bool, dtype: np.dtype) -> _MatmulGraph | None:
    activation = None if layer.activation is None else ActivationType(layer.activation)
    key = ("matmul", m, k, n, transposed, bias, residual, activation, float(layer.alpha),
           np.dtype(dtype).name)
    return cudnn_conv.cached_graph(key, lambda: _MatmulGraph(
        m, k, n, transposed, bias, residual, activation, float(layer.alpha),
        np.dtype(dtype)))


def bias_is_a_row(bias: TensorInfo | cupy.ndarray | None, n: int) -> bool:
    return bias is None or (bias.shape[-1:] == (n,) and
                            int(np.prod(bias.shape, dtype=np.int64)) == n)


def _fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IFusedMatrixMultiplyLayer)
    a, b = inputs[0], inputs[1]
    if a is None or b is None or a.dtype.name not in ("FLOAT", "HALF") or \
            b.dtype != a.dtype or any(t != a.dtype for t in layer._output_types.values()):
        return False
    if layer.activation is not None and \
            ActivationType(layer.activation) not in cudnn_conv.ACTIVATIONS:
        return False
    if any(d < 0 for d in b.shape) or any(d < 0 for d in a.shape[-1:]):
        return False
    operands = matmul_operands(layer, tuple(max(d, 1) for d in a.shape), tuple(b.shape))
    bias = inputs[2] if len(inputs) > 2 else None
    if operands is None or not bias_is_a_row(bias, operands[2]) or \
            not cudnn_conv.available():
        return False
    if any(d < 0 for d in a.shape):
        return True  # a dynamic batch: shapes cuDNN refuses run the cuBLAS tactic
    dtype = np.dtype(np.float16 if a.dtype.name == "HALF" else np.float32)
    residual = len(inputs) > 3 and inputs[3] is not None
    return _graph(layer, *operands, bias is not None, residual, dtype) is not None


@kernel(LayerType.FUSED_MATRIX_MULTIPLY, backend="gpu", name="gpu.fused_matmul_cudnn",
        supports=_fits, source="CUDNN")
def fused_matmul(layer: ILayer, inputs: list[Any]) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedMatrixMultiplyLayer)
    a, b = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    residual = inputs[3] if len(inputs) > 3 else None
    operands = matmul_operands(layer, a.shape, b.shape)
    graph = None if operands is None else \
        _graph(layer, *operands, bias is not None, residual is not None, a.dtype)
    if graph is None:
        return fused_matrix_multiply(layer, inputs)
    m, k, n, transposed = operands  # type: ignore[misc]
    out = cupy.empty(a.shape[:-1] + (n,), a.dtype)
    b = b.reshape(b.shape[-2:])
    pack = {graph.a: contiguous(a), graph.b: b if b.flags.c_contiguous else b.copy(),
            graph.y: out}
    if graph.bias is not None:
        assert bias is not None  # the graph has a bias tensor only for a layer with one
        pack[graph.bias] = contiguous(bias.astype(a.dtype, copy=False)).reshape(n)
    if graph.residual is not None:
        assert residual is not None
        pack[graph.residual] = contiguous(residual.astype(a.dtype, copy=False))
    cudnn_conv.execute(graph.graph, pack, graph.workspace_bytes)
    return [out]
