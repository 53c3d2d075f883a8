"""FP8 (E4M3, TensorRT's ``DataType.FP8``) on the GPU target. CuPy has no float8 arrays, so an
FP8 tensor lives on the device as its 8-bit patterns in a ``uint8`` array; which tensors are
FP8 the engine knows from their types (a ``uint8`` array alone is UINT8 or FP8 patterns).

The two conversions are C functions (``engine.kernels.fp8_source.CONVERSIONS``) that every FP8
kernel includes:

- ``engine_fp8_to_float``: exact (every E4M3 value is a float32; 0x7f / 0xff are NaN);
- ``engine_float_to_fp8``: round to nearest even, as ml_dtypes (and so the CPU target)
  rounds. E4M3 has no infinity: a value past the largest finite one (448; 464 rounds down to
  it, as the tie goes to the even code) becomes NaN, as a cast does, or 448 with the sign
  when ``saturate`` is set, as the quantize layer does (it clips to [-448, 448] first).

They use nothing but integer arithmetic, ``rintf`` and the bit casts, so the same source
compiles on the host too: ``tests/engine/test_fp8_conversions.py`` builds it with the C
compiler and checks it against ml_dtypes.
The quantize, dequantize and cast kernels are here; the quantized convolution and matrix
multiply on FP8 codes are in ``quantized.py`` (FP16 tensor cores on the widened codes, and
FP8 tensor cores through cuBLASLt).

Written without a GPU (2026-12-06); ``tests/gpu/test_fp8.py`` is its first check.
"""

from __future__ import annotations

from typing import Any

import cupy
import numpy as np

from engine.kernels.fp8_source import CONVERSIONS
from engine.kernels.gpu import bf16
from engine.kernels.gpu.capabilities import DEVICE_TYPES
from engine.kernels.gpu.shape_quantize import quantize_pointwise
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.math_pointwise import ICastLayer
from engine.network.layers.shape_quantize import IDequantizeLayer, IQuantizeLayer
from engine.types import DataType, nptype

STORAGE = np.dtype(np.uint8)  # an FP8 tensor's device array type

_WIDEN = cupy.ElementwiseKernel("uint8 b", "float32 f", "f = engine_fp8_to_float(b)",
                                "engine_fp8_widen", preamble=CONVERSIONS)
_NARROW = cupy.ElementwiseKernel("T x", "uint8 b", "b = engine_float_to_fp8((float)x, 0)",
                                 "engine_fp8_narrow", preamble=CONVERSIONS)
# The quantize layer's arithmetic (engine.kernels.cpu.shape_quantize): x / scale in float32,
# clipped to [-448, 448], plus the zero point and clipped again, then rounded once. The
# saturating conversion clips and rounds in one step; NaN passes (as np.clip lets it).
_QUANTIZE = cupy.ElementwiseKernel(
    "T x, float32 s, float32 z", "uint8 q",
    """
    float v = (float)x / s;
    if (z != 0.f) v = (v > 448.f ? 448.f : (v < -448.f ? -448.f : v)) + z;
    q = engine_float_to_fp8(v, 1);
    """, "engine_quantize_fp8", preamble=CONVERSIONS)
_DEQUANTIZE = cupy.ElementwiseKernel(
    "uint8 q, float32 s, float32 z", "T x", "x = (T)((engine_fp8_to_float(q) - z) * s);",
    "engine_dequantize_fp8", preamble=CONVERSIONS)


def widen(bits: cupy.ndarray) -> cupy.ndarray:
    """FP8 patterns as FLOAT (exact)."""
    return _WIDEN(bits)


def widen_half(bits: cupy.ndarray) -> cupy.ndarray:
    """FP8 patterns as FLOAT16 (exact: E4M3's range and precision lie within FP16's)."""
    return _WIDEN(bits).astype(cupy.float16)


def narrow(values: cupy.ndarray) -> cupy.ndarray:
    """FLOAT or HALF values cast to FP8 patterns (round to nearest even; NaN past 448)."""
    return _NARROW(values)


# -- quantize and dequantize -------------------------------------------------------------------
def _real(info: TensorInfo | None) -> bool:
    return info is not None and info.dtype in (DataType.FLOAT, DataType.HALF)


def _fp8_codes(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    """A quantize to FP8 of FLOAT or HALF, or a dequantize of FP8 to FLOAT or HALF, with float
    scales (and zero points)."""
    scales = [i for i in inputs[1:] if i is not None]
    if any(i.dtype not in (DataType.FLOAT, DataType.HALF) for i in scales):
        return False
    if isinstance(layer, IQuantizeLayer):
        return DataType(layer.to_type) == DataType.FP8 and _real(inputs[0])
    if isinstance(layer, IDequantizeLayer):
        x = inputs[0]
        return x is not None and x.dtype == DataType.FP8 and \
            DataType(layer.to_type) in (DataType.FLOAT, DataType.HALF)
    return False


@kernel(LayerType.QUANTIZE, backend="gpu", name="gpu.quantize_fp8", supports=_fp8_codes)
def quantize(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IQuantizeLayer)
    return [quantize_pointwise(_QUANTIZE, layer, inputs, STORAGE)]


@kernel(LayerType.DEQUANTIZE, backend="gpu", name="gpu.dequantize_fp8", supports=_fp8_codes)
def dequantize(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IDequantizeLayer)
    return [quantize_pointwise(_DEQUANTIZE, layer, inputs, nptype(layer.to_type))]


# -- cast ----------------------------------------------------------------------------------------
_CAST_PARTNERS = (DEVICE_TYPES - {DataType.UINT8}) | {DataType.BF16, DataType.FP8}


def _casts_fp8(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, ICastLayer)
    x = inputs[0]
    return x is not None and DataType.FP8 in (x.dtype, DataType(layer.to_type)) and \
        x.dtype in _CAST_PARTNERS and DataType(layer.to_type) in _CAST_PARTNERS


@kernel(LayerType.CAST, backend="gpu", name="gpu.cast_fp8", supports=_casts_fp8)
def cast(layer: ILayer, inputs: list[Any]) -> list[cupy.ndarray]:
    """Casts to and from FP8, as the CPU target's (ml_dtypes) casts: from FP8 widened exactly
    then converted (to integers truncating, to BOOL ``!= 0``, to BF16 rounded), to FP8 from
    the value as float32 (integers and BF16 converted exactly or rounded to float32 first)."""
    assert isinstance(layer, ICastLayer)
    x = inputs[0]
    source = DataType(layer._inputs[0].dtype)  # type: ignore[union-attr]
    target = DataType(layer.to_type)
    if source == DataType.FP8:
        if target == DataType.FP8:
            return [x]
        values = widen(x)
        if target == DataType.BOOL:
            return [values != 0]
        return [bf16.narrow(values) if target == DataType.BF16 else
                values.astype(nptype(target))]
    if source == DataType.BF16:
        x = bf16.widen(x)
    elif x.dtype not in (cupy.float32, cupy.float16):
        x = x.astype(cupy.float32)
    return [narrow(x)]
