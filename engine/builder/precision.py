"""Per-layer precision for weakly typed networks.

With ``BuilderFlag.FP16`` / ``BF16`` the builder may run a layer in HALF or BF16 instead of
FLOAT; it times the layers' fastest tactics at each allowed precision and the casts between
precisions, and chooses per connected region of such layers (data-moving layers such as
shuffles and slices follow their inputs) the precision with the least time, casts on the
region's boundary included, then moves single layers where their own gain exceeds the casts
that adds (optimization level 0: FLOAT). A layer's ``precision`` is honoured under
``OBEY_PRECISION_CONSTRAINTS`` (an error when no tactic runs it so) and preferred under
``PREFER_PRECISION_CONSTRAINTS`` (a warning and a fallback when none does). Cast layers are
inserted where precisions meet, and every tensor another layer or the user sees keeps its
original type. Strongly typed networks keep their types (``layer.precision`` is refused
there).
"""

from __future__ import annotations

from collections.abc import Callable

from engine.builder.config import BuilderFlag, DeviceType, IBuilderConfig
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
# Layers that move data without arithmetic: they follow their input into a lower precision.
FOLLOWING = frozenset({
    LayerType.SHUFFLE, LayerType.SLICE, LayerType.CONCATENATION, LayerType.GATHER,
    LayerType.SQUEEZE, LayerType.UNSQUEEZE, LayerType.PADDING, LayerType.IDENTITY,
    LayerType.SELECT,
})
# Layers that read only their input's shape: they need no cast.
INDIFFERENT = frozenset({LayerType.SHAPE})
FLOATS = (DataType.FLOAT, DataType.HALF, DataType.BF16)
# Relative difference under which timings count as equal.
TIE = 0.05
TIE_GPU = 0.5
# The least relative gain for which one layer leaves its region's precision (timings of
# small layers on the GPU measure the host's launches: their noise is larger than TIE).
MOVE_GAIN = 0.25

# (layer, input infos at that precision) -> milliseconds of its fastest tactic, or None
# when no tactic accepts the layer so.
TimeFn = Callable[[ILayer, list[TensorInfo | None]], "float | None"]


def _at(infos: list[TensorInfo | None], dtype: DataType) -> list[TensorInfo | None]:
    return [None if i is None else TensorInfo(i.shape, dtype, None) if i.dtype in FLOATS
            else i for i in infos]


def choose_precisions(network: INetworkDefinition, config: IBuilderConfig,
                      infos: dict[ITensor, TensorInfo], time: TimeFn,
                      logger: ILogger | None) -> dict[int, DataType]:
    """The precision chosen for each adjustable FLOAT layer (and each data-moving layer that
    follows its inputs into a lower precision), by ``id(layer)``.

    Reformats count: the layers free to change precision form connected regions (joined by
    the FLOAT tensors between them, data-moving layers included), and each region runs in the
    precision with the least total time, its layers' timed tactics plus the casts on its
    boundary (constant inputs cost nothing: their casts are folded). One sweep then moves a
    single layer to another precision where its own gain exceeds the casts that adds.
    """
    allowed = [DataType.FLOAT] + [d for flag, d in ((BuilderFlag.FP16, DataType.HALF),
                                                     (BuilderFlag.BF16, DataType.BF16))
                                  if config.get_flag(flag)]
    obey = config.get_flag(BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    prefer = config.get_flag(BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
    order = topological_order(network._layers)
    fixed: dict[int, DataType] = {}
    members: list[ILayer] = []
    for layer in order:
        inputs = _inputs_of(layer, infos)
        if not _is_member(layer, inputs):
            continue
        candidates = allowed
        if layer.precision_is_set and (obey or prefer) and layer.layer_type in ADJUSTABLE:
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
        if len(candidates) == 1 or config.builder_optimization_level == 0 or len(allowed) == 1:
            if layer.layer_type in ADJUSTABLE:
                fixed[id(layer)] = candidates[0]
            continue
        members.append(layer)
    chosen = dict(fixed)
    if not members:
        return chosen
    costs = _Costs(network, infos, time, members, fixed)
    regions = costs.regions()
    # Within ``tie`` of the fastest, the lower precision: on the GPU, timings of small layers
    # measure the host's launches (the device work hides behind them) and CUDA graph replays
    # still profit from FP16, so there the margin is wide.
    tie = TIE_GPU if config.default_device_type == DeviceType.GPU else TIE
    for region in regions:
        totals = [(costs.region_ms(region, d), d) for d in allowed]
        least = min(ms for ms, _ in totals)
        best = min(totals, key=lambda r: (r[0] > least * (1 + tie), r[1] == DataType.FLOAT,
                                          r[0]))[1]
        log(logger, Severity.VERBOSE, f"precision region of {len(region)} layers (from "
            f"'{region[0].name}'): " + ", ".join(f"{d.name} {ms:.3f} ms" for ms, d in totals)
            + f" -> {best.name}")
        for layer in region:
            costs.assign(layer, best if costs.ms(layer, best) is not None else DataType.FLOAT)
    for layer in members:  # one sweep of single-layer moves, each a clear gain
        here = costs.assigned[id(layer)]
        options = [(costs.layer_ms(layer, d), d) for d in allowed
                   if costs.ms(layer, d) is not None]
        best_ms, best = min(options, key=lambda r: (r[0], r[1] != here))
        if best != here and best_ms < costs.layer_ms(layer, here) * (1 - MOVE_GAIN):
            log(logger, Severity.VERBOSE, f"layer '{layer.name}' moves to {best.name}")
            costs.assign(layer, best)
    for layer in members:
        d = costs.assigned[id(layer)]
        if layer.layer_type in ADJUSTABLE or d != DataType.FLOAT:
            chosen[id(layer)] = d
    return chosen


def _inputs_of(layer: ILayer, infos: dict[ITensor, TensorInfo]) -> list[TensorInfo | None]:
    return [None if t is None else infos[t] for t in layer._inputs]


def _is_member(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    """A layer whose precision the builder may change: an adjustable layer with a FLOAT
    input, or a data-moving layer with a FLOAT input whose outputs follow their input."""
    if not any(i is not None and i.dtype == DataType.FLOAT for i in inputs):
        return False
    if layer.layer_type in ADJUSTABLE:
        return True
    return layer.layer_type in FOLLOWING and not layer._output_types


class _Costs:
    """Time of the member layers at each precision and of the casts between them."""

    def __init__(self, network: INetworkDefinition, infos: dict[ITensor, TensorInfo],
                 time: TimeFn, members: list[ILayer], fixed: dict[int, DataType]) -> None:
        self.network = network
        self.infos = infos
        self.time = time
        self.members = {id(layer): layer for layer in members}
        self.fixed = fixed
        self.assigned: dict[int, DataType] = {id(layer): DataType.FLOAT for layer in members}
        self._ms: dict[tuple[int, DataType], float | None] = {}
        self._casts: dict[tuple[tuple[int, ...], DataType, DataType], float] = {}
        self.outputs = set(network._outputs)

    def ms(self, layer: ILayer, dtype: DataType) -> float | None:
        key = (id(layer), dtype)
        if key not in self._ms:
            self._ms[key] = self.time(layer, _at(_inputs_of(layer, self.infos), dtype))
        return self._ms[key]

    def cast_ms(self, tensor: ITensor, source: DataType, target: DataType) -> float:
        info = self.infos[tensor]
        if source == target or info.dtype not in FLOATS:
            return 0.0
        key = (tuple(info.shape), source, target)
        if key not in self._casts:
            probe = ICastLayer(self.network, tensor, target)
            measured = self.time(probe, [TensorInfo(info.shape, source, None)])
            self._casts[key] = 0.0 if measured is None else measured
        return self._casts[key]

    def produced_in(self, tensor: ITensor) -> DataType | None:
        """The precision ``tensor`` is produced in; None for constants (casts fold)."""
        producer = tensor._producer
        if producer is None:
            return self.infos[tensor].dtype
        if producer.layer_type == LayerType.CONSTANT:
            return None
        if id(producer) in self.members and self.infos[tensor].dtype == DataType.FLOAT \
                and tensor._index not in producer._output_types:
            return self.assigned[id(producer)]
        if id(producer) in self.fixed and self.infos[tensor].dtype == DataType.FLOAT:
            return self.fixed[id(producer)]
        return self.infos[tensor].dtype

    def read_in(self, layer: ILayer, tensor: ITensor) -> DataType | None:
        """The precision ``layer`` reads ``tensor`` in; None if it does not care."""
        if layer.layer_type in INDIFFERENT:
            return None
        if id(layer) in self.members:
            return self.assigned[id(layer)]
        return self.fixed.get(id(layer), self.infos[tensor].dtype)

    def float_inputs(self, layer: ILayer) -> list[ITensor]:
        return list(dict.fromkeys(t for t in layer._inputs
                                  if t is not None and self.infos[t].dtype in FLOATS))

    def float_outputs(self, layer: ILayer) -> list[ITensor]:
        return [t for t in layer._outputs if self.infos[t].dtype == DataType.FLOAT
                and t._index not in layer._output_types]

    def readers(self, tensor: ITensor) -> list[DataType]:
        wanted = [d for reader, _ in self.network._consumers_of(tensor)
                  if (d := self.read_in(reader, tensor)) is not None]
        if tensor in self.outputs:
            wanted.append(self.infos[tensor].dtype)
        return list(dict.fromkeys(wanted))

    def layer_ms(self, layer: ILayer, dtype: DataType) -> float:
        """``layer`` at ``dtype`` with the casts of its inputs and outputs to and from its
        neighbours' precisions as they are assigned now."""
        total = self.ms(layer, dtype) or 0.0
        for tensor in self.float_inputs(layer):
            source = self.produced_in(tensor)
            if source is not None:
                total += self.cast_ms(tensor, source, dtype)
        for tensor in self.float_outputs(layer):
            total += sum(self.cast_ms(tensor, dtype, d) for d in self.readers(tensor))
        return total

    def assign(self, layer: ILayer, dtype: DataType) -> None:
        self.assigned[id(layer)] = dtype

    def regions(self) -> list[list[ILayer]]:
        """Members joined by the FLOAT tensors one produces and another reads."""
        parent = {key: key for key in self.members}

        def root(key: int) -> int:
            while parent[key] != key:
                parent[key] = parent[parent[key]]
                key = parent[key]
            return key

        for layer in self.members.values():
            for tensor in self.float_outputs(layer):
                for reader, _ in self.network._consumers_of(tensor):
                    if id(reader) in self.members:
                        parent[root(id(reader))] = root(id(layer))
        groups: dict[int, list[ILayer]] = {}
        for key, layer in self.members.items():
            groups.setdefault(root(key), []).append(layer)
        return list(groups.values())

    def region_ms(self, region: list[ILayer], dtype: DataType) -> float:
        """The region's layers at ``dtype`` (FLOAT where no tactic runs one so) and the casts
        on its boundary."""
        for layer in region:
            self.assign(layer, dtype if self.ms(layer, dtype) is not None else DataType.FLOAT)
        inside = {id(layer) for layer in region}
        total = 0.0
        for layer in region:
            here = self.assigned[id(layer)]
            total += self.ms(layer, here) or 0.0
            for tensor in self.float_inputs(layer):
                source = self.produced_in(tensor)
                producer = tensor._producer
                if source is not None and (producer is None or id(producer) not in inside):
                    total += self.cast_ms(tensor, source, here)
            for tensor in self.float_outputs(layer):
                wanted = [d for reader, _ in self.network._consumers_of(tensor)
                          if id(reader) not in inside
                          and (d := self.read_in(reader, tensor)) is not None]
                if tensor in self.outputs:
                    wanted.append(self.infos[tensor].dtype)
                total += sum(self.cast_ms(tensor, here, d) for d in dict.fromkeys(wanted))
                total += sum(self.cast_ms(tensor, here, self.assigned[id(reader)])
                             for reader, _ in self.network._consumers_of(tensor)
                             if id(reader) in inside)
        return total


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
            if current[tensor] != target and layer.layer_type not in INDIFFERENT:
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
            restored.location = tensor.location
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
