"""Plan compatibility: which library versions and devices may load a plan, and reading a
plan's header without loading it.

- A plan loads in the library version that built it; one built with
  ``BuilderFlag.VERSION_COMPATIBLE`` also loads in later versions of the same major version.
- A GPU plan loads on a device of the compute capability it was built for
  (``HardwareCompatibilityLevel.NONE`` and ``SAME_COMPUTE_CAPABILITY``); one built with
  ``AMPERE_PLUS`` loads on any device of compute capability 8.0 or later.

>>> import engine as trt
>>> trt.HardwareCompatibilityLevel.AMPERE_PLUS.value
1
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Any

from engine.errors import PlanError
from engine.version import __version__


class HardwareCompatibilityLevel(enum.IntEnum):
    """Which GPUs a plan may run on (``config.hardware_compatibility_level``)."""

    NONE = 0
    AMPERE_PLUS = 1
    SAME_COMPUTE_CAPABILITY = 2


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split(".")[:3])
    except ValueError:
        raise PlanError(f"malformed plan: library version {version!r}") from None


def check_library_version(built_with: str, compatibility: dict[str, Any],
                          running: str = __version__) -> None:
    """Refuse a plan of another library version unless it is version compatible and this
    library is a later version of the same major version."""
    if built_with == running:
        return
    built, here = _version_tuple(built_with), _version_tuple(running)
    if not compatibility.get("version_compatible"):
        raise PlanError(f"plan was built by library version {built_with}; this is {running}: "
                        f"rebuild it, or build it with BuilderFlag.VERSION_COMPATIBLE")
    if built[0] != here[0] or built > here:
        raise PlanError(f"version-compatible plan of library version {built_with} cannot be "
                        f"loaded by {running}: it loads in later versions of major version "
                        f"{built[0]} only")


def compute_capability(text: Any) -> tuple[int, int]:
    try:
        major, minor = str(text).split(".")
        return int(major), int(minor)
    except ValueError:
        raise PlanError(f"malformed plan: compute capability {text!r}") from None


def check_hardware_compatibility(target: dict[str, Any], here: dict[str, Any]) -> None:
    """Refuse a GPU plan that may not run on the device described by ``here``."""
    level = HardwareCompatibilityLevel[str(target.get("hardware_compatibility_level", "NONE"))]
    built, device = target.get("compute_capability"), here["compute_capability"]
    if level == HardwareCompatibilityLevel.AMPERE_PLUS:
        if compute_capability(device) < (8, 0):
            raise PlanError(f"plan was built with hardware compatibility level AMPERE_PLUS and "
                            f"needs compute capability 8.0 or later; this device is "
                            f"{here.get('device_name')} with compute capability {device}")
        return
    if built != device:
        raise PlanError(f"plan was built for compute capability {built} "
                        f"({target.get('device_name')}) with hardware compatibility level "
                        f"{level.name}; this device is {here.get('device_name')} with compute "
                        f"capability {device}: rebuild the plan, or build it with "
                        f"config.hardware_compatibility_level = AMPERE_PLUS")


@dataclass(frozen=True)
class PlanInfo:
    """What a plan's header says about it (``inspect_plan``)."""

    format_version: int
    library_version: str
    target: dict[str, Any]
    compatibility: dict[str, Any]
    io: list[dict[str, Any]]
    num_profiles: int
    plugins: list[dict[str, Any]]
    header: dict[str, Any]


def inspect_plan(plan: Any) -> PlanInfo:
    """Read a plan's header — format version, library version, target, compatibility, I/O,
    plugins — from a path or bytes, without loading the engine (no kernels, no plugins, no
    weights; the checksum is verified). ``PlanError`` when it is not a readable plan."""
    from engine.plan.format import _PREFIX, read_plan

    if isinstance(plan, (str, os.PathLike)):
        with open(plan, "rb") as f:
            plan = f.read()
    view = memoryview(plan).cast("B")
    if len(view) >= _PREFIX.size:
        _magic, version, *_ = _PREFIX.unpack_from(view, 0)
    else:
        version = 0
    header = read_plan(view).header
    return PlanInfo(
        format_version=int(version),
        library_version=str(header.get("library_version")),
        target=dict(header.get("target") or {}),
        compatibility=dict(header.get("compatibility") or {}),
        io=list(header.get("io") or []),
        num_profiles=max(1, len(header.get("profiles") or [])),
        plugins=list(header.get("plugins") or []),
        header={k: v for k, v in header.items() if k not in ("network", "arrays")},
    )
