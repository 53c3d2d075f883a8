"""From a network definition and a builder configuration to plan bytes.

The steps: validate the I/O and the profiles, clone the network, run the graph passes, infer
shapes at the profiles' shapes, choose a tactic per layer, plan activation memory, and write
the plan.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from engine.builder.compatibility import compatibility_header, passes_for, refittable_names
from engine.builder.config import BuilderFlag, DeviceType, IBuilderConfig
from engine.builder.memory import plan_memory
from engine.builder.multi_profile import (
    infos_per_profile,
    io_location,
    largest_sizes,
    profile_shape_values,
)
from engine.builder.passes.constant_folding import fold_constants
from engine.builder.passes.context import PassContext
from engine.builder.passes.dead_layers import eliminate_dead_layers
from engine.builder.pipeline import run_passes
from engine.builder.precision import (
    apply_precisions,
    choose_precisions,
    infer_types,
    layer_precisions,
)
from engine.builder.profile import IOptimizationProfile
from engine.builder.progress import BuildProgress
from engine.builder.timing import sample_inputs, time_tactics
from engine.builder.timing_cache import ITimingCache, TimingRecord, layer_signature
from engine.errors import BuildError, NetworkError
from engine.kernels import choices
from engine.kernels.backends import gpu_available, load_backend
from engine.kernels.cpu.blas_threads import one_blas_thread
from engine.kernels.math_mode import allow_tf32
from engine.kernels.registry import Tactic, tactics_for
from engine.logger import ILogger, Severity, log
from engine.network.definition import INetworkDefinition
from engine.network.inference import infer_all, topological_order
from engine.network.layer import ILayer, TensorInfo
from engine.network.serialize import decode_network, encode_network
from engine.network.tensor import ITensor
from engine.network.weight_names import strip_predicate
from engine.plan.format import write_plan
from engine.plugins.build_phase import configure_plugin_layers
from engine.types import nbytes_of
from engine.version import __version__


def target_description(device_type: DeviceType) -> dict[str, Any]:
    """What a plan built for ``device_type`` on this machine records as its target."""
    if device_type == DeviceType.CPU:
        return {"backend": "cpu", "machine": platform.machine()}
    if device_type == DeviceType.GPU:
        if not gpu_available():
            raise BuildError("the GPU target was requested (config.default_device_type = "
                             "DeviceType.GPU) but no CUDA device and CuPy are usable here; use "
                             "DeviceType.CPU")
        from engine.kernels.gpu.device import describe_device  # type: ignore[import-not-found]

        return {"backend": "gpu", **describe_device()}
    raise BuildError(f"device type {device_type.name} is not supported by this engine")


def device_key(device_type: DeviceType) -> str:
    """The device a timing belongs to: CPU architecture, or GPU name and compute capability."""
    target = target_description(device_type)
    if target["backend"] == "cpu":
        return f"cpu:{target['machine']}"
    return f"gpu:{target.get('device_name')}:{target.get('compute_capability')}"


def _profile_shapes(
    network: INetworkDefinition, profiles: list[IOptimizationProfile]
) -> list[dict[str, list[list[int]]]]:
    """Per profile, [min, opt, max] for every input; validated against the declared shapes."""
    dynamic = [t for t in network._inputs if any(d < 0 for d in t.shape)]
    if dynamic and not profiles:
        names = ", ".join(f"'{t.name}' {tuple(t.shape)}" for t in dynamic)
        raise BuildError(f"network has dynamic inputs ({names}) but the builder config has no "
                         f"optimization profile: create one with "
                         f"builder.create_optimization_profile(), call profile.set_shape(name, "
                         f"min, opt, max) for each, then config.add_optimization_profile(profile)")
    result = []
    for index, profile in enumerate(profiles or [IOptimizationProfile()]):
        shapes: dict[str, list[list[int]]] = {}
        for t in network._inputs:
            declared = tuple(t.shape)
            got = profile.get_shape(t.name)
            if not got:
                if any(d < 0 for d in declared):
                    raise BuildError(f"optimization profile {index} has no shapes for dynamic "
                                     f"input '{t.name}' {declared}: call profile.set_shape"
                                     f"('{t.name}', min, opt, max)")
                shapes[t.name] = [list(declared)] * 3
                continue
            for label, dims in zip(("min", "opt", "max"), got):
                if len(dims) != len(declared) or any(
                        d >= 0 and d != p for d, p in zip(declared, dims)):
                    raise BuildError(f"optimization profile {index}, input '{t.name}': {label} "
                                     f"shape {tuple(dims)} does not fit the declared shape "
                                     f"{declared}")
            shapes[t.name] = [list(d) for d in got]
        unknown = set(profile.inputs()) - {t.name for t in network._inputs}
        if unknown:
            raise BuildError(f"optimization profile {index} names tensors that are not network "
                             f"inputs: {sorted(unknown)}")
        result.append(shapes)
    return result


def _check_io(network: INetworkDefinition) -> None:
    if not network._outputs:
        raise BuildError("network has no outputs: mark at least one tensor with "
                         "network.mark_output(tensor)")
    names = [t.name for t in network._inputs + network._outputs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BuildError(f"network I/O tensor names must be unique; repeated: {dupes}")


def _debug_names(network: INetworkDefinition) -> list[str]:
    """Names of the network's debug tensors (``mark_debug``), which must be unique."""
    names = [t.name for t in network._debug]
    produced = [t.name for layer in network._layers for t in layer._outputs]
    repeated = sorted({n for n in names if produced.count(n) > 1})
    if repeated:
        raise BuildError(f"debug tensor names must be unique in the network; repeated: "
                         f"{repeated}")
    return names


class _TacticChooser:
    """Chooses a tactic per layer: the only valid one, the first (optimization level 0), the
    one the timing cache remembers, or the fastest when timed."""

    def __init__(self, config: IBuilderConfig, backend: str, logger: ILogger | None) -> None:
        self.config = config
        self.backend = backend
        self.logger = logger
        self.device = device_key(config.default_device_type)
        use_cache = not config.get_flag(BuilderFlag.DISABLE_TIMING_CACHE)
        cache = config.get_timing_cache()
        self.cache = (ITimingCache() if cache is None else cache) if use_cache else None
        self.module = load_backend(backend)
        self.timed = 0
        self.cache_hits = 0

    def allowed(self, tactic: Tactic) -> bool:
        return bool(self.config.tactic_source_enabled(tactic.source))

    def choose(self, layer: ILayer, inputs: list[TensorInfo | None]) -> Tactic:
        candidates = [t for t in tactics_for(self.backend, layer.layer_type)
                      if t.accepts(layer, inputs) and self.allowed(t)]
        if not candidates:
            raise BuildError(f"layer '{layer.name}' ({layer.layer_type.name}): no {self.backend} "
                             f"tactic supports it (with the enabled tactic sources) for inputs "
                             f"{[None if i is None else (i.shape, i.dtype.name) for i in inputs]}")
        if len(candidates) == 1 or self.config.builder_optimization_level == 0:
            return candidates[0]
        return self.fastest(layer, inputs, candidates)[0]

    def fastest(self, layer: ILayer, inputs: list[TensorInfo | None],
                candidates: list[Tactic]) -> tuple[Tactic, float | None]:
        """The fastest of ``candidates`` and its milliseconds: from the timing cache where it
        holds this layer and inputs, else timed and stored. Precision selection asks it too,
        so a rebuild from a warm cache times nothing, and tactic selection finds the layers
        already timed at the precision chosen."""
        key = layer_signature(layer, inputs, self.backend, self.device)
        if self.cache is not None:
            record = self.cache._lookup(key)
            if record is not None:
                for tactic in candidates:
                    if tactic.name == record.tactic:
                        self.cache_hits += 1
                        return tactic, record.milliseconds
            if self.config.get_flag(BuilderFlag.ERROR_ON_TIMING_CACHE_MISS):
                raise BuildError(f"layer '{layer.name}' ({layer.layer_type.name}): timing cache "
                                 f"miss and BuilderFlag.ERROR_ON_TIMING_CACHE_MISS is set")
        best, best_ms = self.time(layer, inputs, candidates)
        if self.cache is not None and best_ms is not None:
            self.cache._store(key, TimingRecord(best.name, best_ms))
        return best, best_ms

    def time(self, layer: ILayer, inputs: list[TensorInfo | None],
             candidates: list[Tactic]) -> tuple[Tactic, float | None]:
        host = sample_inputs(inputs)
        if host is None:
            return candidates[0], None
        args = [None if a is None else self.module.to_device(a) for a in host]
        results: list[tuple[float, Tactic]] = []
        # Timed as the CPU target runs: one BLAS thread (engine.kernels.cpu.blas_threads).
        with one_blas_thread() if self.backend == "cpu" else nullcontext():
            timings = time_tactics(candidates, layer, args, self.config.avg_timing_iterations,
                                   self.module.synchronize,
                                   getattr(self.module, "device_milliseconds", None))
        for tactic, ms in timings:
            if isinstance(ms, Exception):  # a tactic that fails is not a candidate
                log(self.logger, Severity.VERBOSE,
                    f"layer '{layer.name}': tactic {tactic.name} failed while timing: {ms}")
                continue
            log(self.logger, Severity.VERBOSE,
                f"layer '{layer.name}': tactic {tactic.name} {ms:.4f} ms")
            results.append((ms, tactic))
        self.timed += 1
        if not results:
            return candidates[0], None
        ms, tactic = min(results, key=lambda r: r[0])
        return tactic, ms


def build_plan(network: INetworkDefinition, config: IBuilderConfig, logger: ILogger | None,
               plan_type: Callable[[int], Any] = bytearray) -> Any:
    """Build ``network`` with ``config`` into a plan, written into ``plan_type(size)`` (see
    ``write_plan``); raises ``BuildError``. The choices tactics make while they are timed
    (``engine.kernels.choices``: cuDNN's execution plans) go into the plan; tactics time
    such candidates only above optimization level 0."""
    with choices.recording(tune=config.builder_optimization_level > 0) as made, \
            allow_tf32(config.get_flag(BuilderFlag.TF32)):  # tactics timed as they will run
        return _build_plan(network, config, logger, plan_type, made)


def _build_plan(network: INetworkDefinition, config: IBuilderConfig, logger: ILogger | None,
                plan_type: Callable[[int], Any], kernel_choices: dict[str, str]) -> Any:
    _check_io(network)
    target = target_description(config.default_device_type)
    backend = target["backend"]
    load_backend(backend)
    profiles = _profile_shapes(network, config._profiles)
    shape_values = profile_shape_values(network, config._profiles)
    compatibility = compatibility_header(config, target)
    marked = refittable_names(config, network)
    if marked is not None:
        compatibility["refittable_weights"] = marked

    debug_names = _debug_names(network)
    try:
        order = topological_order(network._layers)
        record, arrays = encode_network(network, order)
        clone, _ = decode_network(record, arrays)
    except NetworkError as exc:
        raise BuildError(str(exc)) from exc
    # Debug tensors are outputs while the network is optimized (no fusion removes them) and
    # leave the outputs before the I/O is listed.
    outputs = len(clone._outputs)
    produced = {t.name: t for layer in clone._layers for t in layer._outputs}
    clone._outputs.extend(produced[n] for n in debug_names if produced[n] not in clone._outputs)
    progress = BuildProgress(getattr(config, "progress_monitor", None), logger)
    progress.start("Graph optimization", 1)
    changed = run_passes(clone, passes_for(config), context=PassContext(backend, config, logger))
    log(logger, Severity.VERBOSE, f"passes that changed the network: {changed}")
    progress.step("Graph optimization", 0)
    progress.finish("Graph optimization")
    chooser = _TacticChooser(config, backend, logger)  # one timing cache for both phases
    if chooser.cache is not None:  # choices timed by earlier builds are not timed again
        choices.restore(chooser.cache._kernel_choices())
    _select_precisions(clone, config, backend, logger, profiles, progress, chooser)
    real = {t.name for t in clone._outputs[:outputs]}
    debug_tensors = [t.name for t in clone._outputs[outputs:]] + \
        [n for n in debug_names if n in real]
    del clone._outputs[outputs:]
    order = topological_order(clone._layers)
    static = all(d >= 0 for t in clone._inputs for d in t.shape) and not shape_values[0]
    try:
        declared = None if static else infer_all(
            order, {t: TensorInfo(tuple(t.shape), t.dtype) for t in clone._inputs})
        per_profile = infos_per_profile(order, clone._inputs, profiles, shape_values)
    except NetworkError as exc:
        raise BuildError(str(exc)) from exc
    at_opt, at_max = per_profile[0][1], per_profile[0][2]
    if declared is None:  # static inputs: the declared shapes are the profile's
        declared = at_opt

    plugins = configure_plugin_layers(order, declared, per_profile, chooser.module,
                                      config.avg_timing_iterations)
    tactics = []
    progress.start("Tactic selection", len(order))
    for step, layer in enumerate(order):
        progress.step("Tactic selection", step)
        inputs = [None if t is None else at_opt[t] for t in layer._inputs]
        tactic = chooser.choose(layer, inputs)
        tactics.append(tactic.name)
        log(logger, Severity.VERBOSE,
            f"layer '{layer.name}' ({layer.layer_type.name}): tactic {tactic.name}")
    log(logger, Severity.INFO, f"tactic timing: {chooser.timed} layers timed, "
                               f"{chooser.cache_hits} taken from the timing cache")
    progress.finish("Tactic selection")

    # Each further profile gets the tactics timed at its own opt shapes.
    profile_tactics = [tactics] + [
        [chooser.choose(layer, [None if t is None else infos[1][t] for t in layer._inputs]).name
         for layer in order] for infos in per_profile[1:]]
    if chooser.cache is not None:
        chooser.cache._store_kernel_choices(kernel_choices)

    strip: Any = False
    if config.get_flag(BuilderFlag.STRIP_PLAN):
        strip = strip_predicate(order, marked)
    record, arrays = encode_network(clone, order, lazy_weights=True, strip_weights=strip)
    ids = {t: i for i, t in enumerate(_tensors_in_record_order(clone, order))}
    pinned = {ids[t] for t in clone._inputs + clone._outputs}
    sizes = {}
    for tensor, info in at_max.items():
        if all(d >= 0 for d in info.shape):
            sizes[ids[tensor]] = nbytes_of(info.dtype, info.shape)
    steps = [([ids[t] for t in layer._inputs if t is not None], [ids[t] for t in layer._outputs])
             for layer in order]
    for tensor, nbytes in largest_sizes(per_profile).items():
        sizes[ids[tensor]] = max(sizes.get(ids[tensor], 0), nbytes)
    memory = plan_memory(steps, sizes, pinned)

    io = []
    for mode, tensors in (("INPUT", clone._inputs), ("OUTPUT", clone._outputs)):
        for t in tensors:
            io.append({"name": t.name, "mode": mode, "dtype": declared[t].dtype.name,
                       "shape": list(declared[t].shape), "location": io_location(t)})
    header = {
        "library_version": __version__,
        "target": target,
        "network": record,
        "tactics": tactics,
        "layers": _layer_records(order, tactics, declared),
        "io": io,
        "profiles": profiles if config._profiles else [],
        "memory": {"arena_bytes": memory.arena_bytes,
                   "offsets": {str(k): v for k, v in memory.offsets.items()}},
        "builder": {"flags": config.flags,
                    "optimization_level": config.builder_optimization_level,
                    "profiling_verbosity": config.profiling_verbosity.name},
        "plugins": plugins,
        "compatibility": compatibility,
        "profile_tactics": profile_tactics,
        "debug_tensors": debug_tensors,
        "profile_shape_values": shape_values if config._profiles else [],
        "kernel_choices": dict(sorted(kernel_choices.items())),
    }
    return write_plan(header, arrays, plan_type)


def _select_precisions(network: INetworkDefinition, config: IBuilderConfig, backend: str,
                        logger: ILogger | None, profiles: list[dict[str, list[list[int]]]],
                        progress: BuildProgress, chooser: _TacticChooser) -> None:
    """Weakly typed networks: choose each layer's precision and insert the casts."""
    constrained = any(config.get_flag(f) for f in (
        BuilderFlag.FP16, BuilderFlag.BF16, BuilderFlag.OBEY_PRECISION_CONSTRAINTS,
        BuilderFlag.PREFER_PRECISION_CONSTRAINTS))
    if network.strongly_typed or not constrained:
        return
    progress.start("Precision selection", 1)
    order = topological_order(network._layers)
    try:
        types = infer_types(network)
        at_opt = infer_all(order, {t: TensorInfo(tuple(profiles[0][t.name][1]), t.dtype)
                                   for t in network._inputs})
    except NetworkError as exc:
        raise BuildError(str(exc)) from exc

    def fastest(layer: ILayer, inputs: list[TensorInfo | None]) -> float | None:
        candidates = [t for t in tactics_for(backend, layer.layer_type)
                      if chooser.allowed(t) and _accepts(t, layer, inputs)]
        if not candidates:
            return None
        ms = chooser.fastest(layer, inputs, candidates)[1]
        return 0.0 if ms is None else ms

    chosen = choose_precisions(network, config, at_opt, fastest, logger)
    if apply_precisions(network, chosen, types):
        fold_constants(network)  # casts of constant weights become constants
        eliminate_dead_layers(network)
    log(logger, Severity.VERBOSE, "layer precisions: " + ", ".join(
        f"{layer.name}={d.name}" for layer in order if (d := chosen.get(id(layer)))))
    progress.step("Precision selection", 0)
    progress.finish("Precision selection")


def _accepts(tactic: Tactic, layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    try:
        layer.infer(inputs)
        return tactic.accepts(layer, inputs)
    except NetworkError:
        return False


def _layer_records(order: list[ILayer], tactics: list[str],
                   infos: dict[ITensor, TensorInfo]) -> list[dict[str, Any]]:
    """What the plan says of each layer (the engine inspector shows it)."""
    def tensor(t: ITensor) -> dict[str, Any]:
        return {"name": t.name, "dtype": infos[t].dtype.name, "shape": list(infos[t].shape)}

    return [{"name": layer.name, "type": layer.layer_type.name, "tactic": tactic,
             "precision": precision, "metadata": layer.metadata,
             "inputs": [tensor(t) for t in layer._inputs if t is not None],
             "outputs": [tensor(t) for t in layer._outputs]}
            for layer, tactic, precision in zip(order, tactics,
                                                layer_precisions(order, infos))]


def _tensors_in_record_order(network: INetworkDefinition, order: list[ILayer]) -> list[ITensor]:
    """Tensors numbered as ``encode_network`` numbers them: inputs, then outputs by layer."""
    tensors = list(network._inputs)
    for layer in order:
        tensors.extend(layer._outputs)
    return tensors
