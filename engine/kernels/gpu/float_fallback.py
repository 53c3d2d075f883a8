"""The FLOAT form of GPU tactics, which serves layers with BF16 or FP8 tensors where no tactic
computes in those types natively (CuPy has neither; the device holds their bit patterns, see
``storage.py``). A derived tactic named ``"<tactic>@fp32"`` widens BF16 and FP8 inputs to
FLOAT (exact), runs the tactic on the layer's FLOAT twin, and the runtime rounds the FLOAT
outputs a BF16 or FP8 tensor receives to that type (``storage.to_storage``: round to nearest
even, as ml_dtypes and so the CPU target round). The builder times both kinds as it times any
tactics, so native BF16 tensor-core tactics are used where they exist and win.

FP8 tensors of the quantization layers (quantize, dequantize, the quantized convolution and
matrix multiply) are codes with a scale, not values: those layers have no FLOAT form for
them and take FP8 only through their own tactics (``fp8.py``, ``quantized.py``).
"""

from __future__ import annotations

import copy
from typing import Any

import cupy
import numpy as np

from engine.kernels.gpu import bf16, fp8
from engine.kernels.gpu.capabilities import host_synchronizing, is_capturable
from engine.kernels.registry import Tactic, add_tactic, layer_types_supported, tactics_for
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.types import DataType, Weights

SUFFIX = "@fp32"
_NARROW_FLOATS = frozenset({DataType.BF16, DataType.FP8})
_CODE_LAYERS = frozenset({LayerType.QUANTIZE, LayerType.DEQUANTIZE,
                          LayerType.QUANTIZED_CONVOLUTION,
                          LayerType.FUSED_QUANTIZED_CONVOLUTION,
                          LayerType.QUANTIZED_MATRIX_MULTIPLY})


def _replaced(layer: ILayer) -> frozenset[DataType]:
    """The types ``layer``'s FLOAT form replaces (BF16 only where FP8 means codes)."""
    return frozenset({DataType.BF16}) if layer.layer_type in _CODE_LAYERS else _NARROW_FLOATS


def _float(dtype: Any, replaced: frozenset[DataType]) -> Any:
    return DataType.FLOAT if isinstance(dtype, DataType) and dtype in replaced else dtype


def float_twin(layer: ILayer) -> ILayer:
    """``layer`` with BF16 and FP8 replaced by FLOAT in its requested output types,
    precision, type attributes and weights (made once per layer; its device constants are its
    own)."""
    twin = layer.__dict__.get("_float_twin")
    if twin is not None:
        return twin  # type: ignore[no-any-return]
    replaced = _replaced(layer)
    twin = copy.copy(layer)
    twin.__dict__["_output_types"] = {i: _float(t, replaced)
                                      for i, t in layer._output_types.items()}
    if _float(getattr(layer, "_precision", None), replaced) == DataType.FLOAT:
        twin.__dict__["_precision"] = DataType.FLOAT
    for name in type(layer)._attributes:
        value = getattr(layer, name, None)
        if isinstance(value, DataType) and value in replaced:
            twin.__dict__[name] = DataType.FLOAT
        elif isinstance(value, Weights) and value.dtype in replaced:
            twin.__dict__[name] = Weights(np.asarray(value.numpy()).astype(np.float32),
                                          name=value.name)
    twin.__dict__.pop("_float_twin", None)
    layer.__dict__["_float_twin"] = twin
    return twin


def forget_twin(layer: ILayer) -> None:
    """Drop ``layer``'s FLOAT twin (its weights changed: a refit)."""
    layer.__dict__.pop("_float_twin", None)


def _served(layer: ILayer, infos: list[TensorInfo | None]) -> bool:
    """Whether ``layer`` has BF16 or FP8 tensors, types or weights its FLOAT form serves."""
    narrow = _replaced(layer)
    attributes = [getattr(layer, name, None) for name in type(layer)._attributes]
    return any(i is not None and i.dtype in narrow for i in infos) or \
        any(t in narrow for t in layer._output_types.values()) or \
        any(isinstance(v, DataType) and v in narrow for v in attributes) or \
        any(isinstance(v, Weights) and v.dtype in narrow for v in attributes)


def _float_info(info: TensorInfo | None, replaced: frozenset[DataType]
                ) -> TensorInfo | None:
    if info is None or info.dtype not in replaced:
        return info
    value = None if info.value is None else np.asarray(info.value).astype(np.float32)
    return TensorInfo(info.shape, DataType.FLOAT, value)


def _widened(tensor: Any, value: Any, replaced: frozenset[DataType]) -> Any:
    """An input as FLOAT if it holds BF16 or FP8 patterns (FP8 as its tensor's type says)."""
    if not isinstance(value, cupy.ndarray):
        return value
    if value.dtype == bf16.STORAGE:
        return bf16.widen(value)
    if value.dtype == fp8.STORAGE and tensor is not None and tensor.dtype == DataType.FP8 \
            and DataType.FP8 in replaced:
        return fp8.widen(value)
    return value


def _fallback(base: Tactic) -> Tactic:
    def supports(layer: ILayer, infos: list[TensorInfo | None]) -> bool:
        return _served(layer, infos) and \
            base.accepts(float_twin(layer), [_float_info(i, _replaced(layer)) for i in infos])

    def run(layer: ILayer, inputs: list[Any]) -> list[Any]:
        replaced = _replaced(layer)
        wide = [_widened(t, a, replaced) for t, a in zip(layer._inputs, inputs)]
        return base.run(float_twin(layer), wide + list(inputs[len(wide):]))

    run.timing_inputs = getattr(base.run, "timing_inputs", None) or (lambda a: a)  # type: ignore[attr-defined]
    if not is_capturable(base.run):  # reads the device on the host, as its base does
        host_synchronizing(run)
    return Tactic(base.backend, base.layer_type, base.name + SUFFIX, run, supports, base.source)


def register_float_fallbacks(backend: str = "gpu") -> None:
    """Add the ``@fp32`` form of every tactic of ``backend`` (once; after they register)."""
    for layer_type in layer_types_supported(backend):
        tactics = tactics_for(backend, layer_type)
        names = {t.name for t in tactics}
        for base in tactics:
            if not base.name.endswith(SUFFIX) and base.name + SUFFIX not in names:
                add_tactic(_fallback(base))
