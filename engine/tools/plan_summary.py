"""What a plan holds, read from its header alone: target, I/O, profiles, and per layer its
type, tactic, precision and tensors. Needs no device, so a GPU plan can be inspected on a
machine without one.

>>> summary = summarize_plan(open("model.plan", "rb").read())  # doctest: +SKIP
>>> print(format_summary(summary))                               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import NetworkError, PlanError
from engine.network.inference import infer_all
from engine.network.layer import TensorInfo
from engine.network.serialize import decode_network
from engine.plan.format import FORMAT_VERSION, read_plan


@dataclass(frozen=True)
class TensorSummary:
    name: str
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class LayerSummary:
    name: str
    layer_type: str
    tactic: str
    precision: str  # the data type of the layer's first output
    inputs: tuple[TensorSummary, ...]
    outputs: tuple[TensorSummary, ...]


@dataclass(frozen=True)
class PlanSummary:
    format_version: int
    library_version: str
    target: dict[str, Any]
    inputs: tuple[TensorSummary, ...]
    outputs: tuple[TensorSummary, ...]
    profiles: list[dict[str, list[list[int]]]]
    layers: tuple[LayerSummary, ...]
    activation_bytes: int
    builder: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (trtexec's --exportLayerInfo style: a ``Layers`` list)."""
        def tensor(t: TensorSummary) -> dict[str, Any]:
            return {"Name": t.name, "Format/Datatype": t.dtype, "Dimensions": list(t.shape)}

        return {
            "PlanFormatVersion": self.format_version,
            "LibraryVersion": self.library_version,
            "Target": self.target,
            "Bindings": [t.name for t in self.inputs + self.outputs],
            "Layers": [{"Name": layer.name, "LayerType": layer.layer_type,
                        "TacticName": layer.tactic, "Precision": layer.precision,
                        "Inputs": [tensor(t) for t in layer.inputs],
                        "Outputs": [tensor(t) for t in layer.outputs]}
                       for layer in self.layers],
        }


def plan_version(plan: Any) -> tuple[int, str]:
    """(plan format version, library version that wrote it); raises ``PlanError``."""
    header = read_plan(plan).header
    return FORMAT_VERSION, str(header.get("library_version", "unknown"))


def summarize_plan(plan: Any) -> PlanSummary:
    """Read ``plan`` (bytes-like) and describe it; raises ``PlanError`` for a bad plan."""
    contents = read_plan(plan)
    header = contents.header
    try:
        network, _ = decode_network(header["network"], contents.arrays)
        tactics = [str(t) for t in header["tactics"]]
        infos = infer_all(network._layers, {t: TensorInfo(tuple(t.shape), t.dtype)
                                            for t in network._inputs})
    except (KeyError, TypeError, ValueError, NetworkError) as exc:
        raise PlanError(f"malformed plan header: {type(exc).__name__}: {exc}") from None

    def describe(tensor: Any) -> TensorSummary:
        info = infos.get(tensor)
        if info is None:
            return TensorSummary(tensor.name, tensor.dtype.name, tuple(tensor.shape))
        return TensorSummary(tensor.name, info.dtype.name, tuple(info.shape))

    layers = []
    for layer, tactic in zip(network._layers, tactics):
        outputs = tuple(describe(t) for t in layer._outputs)
        layers.append(LayerSummary(
            layer.name, layer.layer_type.name, tactic,
            outputs[0].dtype if outputs else "-",
            tuple(describe(t) for t in layer._inputs if t is not None), outputs))
    return PlanSummary(
        format_version=FORMAT_VERSION,
        library_version=str(header.get("library_version", "unknown")),
        target=dict(header.get("target", {})),
        inputs=tuple(describe(t) for t in network._inputs),
        outputs=tuple(describe(t) for t in network._outputs),
        profiles=list(header.get("profiles", [])),
        layers=tuple(layers),
        activation_bytes=int(header.get("memory", {}).get("arena_bytes", 0)),
        builder=dict(header.get("builder", {})),
    )


def format_summary(summary: PlanSummary) -> str:
    """The summary as text: a header, the I/O, then one line per layer."""
    target = summary.target
    where = (f"cpu ({target.get('machine', '?')})" if target.get("backend") == "cpu" else
             f"gpu ({target.get('device_name', '?')}, compute capability "
             f"{target.get('compute_capability', '?')})")
    lines = [f"Plan format v{summary.format_version}, written by pytrt "
             f"{summary.library_version}, target {where}",
             f"Activation memory: {summary.activation_bytes} bytes; builder flags "
             f"{summary.builder.get('flags', 0)}, optimization level "
             f"{summary.builder.get('optimization_level', '?')}"]
    for label, tensors in (("Input", summary.inputs), ("Output", summary.outputs)):
        for t in tensors:
            lines.append(f"{label}: '{t.name}' {t.dtype} {list(t.shape)}")
    for index, profile in enumerate(summary.profiles):
        for name, (lo, opt, hi) in profile.items():
            lines.append(f"Profile {index}: '{name}' min {lo} opt {opt} max {hi}")
    lines.append(f"Layers ({len(summary.layers)}):")
    for index, layer in enumerate(summary.layers):
        ins = ", ".join(t.name for t in layer.inputs)
        outs = ", ".join(t.name for t in layer.outputs)
        lines.append(f"  [{index}] {layer.name} ({layer.layer_type}) tactic={layer.tactic} "
                     f"precision={layer.precision} [{ins}] -> [{outs}]")
    return "\n".join(lines)
