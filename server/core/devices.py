"""The devices a server places model instances on, and what it reports about each.

A ``KIND_GPU`` instance group's ``gpus`` are indices into the server's visible devices. By
default those are the CUDA devices CuPy sees (``gpu:0``, ``gpu:1``, ...). A server may be
given the list instead (``ServerSettings.visible_devices``), and an entry may be a host
stand-in, ``cpu:N``: instances "on GPU N" then run CPU engine copies. That is how tests and
CPU-only dry runs exercise multi-GPU placement, load spreading and per-device statistics.

The server never imports CuPy: CUDA devices are reached through the engine's device layer
(``engine.runtime.cuda``).

>>> [d.name for d in visible_devices(["cpu:0", "cpu:1"])]
['cpu:0', 'cpu:1']
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import engine as trt
from engine.runtime import cuda
from server.core.errors import InvalidArgument, Unsupported

_DEVICE = re.compile(r"(cpu|gpu):(\d{1,3})")


class DeviceActivity:
    """How long a device has had at least one execution running (for ``nv_gpu_utilization``,
    as this server sees the device: work of other processes is not counted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._busy_ns = 0
        self._since_ns = 0  # when _running last went from 0 to 1
        self._last_read = (time.perf_counter_ns(), 0)  # (clock, busy) at the last read

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        with self._lock:
            if self._running == 0:
                self._since_ns = time.perf_counter_ns()
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    self._busy_ns += time.perf_counter_ns() - self._since_ns

    def utilization(self) -> float:
        """The busy fraction (0..1) since the previous call."""
        with self._lock:
            now = time.perf_counter_ns()
            busy = self._busy_ns + (now - self._since_ns if self._running else 0)
            then, busy_then = self._last_read
            self._last_read = (now, busy)
        return min(1.0, (busy - busy_then) / max(now - then, 1))


@dataclass(eq=False)
class Device:
    """One visible device: ``gpu:N`` is CUDA device N; ``cpu:N`` a host stand-in for a GPU."""

    kind: str  # "cpu" or "gpu"
    index: int
    name: str = ""  # default: "<kind>:<index>"
    activity: DeviceActivity = field(default_factory=DeviceActivity)

    def __post_init__(self) -> None:
        self.name = self.name or f"{self.kind}:{self.index}"

    @property
    def target(self) -> trt.DeviceType:
        return trt.DeviceType.GPU if self.kind == "gpu" else trt.DeviceType.CPU

    @functools.cached_property
    def uuid(self) -> str:
        """Triton's ``gpu_uuid`` label: the CUDA device's UUID (``GPU-...``); a stand-in's
        name."""
        if self.kind != "gpu":
            return self.name
        return cuda.device_uuid(self.index)

    def placed(self) -> contextlib.AbstractContextManager[Any]:
        """A context in which engines are deserialized and run on this device (the current
        CUDA device is per thread, so every worker enters it around each execution)."""
        if self.kind != "gpu":
            return contextlib.nullcontext()
        return cuda.on_device(self.index)

    def to_host(self, array: Any) -> np.ndarray:
        """An engine output as a NumPy array (a GPU engine's outputs are CuPy arrays)."""
        return cuda.to_host(array) if self.kind == "gpu" else np.asarray(array)

    def memory(self) -> tuple[int, int] | None:
        """(used, total) bytes of a CUDA device; None for a host stand-in."""
        return cuda.device_memory(self.index) if self.kind == "gpu" else None


HOST = Device("cpu", 0, "host")  # where KIND_CPU instances run


def visible_devices(names: Sequence[str] | None) -> list[Device]:
    """The devices named (``gpu:N`` or ``cpu:N``), or, when ``names`` is None, every CUDA
    device CuPy sees (none on a machine without a usable GPU)."""
    if names is None:
        return [Device("gpu", i) for i in range(cuda.device_count())]
    devices = []
    for name in names:
        match = _DEVICE.fullmatch(name)
        if match is None:
            raise ValueError(f"visible device {name!r}: expected 'gpu:N' or 'cpu:N'")
        devices.append(Device(match.group(1), int(match.group(2))))
    if len({d.name for d in devices}) != len(devices):
        raise ValueError(f"visible devices {list(names)} name a device twice")
    return devices


@dataclass(frozen=True)
class Placement:
    """``count`` instances of a model on ``device``, for the instance groups ``groups``."""

    device: Device
    count: int
    groups: tuple[str, ...]
    kind: str  # the groups' kind, KIND_CPU or KIND_GPU


def place_instance_groups(groups: Sequence[Any], default_kind: str,
                          devices: Sequence[Device]) -> list[Placement]:
    """Where a model's instances go: KIND_CPU groups on the host; each KIND_GPU group's
    ``count`` instances on each GPU it names (every visible one when it names none);
    KIND_AUTO as ``default_kind`` (KIND_CPU or KIND_GPU). Instances of several groups on one
    device share its engine copy."""
    counts: dict[Device, tuple[int, tuple[str, ...], str]] = {}

    def add(device: Device, count: int, group: str, kind: str) -> None:
        before, names, _ = counts.get(device, (0, (), kind))
        counts[device] = (before + count, names + (group,), kind)

    for group in groups:
        kind = default_kind if group.kind == "KIND_AUTO" else group.kind
        if kind == "KIND_CPU":
            add(HOST, group.count, group.name, kind)
            continue
        if not devices:
            raise InvalidArgument(f"instance group '{group.name}' is KIND_GPU, but this server "
                                  f"sees no GPU")
        for index in group.gpus or range(len(devices)):
            if not 0 <= index < len(devices):
                raise InvalidArgument(
                    f"instance group '{group.name}' names GPU {index}, which does not exist; "
                    f"this server sees {len(devices)} "
                    f"({', '.join(f'{i}: {d.name}' for i, d in enumerate(devices))})")
            add(devices[index], group.count, group.name, kind)
    return [Placement(device, count, names, kind)
            for device, (count, names, kind) in counts.items()]


def require_gpu(purpose: str) -> None:
    """``Unsupported`` where this server has no usable GPU, so that a CPU-only server answers
    a GPU-only call (``purpose``, e.g. "CUDA shared memory") clearly."""
    if cuda.device_count() == 0:
        raise Unsupported(f"{purpose} needs a GPU: this server has no usable CUDA device "
                          f"(or CuPy is not installed)")
