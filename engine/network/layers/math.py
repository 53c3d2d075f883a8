"""The math layer family: elementwise arithmetic and logic, activations, unary functions,
casts, reductions, softmax, top-k, cumulative sums, matrix products and einsum.

The layer classes live in the ``math_*`` modules beside this one; ``MathLayers`` holds their
``add_*`` methods, with TensorRT 10's names, argument names and defaults.

>>> import engine as trt, numpy as np
>>> network = trt.Builder(trt.Logger()).create_network(0)
>>> a = network.add_input("a", trt.float32, (2, 3))
>>> b = network.add_input("b", trt.float32, (1, 3))
>>> total = network.add_elementwise(a, b, trt.ElementWiseOperation.SUM)
>>> tuple(total.get_output(0).shape)
(2, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.network.layers.family import LayerFamily
from engine.network.layers.math_contraction import (
    IEinsumLayer,
    IMatrixMultiplyLayer,
    MatrixOperation,
)
from engine.network.layers.math_elementwise import (
    ElementWiseOperation,
    IElementWiseLayer,
    ISelectLayer,
)
from engine.network.layers.math_pointwise import (
    ActivationType,
    IActivationLayer,
    ICastLayer,
    IParametricReLULayer,
    IUnaryLayer,
    UnaryOperation,
)
from engine.network.layers.math_reduction import (
    CumulativeOperation,
    ICumulativeLayer,
    IReduceLayer,
    ISoftMaxLayer,
    ITopKLayer,
    ReduceOperation,
    TopKOperation,
)
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.tensor import ITensor

__all__: list[str] = [
    "ActivationType", "CumulativeOperation", "ElementWiseOperation", "IActivationLayer",
    "ICastLayer", "ICumulativeLayer", "IEinsumLayer", "IElementWiseLayer",
    "IMatrixMultiplyLayer", "IParametricReLULayer", "IReduceLayer", "ISelectLayer",
    "ISoftMaxLayer", "ITopKLayer", "IUnaryLayer", "MatrixOperation", "ReduceOperation",
    "TopKOperation", "UnaryOperation",
]


class MathLayers(LayerFamily):
    """The ``add_*`` methods of the math family (mixed into ``INetworkDefinition``)."""

    def add_elementwise(self, input1: ITensor, input2: ITensor,
                        op: ElementWiseOperation) -> IElementWiseLayer:
        """``op`` between two inputs of equal rank, broadcasting dimensions of 1."""
        return self._add(IElementWiseLayer, input1, input2, op)

    def add_select(self, condition: ITensor, then_input: ITensor,
                   else_input: ITensor) -> ISelectLayer:
        """Elementwise ``condition ? then_input : else_input`` with broadcasting."""
        return self._add(ISelectLayer, [condition, then_input, else_input])

    def add_activation(self, input: ITensor,  # noqa: A002
                       type: ActivationType) -> IActivationLayer:  # noqa: A002
        """An activation; set ``alpha`` and ``beta`` on the layer for the parametric ones."""
        return self._add(IActivationLayer, input, type)

    def add_unary(self, input: ITensor,  # noqa: A002
                  op: UnaryOperation) -> IUnaryLayer:
        return self._add(IUnaryLayer, input, op)

    def add_parametric_relu(self, input: ITensor,  # noqa: A002
                            slope: ITensor) -> IParametricReLULayer:
        """``x >= 0 ? x : slope * x`` with ``slope`` broadcast to the input."""
        return self._add(IParametricReLULayer, [input, slope])

    def add_cast(self, input: ITensor,  # noqa: A002
                 to_type: DataType) -> ICastLayer:
        return self._add(ICastLayer, input, to_type)

    def add_reduce(self, input: ITensor,  # noqa: A002
                   op: ReduceOperation, axes: int, keep_dims: bool) -> IReduceLayer:
        """Reduce the axes set in the bit mask ``axes`` (bit i = axis i)."""
        return self._add(IReduceLayer, input, op, axes, keep_dims)

    def add_softmax(self, input: ITensor) -> ISoftMaxLayer:  # noqa: A002
        """Softmax; along axis ``rank - 3`` (0 below rank 3) until ``axes`` is set."""
        return self._add(ISoftMaxLayer, input)

    def add_topk(self, input: ITensor,  # noqa: A002
                 op: TopKOperation, k: int, axes: int) -> ITopKLayer:
        """The ``k`` largest or smallest values along one axis (outputs: values, indices)."""
        return self._add(ITopKLayer, input, op, k, axes)

    def add_cumulative(self, input: ITensor,  # noqa: A002
                       axis: ITensor, op: CumulativeOperation, exclusive: bool,
                       reverse: bool) -> ICumulativeLayer:
        """Prefix ``op`` along ``axis``, a build-time constant 0-D INT32 or INT64 tensor."""
        return self._add(ICumulativeLayer, input, axis, op, exclusive, reverse)

    def add_matrix_multiply(self, input0: ITensor, op0: MatrixOperation,
                            input1: ITensor, op1: MatrixOperation) -> IMatrixMultiplyLayer:
        """``op0(input0) @ op1(input1)`` over broadcast batch dimensions."""
        return self._add(IMatrixMultiplyLayer, input0, op0, input1, op1)

    def add_einsum(self, inputs: Sequence[ITensor],
                   equation: str) -> IEinsumLayer:
        """Einstein summation of one or two inputs, e.g. ``"bij,bjk->bik"``."""
        return self._add(IEinsumLayer, inputs, equation)
