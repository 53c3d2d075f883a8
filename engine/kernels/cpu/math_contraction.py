"""CPU kernels of the matrix multiply and einsum layers (accumulating in float32)."""

from __future__ import annotations

import numpy as np

from engine.kernels.cpu.math_numeric import dtype_of, narrow, widen
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.math_contraction import (
    IEinsumLayer,
    IMatrixMultiplyLayer,
    MatrixOperation,
    parse_einsum,
)


def matmul_with_ops(a: np.ndarray, op0: MatrixOperation, b: np.ndarray, op1: MatrixOperation
                    ) -> np.ndarray:
    """``op0(a) @ op1(b)`` as ``IMatrixMultiplyLayer`` defines it, in the operands' dtype."""
    if op0 == MatrixOperation.TRANSPOSE:
        a = np.swapaxes(a, -1, -2)
    if op1 == MatrixOperation.TRANSPOSE:
        b = np.swapaxes(b, -1, -2)
    # A vector becomes a one-row (left) or one-column (right) matrix, dropped again after.
    if op0 == MatrixOperation.VECTOR:
        a = a[..., np.newaxis, :]
    if op1 == MatrixOperation.VECTOR:
        b = b[..., :, np.newaxis]
    product = np.matmul(a, b)
    if op1 == MatrixOperation.VECTOR:
        product = product[..., 0]
    if op0 == MatrixOperation.VECTOR:
        product = product[..., 0] if op1 == MatrixOperation.VECTOR else product[..., 0, :]
    return product


@kernel(LayerType.MATRIX_MULTIPLY, backend="cpu", name="cpu.matrix_multiply")
def matrix_multiply(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IMatrixMultiplyLayer)
    a, b = (widen(x) for x in inputs)
    product = matmul_with_ops(a, MatrixOperation(layer.op0), b, MatrixOperation(layer.op1))
    return [narrow(product, dtype_of(inputs[0]))]


@kernel(LayerType.EINSUM, backend="cpu", name="cpu.einsum")
def einsum(layer: ILayer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    assert isinstance(layer, IEinsumLayer)
    equation = parse_einsum(layer.equation)
    operands = [widen(x).astype(np.float32, copy=False) for x in inputs]
    return [narrow(np.einsum(equation.numpy_form, *operands), dtype_of(inputs[0]))]
