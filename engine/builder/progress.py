"""``IProgressMonitor``: build progress reported to the user (TensorRT's interface), and the
builder's side of it, which also logs each phase at INFO.

>>> import engine as trt
>>> from engine.builder.progress import IProgressMonitor
>>> class Printer(IProgressMonitor):
...     def phase_start(self, phase_name, parent_phase, num_steps): print("start", phase_name)
...     def step_complete(self, phase_name, step): return True
...     def phase_finish(self, phase_name): print("finish", phase_name)
>>> config = trt.Builder(trt.Logger()).create_builder_config()
>>> config.progress_monitor = Printer()
"""

from __future__ import annotations

from typing import Any

from engine.errors import BuildError
from engine.logger import ILogger, Severity, log


class IProgressMonitor:
    """Subclass and set ``config.progress_monitor``. ``step_complete`` returning False
    cancels the build (``build_serialized_network`` then returns None)."""

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        """A phase of ``num_steps`` steps begins (nested in ``parent_phase`` if given)."""

    def step_complete(self, phase_name: str, step: int) -> bool:
        """Step ``step`` of ``phase_name`` is done; return False to cancel the build."""
        return True

    def phase_finish(self, phase_name: str) -> None:
        """``phase_name`` is done."""


class BuildProgress:
    """The builder's reporter: forwards to the user's monitor (if any) and logs at INFO."""

    def __init__(self, monitor: Any, logger: ILogger | None) -> None:
        self.monitor = monitor
        self.logger = logger

    def start(self, phase: str, steps: int, parent: str | None = None) -> None:
        log(self.logger, Severity.INFO, f"build phase '{phase}' started ({steps} steps)")
        if self.monitor is not None:
            self.monitor.phase_start(phase, parent, steps)

    def step(self, phase: str, step: int) -> None:
        if self.monitor is not None and self.monitor.step_complete(phase, step) is False:
            raise BuildError(f"build cancelled by the progress monitor during phase '{phase}' "
                             f"(step {step})")

    def finish(self, phase: str) -> None:
        log(self.logger, Severity.INFO, f"build phase '{phase}' finished")
        if self.monitor is not None:
            self.monitor.phase_finish(phase)
