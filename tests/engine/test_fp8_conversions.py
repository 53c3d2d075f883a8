"""The FP8 (E4M3) conversions the GPU kernels include (``engine.kernels.fp8_source``),
compiled here with the host's C compiler from the same source text, against ml_dtypes'
float8_e4m3fn (what the CPU target computes with): widening every one of the 256 codes, and
rounding every FLOAT16 value and random float32 ones — ties to even, subnormals, the values
past 448 (NaN for a cast, 448 with the sign when saturating, as the quantize layer clips),
infinities, NaN of either sign."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from engine.kernels.fp8_source import CONVERSIONS

# What CUDA provides and the host does not: the bit casts, and __device__ / __forceinline__.
_HOST_PRELUDE = r"""
#include <math.h>
#include <string.h>
#define __device__
#define __forceinline__ static inline
static inline unsigned int __float_as_uint(float f) { unsigned int u; memcpy(&u, &f, 4); return u; }
static inline float __uint_as_float(unsigned int u) { float f; memcpy(&f, &u, 4); return f; }
"""
_HOST_ENTRY_POINTS = r"""
void widen_all(const unsigned char* b, float* out, long n) {
    for (long i = 0; i < n; ++i) out[i] = engine_fp8_to_float(b[i]);
}
void narrow_all(const float* x, unsigned char* out, long n, int saturate) {
    for (long i = 0; i < n; ++i) out[i] = engine_float_to_fp8(x[i], saturate);
}
"""


@pytest.fixture(scope="module")
def conversions(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler on this machine to build the conversions on the host")
    folder = tmp_path_factory.mktemp("fp8")
    source, library = folder / "fp8.c", folder / "libfp8.so"
    source.write_text(_HOST_PRELUDE + CONVERSIONS + _HOST_ENTRY_POINTS)
    # -ffp-contract=off and no fast math: IEEE float32 arithmetic, as NVRTC compiles it.
    subprocess.run([compiler, "-O2", "-std=c11", "-fPIC", "-shared", "-ffp-contract=off",
                    "-Werror", "-Wall", "-o", str(library), str(source), "-lm"], check=True)
    lib = ctypes.CDLL(str(Path(library)))
    lib.widen_all.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
    lib.narrow_all.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_int]
    return lib


def _narrow(lib: ctypes.CDLL, values: np.ndarray, saturate: bool) -> np.ndarray:
    values = np.ascontiguousarray(values, np.float32)
    out = np.empty(values.shape, np.uint8)
    lib.narrow_all(values.ctypes.data, out.ctypes.data, values.size, int(saturate))
    return out


def _want(values: np.ndarray, saturate: bool) -> np.ndarray:
    if saturate:  # the CPU quantize kernel: clip to the largest finite value, then cast
        values = np.clip(values, -448.0, 448.0)
    with np.errstate(invalid="ignore", over="ignore"):
        return values.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)


def test_every_code_widens_to_its_exact_value(conversions):
    codes = np.arange(256, dtype=np.uint8)
    got = np.empty(256, np.float32)
    conversions.widen_all(codes.ctypes.data, got.ctypes.data, 256)
    want = codes.view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    nan = np.isnan(want)
    assert nan.sum() == 2 and np.isnan(got[nan]).all()  # 0x7f and 0xff
    np.testing.assert_array_equal(np.signbit(got[nan]), np.signbit(want[nan]))
    np.testing.assert_array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))


def _values() -> np.ndarray:
    rng = np.random.default_rng(0)
    every_half = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    scales = 2.0 ** rng.uniform(-14, 12, 200_000)
    return np.concatenate([
        every_half.astype(np.float32),
        (rng.standard_normal(200_000) * scales).astype(np.float32),
        rng.integers(0, 2 ** 32, 100_000, dtype=np.uint64).astype(np.uint32).view(np.float32),
        # ties: halfway between neighbouring codes, around 448 and in the subnormals
        np.float32([448, 456, 464, 464.0001, 472, 480, 1e30, -464, -465, 2.0 ** -10,
                    3 * 2.0 ** -10, 5 * 2.0 ** -11, 2.0 ** -6 - 2.0 ** -10, 1.0 + 2 ** -4,
                    1.0 + 3 * 2 ** -4, 0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45]),
    ])


@pytest.mark.parametrize("saturate", [False, True], ids=["cast", "saturating"])
def test_rounding_matches_ml_dtypes_bit_for_bit(conversions, saturate):
    values = _values()
    got = _narrow(conversions, values, saturate)
    want = _want(values, saturate)
    nan = np.isnan(values)
    np.testing.assert_array_equal(got[~nan], want[~nan])
    assert set(np.unique(got[nan] & 0x7F)) == {0x7F}  # NaN stays NaN, with its sign
    np.testing.assert_array_equal(got[nan] >> 7, np.signbit(values[nan]).astype(np.uint8))
