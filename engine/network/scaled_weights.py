"""Weights scaled per row (per output map of a kernel), computed when first read or written.

Folding batch norms into ResNet-50's convolutions scales 94 MB of kernels, made only to be
copied into the plan. ``ScaledWeights`` keeps the kernel and its scales instead: the plan
writer multiplies them straight into the plan (``RowScaledArray.write_into``), and reading
``numpy()`` (a tactic being timed) computes the product once and keeps it.

>>> import numpy as np
>>> from engine.types import Weights
>>> w = scale_rows(Weights(np.ones((2, 3), np.float32)), np.array([2.0, 3.0]))
>>> w.numpy()
array([[2., 2., 2.],
       [3., 3., 3.]], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.types import DataType, Weights


class RowScaledArray:
    """``base`` times one scale per row (its first axis), each scale applied in turn in the
    base's own type; ``np.asarray`` computes it, ``write_into`` computes it into memory."""

    def __init__(self, base: np.ndarray, scales: tuple[np.ndarray, ...]) -> None:
        self.base = base
        self.scales = scales
        self.shape: tuple[int, ...] = tuple(base.shape)
        self.dtype = base.dtype
        self.size = int(base.size)
        self.nbytes = int(base.nbytes)

    def write_into(self, out: np.ndarray) -> None:
        """Compute into ``out``: contiguous, of this shape and type."""
        rows = self.shape[0] if self.shape else 1
        target = out.reshape(rows, -1)
        source = self.base.reshape(rows, -1)
        for scale in self.scales:
            np.multiply(source, scale.reshape(rows, 1), out=target)
            source = target

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        self.write_into(out)
        return out if dtype is None else out.astype(dtype, copy=False)


class ScaledWeights(Weights):
    """Weights whose values are ``product`` (a ``RowScaledArray``), computed on first read."""

    def __init__(self, product: RowScaledArray, dtype: DataType) -> None:  # noqa: D107
        self.name = None
        self.dtype = dtype
        self.shape = product.shape
        self.product = product
        self._value: np.ndarray | None = None

    @property
    def _array(self) -> np.ndarray:  # type: ignore[override]
        if self._value is None:
            self._value = np.asarray(self.product)
        return self._value

    @property
    def evaluated(self) -> bool:
        """Whether the product was computed (then it is written as any array is)."""
        return self._value is not None

    @property
    def size(self) -> int:
        return self.product.size


def scale_rows(weights: Weights, scale: np.ndarray) -> ScaledWeights:
    """``weights`` times ``scale[i]`` along row ``i``, in the weights' type, not yet computed."""
    if isinstance(weights, ScaledWeights) and not weights.evaluated:
        product = weights.product
        base, scales = product.base, product.scales
    else:
        base, scales = weights.numpy(), ()
    scales = (*scales, np.asarray(scale).astype(base.dtype).reshape(-1))
    return ScaledWeights(RowScaledArray(base, scales), weights.dtype)


def array_dtype(weights: Weights) -> np.dtype:
    """The NumPy type of ``weights``' values, without computing scaled ones."""
    if isinstance(weights, ScaledWeights):
        return weights.product.dtype
    return weights.numpy().dtype
