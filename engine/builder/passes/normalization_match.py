"""What the layer-norm and RMS-norm recognitions share: matching ``sqrt(mean(d * d) + eps)``
as exporters write it, and the optional ``* gamma`` / ``+ beta`` after it."""

from __future__ import annotations

import numpy as np

from engine.builder.passes.rewrite import (
    constant_value,
    only_consumer,
    other_input,
    produced_by,
    scalar_constant,
)
from engine.network.definition import INetworkDefinition
from engine.network.layers.math_elementwise import ElementWiseOperation, IElementWiseLayer
from engine.network.layers.math_pointwise import IUnaryLayer, UnaryOperation
from engine.network.layers.math_reduction import IReduceLayer, ReduceOperation
from engine.network.tensor import ITensor

E = ElementWiseOperation


def mean_over(tensor: ITensor | None) -> tuple[ITensor, int] | None:
    """``(x, axes)`` if ``tensor`` is ``mean(x, axes)`` with kept dimensions."""
    reduce = produced_by(tensor, IReduceLayer, op=ReduceOperation.AVG)
    if reduce is None or not reduce.keep_dims:  # type: ignore[attr-defined]
        return None
    return reduce._inputs[0], int(reduce.axes)  # type: ignore[attr-defined,return-value]


def squared(tensor: ITensor | None) -> ITensor | None:
    """``d`` if ``tensor`` is ``d ^ 2`` or ``d * d``."""
    power = produced_by(tensor, IElementWiseLayer, op=E.POW)
    if power is not None and scalar_constant(power._inputs[1]) == 2.0:
        return power._inputs[0]
    product = produced_by(tensor, IElementWiseLayer, op=E.PROD)
    if product is not None and product._inputs[0] is product._inputs[1]:
        return product._inputs[0]
    return None


def root_mean_square(tensor: ITensor | None) -> tuple[ITensor, int, float] | None:
    """``(d, axes, eps)`` if ``tensor`` is ``sqrt(mean(d ^ 2, axes) + eps)``."""
    root = produced_by(tensor, IUnaryLayer, op=UnaryOperation.SQRT)
    add = None if root is None else produced_by(root._inputs[0], IElementWiseLayer, op=E.SUM)
    if add is None:
        return None
    for mean, eps in (add._inputs, add._inputs[::-1]):
        epsilon = scalar_constant(eps)
        found = mean_over(mean)
        d = None if found is None else squared(found[0])
        if epsilon is not None and epsilon > 0 and d is not None:
            return d, found[1], epsilon  # type: ignore[index]
    return None


def normalized_by(tensor: ITensor) -> tuple[ITensor, ITensor, int, float] | None:
    """``(out, d, axes, eps)`` when ``tensor`` is divided by ``rms(d)`` (``d / rms`` or
    ``d * (1 / rms)``)."""
    producer = tensor._producer
    if type(producer) is IElementWiseLayer and producer.op == E.DIV:
        found = root_mean_square(producer._inputs[1])
        if found is not None and found[0] is producer._inputs[0]:
            return tensor, found[0], found[1], found[2]
    if type(producer) is IElementWiseLayer and producer.op == E.PROD:
        for d, recip in (producer._inputs, producer._inputs[::-1]):
            inverse = produced_by(recip, IUnaryLayer, op=UnaryOperation.RECIP)
            found = None if inverse is None else root_mean_square(inverse._inputs[0])
            if found is not None and found[0] is d:
                return tensor, d, found[1], found[2]  # type: ignore[return-value]
    return None


def affine_tail(network: INetworkDefinition, tensor: ITensor, rank: int, size_ok: bool = True
                ) -> tuple[ITensor, np.ndarray | None, np.ndarray | None]:
    """Follow ``* gamma`` then ``+ beta`` (constants, each optional) after ``tensor``; returns
    the last tensor and the constants (None where absent), shaped to ``rank``."""
    gamma = beta = None
    reader = only_consumer(network, tensor)
    for op in (E.PROD, E.SUM):
        if not (isinstance(reader, IElementWiseLayer) and reader.op == op):
            continue
        value = constant_value(other_input(reader, tensor))
        if value is None or value.ndim > rank or other_input(reader, tensor) is tensor:
            continue
        value = value.reshape((1,) * (rank - value.ndim) + value.shape)
        if op == E.PROD:
            gamma = value
        else:
            beta = value
        tensor = reader._outputs[0]
        reader = only_consumer(network, tensor)
    return tensor, gamma, beta
