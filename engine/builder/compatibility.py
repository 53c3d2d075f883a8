"""Builder settings that shape what a plan may be loaded by and changed by: refittable
weights (``BuilderFlag.REFIT``, ``REFIT_IDENTICAL``; ``STRIP_PLAN`` leaves them out of the
plan), version compatibility, and the hardware compatibility level.
"""

from __future__ import annotations

from typing import Any

from engine.builder.passes.dead_layers import eliminate_dead_layers
from engine.errors import BuildError
from engine.plan.compatibility import HardwareCompatibilityLevel, compute_capability

# REFIT_IDENTICAL promises refit weights identical to the build's: it permits optimizations
# REFIT does not; here it builds as REFIT does (every weight kept where the network put it).
# REFIT_INDIVIDUAL makes only the weights the network marks refittable (the others could be
# folded; here they are kept in place too, but not offered to the Refitter).
REFIT_FLAGS = ("REFIT", "REFIT_IDENTICAL", "REFIT_INDIVIDUAL")


def is_refittable(config: Any) -> bool:
    from engine.builder.config import BuilderFlag

    return any(config.get_flag(BuilderFlag[name]) for name in REFIT_FLAGS)


def passes_for(config: Any) -> list[Any] | None:
    """The graph passes a build may run: all of them (None), or, for a refittable engine,
    only those that keep every weight where the network put it (no folding or fusion, so
    each weight can be replaced by name)."""
    return [eliminate_dead_layers] if is_refittable(config) else None


def refittable_names(config: Any, network: Any) -> list[str] | None:
    """The names of the weights a refit may replace: the network's marked ones under
    REFIT_INDIVIDUAL, else all of them (None)."""
    from engine.builder.config import BuilderFlag

    if config.get_flag(BuilderFlag.REFIT_INDIVIDUAL) and not (
            config.get_flag(BuilderFlag.REFIT) or config.get_flag(BuilderFlag.REFIT_IDENTICAL)):
        return sorted(network._refittable)
    return None


def compatibility_header(config: Any, target: dict[str, Any]) -> dict[str, Any]:
    """The plan's compatibility record; ``BuildError`` for a level the target cannot have."""
    from engine.builder.config import BuilderFlag

    level = HardwareCompatibilityLevel(config.hardware_compatibility_level)
    if level != HardwareCompatibilityLevel.NONE:
        if target["backend"] != "gpu":
            raise BuildError(f"hardware_compatibility_level {level.name} applies to GPU plans; "
                             f"this build targets the CPU")
        if level == HardwareCompatibilityLevel.AMPERE_PLUS and \
                compute_capability(target.get("compute_capability")) < (8, 0):
            raise BuildError(f"hardware_compatibility_level AMPERE_PLUS needs a device of "
                             f"compute capability 8.0 or later to build on; this one is "
                             f"{target.get('compute_capability')}")
        target["hardware_compatibility_level"] = level.name
    if config.get_flag(BuilderFlag.STRIP_PLAN) and not is_refittable(config):
        raise BuildError("BuilderFlag.STRIP_PLAN leaves the weights out of the plan for a "
                         "refit to give back: set BuilderFlag.REFIT or REFIT_IDENTICAL too")
    if config.get_flag(BuilderFlag.EXCLUDE_LEAN_RUNTIME) and \
            not config.get_flag(BuilderFlag.VERSION_COMPATIBLE):
        raise BuildError("BuilderFlag.EXCLUDE_LEAN_RUNTIME needs BuilderFlag.VERSION_COMPATIBLE")
    return {
        "refittable": is_refittable(config),
        "version_compatible": config.get_flag(BuilderFlag.VERSION_COMPATIBLE),
        "exclude_lean_runtime": config.get_flag(BuilderFlag.EXCLUDE_LEAN_RUNTIME),
        "hardware_compatibility_level": level.name,
    }
