"""What the builder does with plugin layers: check formats, ``configure_plugin`` with the
shape ranges of the profiles, time the plugin's own tactics at the ``opt`` shapes, and the
plan's plugin records."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from engine.builder.timing import sample_inputs
from engine.errors import BuildError
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.plugins.interfaces import (
    DynamicPluginTensorDesc,
    PluginCapabilityType,
    PluginTensorDesc,
)
from engine.types import Dims, TensorFormat

Infos = Mapping[Any, TensorInfo]


def _ranges(tensors: Sequence[Any], declared: Infos,
            per_profile: Sequence[tuple[Infos, Infos, Infos]]) -> list[DynamicPluginTensorDesc]:
    descs = []
    for t in tensors:
        info = declared[t]
        lows = [p[0][t].shape for p in per_profile]
        highs = [p[2][t].shape for p in per_profile]
        lo = tuple(min(d) for d in zip(*lows)) if info.rank else ()
        hi = tuple(max(d) for d in zip(*highs)) if info.rank else ()
        descs.append(DynamicPluginTensorDesc(
            PluginTensorDesc(Dims(info.shape), info.dtype, TensorFormat.LINEAR),
            Dims(lo), Dims(per_profile[0][1][t].shape), Dims(hi)))
    return descs


def configure_plugin_layers(layers: Sequence[ILayer], declared: Infos,
                            per_profile: Sequence[tuple[Infos, Infos, Infos]], module: Any,
                            iterations: int) -> list[dict[str, Any]]:
    """Configure every plugin layer and choose its tactic; returns the plan's records.

    ``per_profile`` holds, per optimization profile, the tensor infos at its min, opt and max
    shapes; ``module`` is the backend (``to_device``, ``synchronize``)."""
    records = []
    for layer in layers:
        if layer.layer_type != LayerType.PLUGIN_V3:
            continue
        from engine.kernels.registry import tactics_for
        from engine.network.layers.plugin import capability

        plugin = layer.plugin  # type: ignore[attr-defined]
        build = capability(plugin, PluginCapabilityType.BUILD, layer.name)
        runtime = capability(plugin, PluginCapabilityType.RUNTIME, layer.name)
        data, _ = layer.data_inputs([t for t in layer._inputs])  # type: ignore[attr-defined]
        ins, outs = _ranges(data, declared, per_profile), _ranges(layer._outputs, declared,
                                                                  per_profile)
        in_out = ins + outs
        for pos in range(len(in_out)):
            if not build.supports_format_combination(pos, in_out, len(ins)):
                desc = in_out[pos].desc
                raise BuildError(f"layer '{layer.name}': plugin {layer.plugin_name!r} "  # type: ignore[attr-defined]
                                 f"supports no format for {'input' if pos < len(ins) else 'output'}"
                                 f" {pos if pos < len(ins) else pos - len(ins)} "
                                 f"({desc.type.name}, {desc.format.name})")
        build.configure_plugin(ins, outs)
        tactics = [int(t) for t in build.get_valid_tactics()]
        chosen = tactics[0] if tactics else 0
        if len(tactics) > 1:
            opt = per_profile[0][1]
            host = sample_inputs([opt[t] for t in layer._inputs if t is not None])
            if host is not None:
                run = tactics_for(module.BACKEND, LayerType.PLUGIN_V3)[0].run
                args = [module.to_device(a) for a in host]
                timings = []
                for tactic in tactics:
                    runtime.set_tactic(tactic)
                    run(layer, args)
                    module.synchronize()
                    start = time.perf_counter()
                    for _ in range(max(1, iterations)):
                        run(layer, args)
                    module.synchronize()
                    timings.append((time.perf_counter() - start, tactic))
                chosen = min(timings)[1]
        runtime.set_tactic(chosen)
        layer.plugin_tactic = chosen  # type: ignore[attr-defined]
        records.append({"layer": layer.name, "name": layer.plugin_name,  # type: ignore[attr-defined]
                        "version": layer.plugin_version,  # type: ignore[attr-defined]
                        "namespace": layer.plugin_namespace,  # type: ignore[attr-defined]
                        "tactic": chosen})
    return records
