"""BF16 on the GPU target. CuPy has no bfloat16 arrays, so a BF16 tensor lives on the device
as its 16-bit patterns in a ``uint16`` array (TensorRT has no 16-bit integer type, so a
``uint16`` device array always means BF16 here). Tactics that compute in BF16 natively (the
cast layer, cuBLAS matrix products on BF16 tensor cores) take and give those arrays; every
other GPU tactic serves BF16 layers through its FP32 form: a derived tactic named
``"<tactic>@fp32"`` widens BF16 inputs to FLOAT (exact), runs the tactic on the layer's FLOAT
twin, and the runtime rounds the FLOAT outputs a BF16 tensor receives to BF16 (round to
nearest even, NaN kept quiet, as ml_dtypes rounds). The builder times both kinds as it times
any tactics, so BF16 tensor cores are used where a native tactic exists and wins.

Written without a GPU (2026-12-06); ``tests/gpu/test_bf16.py`` is its first check, and
``tests/engine/test_bf16_rounding.py`` checks the rounding's bit arithmetic against ml_dtypes.
"""

from __future__ import annotations

import copy
from typing import Any

import cupy
import ml_dtypes
import numpy as np

from engine.kernels.registry import Tactic, add_tactic, layer_types_supported, tactics_for
from engine.network.layer import ILayer, TensorInfo
from engine.types import DataType, Weights, nptype

STORAGE = np.dtype(np.uint16)  # a BF16 tensor's device array type
SUFFIX = "@fp32"

_WIDEN = cupy.ElementwiseKernel(
    "uint16 b", "float32 f", "f = __uint_as_float(((unsigned int)b) << 16)", "engine_bf16_widen")
# Round to nearest even; a NaN keeps its sign and top payload bits and stays quiet.
_NARROW = cupy.ElementwiseKernel(
    "T x", "uint16 b",
    """
    unsigned int u = __float_as_uint((float)x);
    if ((u & 0x7fffffffu) > 0x7f800000u) b = (unsigned short)((u >> 16) | 0x40u);
    else b = (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    """, "engine_bf16_narrow")


def storage_dtype(dtype: DataType) -> np.dtype:
    """The device array type of a tensor of ``dtype``."""
    return STORAGE if DataType(dtype) == DataType.BF16 else np.dtype(nptype(dtype))


def widen(bits: cupy.ndarray) -> cupy.ndarray:
    """BF16 patterns as FLOAT (exact)."""
    return _WIDEN(bits)


def narrow(values: cupy.ndarray) -> cupy.ndarray:
    """FLOAT or HALF values rounded to BF16 patterns."""
    return _NARROW(values)


def to_storage(value: cupy.ndarray, dtype: DataType) -> cupy.ndarray:
    """A kernel's result as a tensor of ``dtype`` holds it on the device."""
    if DataType(dtype) == DataType.BF16:
        return value if value.dtype == STORAGE else narrow(value)
    want = np.dtype(nptype(dtype))
    if value.dtype == want:
        return value
    if value.dtype == STORAGE:  # BF16 patterns read as another type
        value = widen(value)
    return value.astype(want)


def host_storage(array: np.ndarray) -> np.ndarray:
    """A host array as the device holds it (BF16 as its patterns)."""
    return array.view(np.uint16) if array.dtype == ml_dtypes.bfloat16 else array


# -- the FP32 form of BF16 layers ----------------------------------------------------------------
def _is_bf16(value: Any) -> bool:
    return isinstance(value, DataType) and value == DataType.BF16


def _float(dtype: Any) -> Any:
    return DataType.FLOAT if _is_bf16(dtype) else dtype


def float_twin(layer: ILayer) -> ILayer:
    """``layer`` with BF16 replaced by FLOAT in its requested output types, precision, type
    attributes and weights (made once per layer; its device constants are its own)."""
    twin = layer.__dict__.get("_float_twin")
    if twin is not None:
        return twin  # type: ignore[no-any-return]
    twin = copy.copy(layer)
    twin.__dict__["_output_types"] = {i: _float(t) for i, t in layer._output_types.items()}
    if getattr(layer, "_precision", None) == DataType.BF16:
        twin.__dict__["_precision"] = DataType.FLOAT
    for name in type(layer)._attributes:
        value = getattr(layer, name, None)
        if _is_bf16(value):
            twin.__dict__[name] = DataType.FLOAT
        elif isinstance(value, Weights) and value.dtype == DataType.BF16:
            twin.__dict__[name] = Weights(np.asarray(value.numpy()).astype(np.float32),
                                          name=value.name)
    twin.__dict__.pop("_float_twin", None)
    layer.__dict__["_float_twin"] = twin
    return twin


def forget_twin(layer: ILayer) -> None:
    """Drop ``layer``'s FLOAT twin (its weights changed: a refit)."""
    layer.__dict__.pop("_float_twin", None)


def _involves_bf16(layer: ILayer, infos: list[TensorInfo | None]) -> bool:
    return any(i is not None and i.dtype == DataType.BF16 for i in infos) or \
        any(_is_bf16(t) for t in layer._output_types.values()) or \
        any(_is_bf16(getattr(layer, name, None)) for name in type(layer)._attributes) or \
        any(isinstance(w, Weights) and w.dtype == DataType.BF16
            for w in (getattr(layer, name, None) for name in type(layer)._attributes))


def _float_info(info: TensorInfo | None) -> TensorInfo | None:
    if info is None or info.dtype != DataType.BF16:
        return info
    value = None if info.value is None else np.asarray(info.value).astype(np.float32)
    return TensorInfo(info.shape, DataType.FLOAT, value)


def _fallback(base: Tactic) -> Tactic:
    def supports(layer: ILayer, infos: list[TensorInfo | None]) -> bool:
        return _involves_bf16(layer, infos) and \
            base.accepts(float_twin(layer), [_float_info(i) for i in infos])

    def run(layer: ILayer, inputs: list[Any]) -> list[Any]:
        wide = [widen(a) if isinstance(a, cupy.ndarray) and a.dtype == STORAGE else a
                for a in inputs]
        return base.run(float_twin(layer), wide)

    run.timing_inputs = getattr(base.run, "timing_inputs", None) or (lambda a: a)  # type: ignore[attr-defined]
    return Tactic(base.backend, base.layer_type, base.name + SUFFIX, run, supports, base.source)


def register_float_fallbacks(backend: str = "gpu") -> None:
    """Add the ``@fp32`` form of every tactic of ``backend`` (once; after they register)."""
    for layer_type in layer_types_supported(backend):
        tactics = tactics_for(backend, layer_type)
        names = {t.name for t in tactics}
        for base in tactics:
            if not base.name.endswith(SUFFIX) and base.name + SUFFIX not in names:
                add_tactic(_fallback(base))
