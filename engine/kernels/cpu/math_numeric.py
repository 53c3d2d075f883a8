"""How the math kernels compute each element type: narrow floats (HALF, BF16, FP8) and
TensorRT's quantized INT8 in float32, then rounded back; INT32, INT64 and BOOL exactly."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from engine.types import DataType, from_numpy_dtype, nptype

_WIDENED = frozenset({DataType.HALF, DataType.BF16, DataType.FP8, DataType.INT8})


def widen(x: np.ndarray) -> np.ndarray:
    """``x`` in the type the kernels compute it in (float32 for narrow floats and INT8)."""
    if from_numpy_dtype(x.dtype) in _WIDENED:
        return x.astype(np.float32)
    return x


def narrow(values: np.ndarray, dtype: DataType) -> np.ndarray:
    """Computed ``values`` as an array of ``dtype``; INT8 rounds to nearest even and saturates,
    as a quantized value with unit scale would."""
    values = np.asarray(values)
    if dtype == DataType.INT8 and values.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            rounded = np.clip(np.rint(np.nan_to_num(values)), -128, 127)
        return rounded.astype(np.int8)
    return values.astype(nptype(dtype), copy=False)


def dtype_of(x: np.ndarray) -> DataType:
    return from_numpy_dtype(x.dtype)


_erf_of_float64 = np.vectorize(math.erf, otypes=[np.float64])


def _erf_pieces() -> tuple[np.ndarray, np.ndarray]:
    """The tables of ``erf``: Taylor coefficients of ``erf(x) / x`` in ``x**2`` (the first
    piece, where relative accuracy near 0 matters), and per piece of ``[_ERF_WIDTH, 6)`` the
    power-basis coefficients of a degree-``_ERF_DEGREE`` Chebyshev interpolant of
    ``math.erf`` in the piece's local variable ``u`` in ``[-1, 1]``, fitted here at import."""
    from numpy.polynomial import chebyshev

    taylor = np.array([(-1) ** n * 2 / math.sqrt(math.pi) / (math.factorial(n) * (2 * n + 1))
                       for n in range(_ERF_TAYLOR_TERMS)])
    nodes = np.cos(np.pi * (np.arange(4 * _ERF_DEGREE) + 0.5) / (4 * _ERF_DEGREE))
    pieces = []
    for k in range(_ERF_PIECES):
        low, high = k * _ERF_WIDTH, (k + 1) * _ERF_WIDTH
        values = _erf_of_float64((low + high) / 2 + (high - low) / 2 * nodes)
        pieces.append(chebyshev.cheb2poly(chebyshev.chebfit(nodes, values, _ERF_DEGREE)))
    return taylor, np.array(pieces).T.copy()  # [power, piece]


_ERF_WIDTH, _ERF_PIECES, _ERF_DEGREE, _ERF_TAYLOR_TERMS = 0.25, 24, 11, 11
_ERF_LIMIT = _ERF_WIDTH * _ERF_PIECES  # erf is 1.0 in float64 from 5.93 on
_ERF_TAYLOR, _ERF_POWERS = _erf_pieces()


@functools.cache
def _scipy_erf() -> Any:
    """SciPy's vectorized erf where SciPy is installed (optional: about three times faster
    than the polynomials below, with the same float32 results), else None."""
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:
        return None
    return scipy_erf


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, in float64 (NumPy has none): SciPy's where it is
    installed, else ``erf_polynomials``."""
    fast = _scipy_erf()
    if fast is not None:
        return np.asarray(fast(np.asarray(x, dtype=np.float64)), dtype=np.float64)
    return erf_polynomials(x)


def erf_polynomials(x: np.ndarray) -> np.ndarray:
    """The error function in float64 without SciPy. Below 0.25 its Taylor series (relative
    error below 1e-16); up to 6, piecewise polynomials interpolating ``math.erf`` (relative
    error below 1e-11, so float32 results equal the correctly rounded ones but for rare
    ties); 1 beyond; NaN stays NaN. About four times faster than calling ``math.erf`` per
    element, which dominated a BERT encoder's GELUs on the CPU target."""
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    clipped = np.fmin(ax, _ERF_LIMIT)  # NaN -> the limit; put back below
    piece = np.minimum((clipped * (1 / _ERF_WIDTH)).astype(np.intp), _ERF_PIECES - 1)
    u = (clipped - (piece + 0.5) * _ERF_WIDTH) * (2 / _ERF_WIDTH)
    y = np.take(_ERF_POWERS[_ERF_DEGREE], piece)
    for power in range(_ERF_DEGREE - 1, -1, -1):
        y *= u
        y += np.take(_ERF_POWERS[power], piece)
    small = ax < _ERF_WIDTH
    if small.any():
        xs = x[small]
        squares = xs * xs
        series = np.full_like(xs, _ERF_TAYLOR[-1])
        for coefficient in _ERF_TAYLOR[-2::-1]:
            series *= squares
            series += coefficient
        y[small] = np.abs(xs) * series
    y[ax >= _ERF_LIMIT] = 1.0
    y = np.copysign(y, x)
    y[np.isnan(x)] = np.nan
    return y
