"""``ITimingCache``: the tactic chosen for each layer signature on each device, kept across
builds so that a second build of the same model skips timing; and the choices tactics made
while timed (``engine.kernels.choices``: cuDNN's execution plans), so that it skips those too.

The serialized form is JSON (never pickle), so a cache from elsewhere is data, not code.

>>> import engine as trt
>>> config = trt.Builder(trt.Logger()).create_builder_config()
>>> cache = config.create_timing_cache(b"")
>>> config.set_timing_cache(cache, ignore_mismatch=False)
True
>>> restored = config.create_timing_cache(cache.serialize())
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from engine.errors import BuildError

_FORMAT = "pytrt-timing-cache"
_VERSION = 1


@dataclass(frozen=True)
class TimingRecord:
    """The winner of one timing: its tactic and its mean time in milliseconds."""

    tactic: str
    milliseconds: float


class ITimingCache:
    """Timing results keyed by layer signature; one cache can serve many builds."""

    def __init__(self, serialized: bytes | bytearray | memoryview = b"") -> None:
        self._entries: dict[str, TimingRecord] = {}
        self._choices: dict[str, str] = {}
        self._device: str | None = None
        self._lock = threading.Lock()
        if len(serialized):
            self._load(bytes(serialized))

    def _load(self, data: bytes) -> None:
        try:
            doc = json.loads(data.decode("utf-8"))
            if doc.get("format") != _FORMAT or doc.get("version") != _VERSION:
                raise ValueError(f"not a timing cache of format {_FORMAT} v{_VERSION}")
            self._device = doc["device"]
            for key, entry in doc["entries"].items():
                self._entries[str(key)] = TimingRecord(str(entry["tactic"]), float(entry["ms"]))
            choices = doc.get("kernel_choices", {})
            if not isinstance(choices, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in choices.items()):
                raise ValueError("kernel_choices must map strings to strings")
            self._choices.update(choices)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BuildError(f"invalid serialized timing cache: {exc}") from None

    def serialize(self) -> bytes:
        with self._lock:
            entries = {k: {"tactic": r.tactic, "ms": r.milliseconds}
                       for k, r in sorted(self._entries.items())}
            doc = {"format": _FORMAT, "version": _VERSION, "device": self._device,
                   "entries": entries, "kernel_choices": dict(sorted(self._choices.items()))}
        return json.dumps(doc, separators=(",", ":")).encode("utf-8")

    def combine(self, input_cache: ITimingCache, ignore_mismatch: bool) -> bool:
        """Merge ``input_cache`` into this one; False when the devices differ (unless told to
        ignore that). Existing entries are kept."""
        if (not ignore_mismatch and self._device is not None and input_cache._device is not None
                and self._device != input_cache._device):
            return False
        with self._lock:
            for key, record in input_cache._entries.items():
                self._entries.setdefault(key, record)
            for key, choice in input_cache._choices.items():
                self._choices.setdefault(key, choice)
            if self._device is None:
                self._device = input_cache._device
        return True

    def reset(self) -> bool:
        with self._lock:
            self._entries.clear()
            self._choices.clear()
        return True

    def __len__(self) -> int:
        return len(self._entries)

    # -- used by the builder ------------------------------------------------------------------
    def _bind(self, device: str, ignore_mismatch: bool) -> bool:
        if self._device is None:
            self._device = device
            return True
        return self._device == device or ignore_mismatch

    def _lookup(self, key: str) -> TimingRecord | None:
        with self._lock:
            return self._entries.get(key)

    def _store(self, key: str, record: TimingRecord) -> None:
        with self._lock:
            self._entries[key] = record

    def _kernel_choices(self) -> dict[str, str]:
        with self._lock:
            return dict(self._choices)

    def _store_kernel_choices(self, made: dict[str, str]) -> None:
        with self._lock:
            self._choices.update(made)


def layer_signature(layer: Any, inputs: list[Any], backend: str, device: str) -> str:
    """A key for a layer's timing: its type, attributes (weights by shape and type, not
    value), input shapes and types, output types, backend and device."""
    from engine.types import Weights

    def describe(value: Any) -> Any:
        if isinstance(value, Weights):
            return ["weights", value.dtype.name, list(value.shape)]
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            return ["array", str(value.dtype), list(value.shape)]
        if isinstance(value, (list, tuple)):
            return [describe(v) for v in value]
        if hasattr(value, "name") and hasattr(value, "value"):
            return f"{type(value).__name__}.{value.name}"
        return value

    doc = {
        "type": layer.layer_type.name,
        "attrs": {k: describe(v) for k, v in layer.attributes().items()},
        "inputs": [None if i is None else [list(i.shape), i.dtype.name] for i in inputs],
        "output_types": {str(k): v.name for k, v in layer._output_types.items()},
        "backend": backend,
        "device": device,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
