"""The bit arithmetic of the GPU's FLOAT -> BF16 rounding (engine/kernels/gpu/bf16.py's
``_NARROW`` kernel), transliterated into NumPy here, against ml_dtypes' bfloat16 (what the
CPU target rounds with): round to nearest even, ties included, infinities, overflow to
infinity, subnormals, and NaN kept NaN with its sign. Widening (``_WIDEN``) is the shift back."""

from __future__ import annotations

import ml_dtypes
import numpy as np


def narrow_bits(values: np.ndarray) -> np.ndarray:
    u = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF
    quiet = ((u >> 16) | 0x40) & 0xFFFF
    return np.where(nan, quiet, rounded).astype(np.uint16)


def widen_bits(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def test_rounding_matches_ml_dtypes_bit_for_bit():
    rng = np.random.default_rng(0)
    scales = 10.0 ** rng.integers(-40, 38, 100_000).astype(np.float64)
    values = np.concatenate([
        (rng.standard_normal(100_000) * scales).astype(np.float32),
        rng.integers(0, 2 ** 32, 100_000, dtype=np.uint64).astype(np.uint32).view(np.float32),
        np.array([0.0, -0.0, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45, -1e-45, 1.0 + 2.0 ** -8,
                  1.0 + 3 * 2.0 ** -8, 65504.0, 1.0 / 3.0], np.float32),
    ])
    got = narrow_bits(values)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN patterns, overflow to infinity
        want = values.astype(ml_dtypes.bfloat16).view(np.uint16)
    finite = ~np.isnan(values)
    np.testing.assert_array_equal(got[finite], want[finite])
    nan_values = widen_bits(got[~finite])
    assert np.isnan(nan_values).all()
    np.testing.assert_array_equal(np.signbit(nan_values), np.signbit(values[~finite]))


def test_widening_is_exact():
    bits = np.arange(0, 2 ** 16, dtype=np.uint32).astype(np.uint16)
    want = bits.view(ml_dtypes.bfloat16).astype(np.float32)
    got = widen_bits(bits)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    assert same.all()
