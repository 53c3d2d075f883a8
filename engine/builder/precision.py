"""Per-layer precision for weakly typed networks.

With ``BuilderFlag.FP16`` / ``BF16`` the builder may run a layer in HALF or BF16 instead of
FLOAT; it times the layer's fastest tactic at each allowed precision and keeps the fastest
(optimization level 0: FLOAT). A layer's ``precision`` is honoured under
``OBEY_PRECISION_CONSTRAINTS`` (an error when no tactic runs it so) and preferred under
``PREFER_PRECISION_CONSTRAINTS`` (a warning and a fallback when none does). Cast layers are
inserted where precisions meet, and every tensor another layer or the user sees keeps its
original type. Strongly typed networks keep their types (``layer.precision`` is refused
there).
"""

from __future__ import annotations

from collections.abc import Callable

from engine.builder.config import BuilderFlag, IBuilderConfig
from engine.errors import BuildError
from engine.logger import ILogger, Severity, log
from engine.network.definition import INetworkDefinition
from engine.network.inference import infer_all, topological_order
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.math_pointwise import ICastLayer
from engine.network.tensor import ITensor
from engine.types import DataType

# Layers that compute in the type of their float inputs and may change precision.
ADJUSTABLE = frozenset({
    LayerType.CONVOLUTION, LayerType.DECONVOLUTION, LayerType.MATRIX_MULTIPLY,
    LayerType.ELEMENTWISE, LayerType.ACTIVATION, LayerType.UNARY, LayerType.POOLING,
    LayerType.SOFTMAX, LayerType.REDUCE, LayerType.NORMALIZATION, LayerType.SCALE,
    LayerType.FUSED_CONVOLUTION, LayerType.FUSED_MATRIX_MULTIPLY, LayerType.FUSED_POINTWISE,
    LayerType.FUSED_RMS_NORMALIZATION, LayerType.FUSED_ATTENTION,
})
FLOATS = (DataType.FLOAT, DataType.HALF, DataType.BF16)

# (layer, input infos at that precision) -> milliseconds of its fastest tactic, or None
# when no tactic accepts the layer so.
TimeFn = Callable[[ILayer, list[TensorInfo | None]], "float | None"]


def _at(infos: list[TensorInfo | None], dtype: DataType) -> list[TensorInfo | None]:
    return [None if i is None else TensorInfo(i.shape, dtype, None) if i.dtype in FLOATS
            else i for i in infos]


def choose_precisions(network: INetworkDefinition, config: IBuilderConfig,
                      infos: dict[ITensor, TensorInfo], time: TimeFn,
                      logger: ILogger | None) -> dict[int, DataType]:
    """The precision chosen for each adjustable FLOAT layer, by ``id(layer)``."""
    allowed = [DataType.FLOAT] + [d for flag, d in ((BuilderFlag.FP16, DataType.HALF),
                                                     (BuilderFlag.BF16, DataType.BF16))
                                  if config.get_flag(flag)]
    obey = config.get_flag(BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    prefer = config.get_flag(BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
    chosen: dict[int, DataType] = {}
    for layer in topological_order(network._layers):
        inputs = [None if t is None else infos[t] for t in layer._inputs]
        if layer.layer_type not in ADJUSTABLE or not any(
                i is not None and i.dtype == DataType.FLOAT for i in inputs):
            continue
        candidates = allowed
        if layer.precision_is_set and (obey or prefer):
            wanted = layer.precision
            if time(layer, _at(inputs, wanted)) is not None:
                candidates = [wanted]
            elif obey:
                raise BuildError(f"layer '{layer.name}' ({layer.layer_type.name}): precision "
                                 f"{wanted.name} is required (OBEY_PRECISION_CONSTRAINTS) but "
                                 f"no tactic runs it in {wanted.name}")
            else:
                log(logger, Severity.WARNING,
                    f"layer '{layer.name}': no tactic runs it in {wanted.name}; "
                    f"PREFER_PRECISION_CONSTRAINTS falls back to choosing among "
                    f"{[d.name for d in allowed]}")
        if len(candidates) == 1 or config.builder_optimization_level == 0:
            chosen[id(layer)] = candidates[0]
            continue
        timings = [(ms, d) for d in candidates
                   if (ms := time(layer, _at(inputs, d))) is not None]
        chosen[id(layer)] = min(timings, key=lambda r: r[0])[1] if timings else DataType.FLOAT
    return chosen


def apply_precisions(network: INetworkDefinition, chosen: dict[int, DataType],
                     infos: dict[ITensor, TensorInfo]) -> int:
    """Insert casts so that each layer in ``chosen`` reads its float inputs in its precision
    and every other reader (and the user) sees the original types; returns the casts added."""
    current: dict[ITensor, DataType] = {t: i.dtype for t, i in infos.items()}
    casts: dict[tuple[ITensor, DataType], ITensor] = {}

    def cast(tensor: ITensor, dtype: DataType) -> ITensor:
        key = (tensor, dtype)
        if key not in casts:
            layer = ICastLayer(network, tensor, dtype)
            layer.name = f"{tensor.name} [reformat {dtype.name}]"
            network._layers.append(layer)
            network._link(layer)
            casts[key] = layer._outputs[0]
            current[casts[key]] = dtype
        return casts[key]

    for layer in topological_order(network._layers):
        want = chosen.get(id(layer))
        for index, tensor in enumerate(layer._inputs):
            if tensor is None or infos[tensor].dtype not in FLOATS:
                continue
            target = want if want is not None else infos[tensor].dtype
            if current[tensor] != target:
                layer._inputs[index] = cast(tensor, target)
        network._relink(layer)
        if want is not None:
            for number, out in enumerate(layer._outputs):
                if infos[out].dtype == DataType.FLOAT and number not in layer._output_types:
                    current[out] = want
    for index, tensor in enumerate(list(network._outputs)):
        if current[tensor] != infos[tensor].dtype:
            restored = cast(tensor, infos[tensor].dtype)
            name = tensor.name
            tensor.name = name + " [compute]"
            restored.name = name
            network._outputs[index] = restored
    network._cache.clear()
    return len(casts)


def layer_precisions(order: list[ILayer], infos: dict[ITensor, TensorInfo]) -> list[str]:
    """The precision each layer runs in: its first float input's type (else its output's)."""
    result = []
    for layer in order:
        floats = [infos[t].dtype for t in layer._inputs if t is not None
                  and infos[t].dtype in FLOATS]
        outs = [infos[t].dtype for t in layer._outputs]
        result.append((floats or outs or [DataType.FLOAT])[0].name)
    return result


def infer_types(network: INetworkDefinition) -> dict[ITensor, TensorInfo]:
    order = topological_order(network._layers)
    return infer_all(order, {t: TensorInfo(tuple(t.shape), t.dtype) for t in network._inputs})
