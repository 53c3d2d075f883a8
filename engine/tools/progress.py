"""Build progress on a terminal.

``BuildProgress`` is two things at once, so the tool can use whichever the library offers:

- a logger (``ILogger``) that forwards every message to the tool's own logger and turns the
  builder's per-layer messages into a spinner with a layer count;
- a progress monitor with TensorRT's ``IProgressMonitor`` methods (``phase_start``,
  ``step_complete``, ``phase_finish``), drawn as a bar per phase, for builder configs that
  accept ``config.progress_monitor``.

Nothing is drawn unless the stream is a terminal, so logs and pipes stay clean.
"""

from __future__ import annotations

import threading
import time
from typing import IO

from engine.logger import ILogger, Severity

_FRAMES = "|/-\\"
_BAR = 24


class BuildProgress(ILogger):
    def __init__(self, forward: ILogger, stream: IO[str], enabled: bool | None = None) -> None:
        super().__init__()
        self.forward = forward
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.layers_done = 0
        self._frame = 0
        self._phases: dict[str, tuple[int, int]] = {}  # name -> (steps, done)
        self._lock = threading.Lock()
        self._started = time.perf_counter()
        self._drawn = False

    # -- ILogger ------------------------------------------------------------------------------
    def log(self, severity: Severity, msg: str) -> None:
        if self._drawn and severity <= getattr(self.forward, "min_severity", Severity.VERBOSE):
            self._clear()
        self.forward.log(severity, msg)
        if msg.startswith("layer '") and "): tactic " in msg:  # one per layer chosen
            self.layers_done += 1
            self._draw(f"building: {self.layers_done} layers")

    # -- IProgressMonitor ---------------------------------------------------------------------
    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        self._phases[phase_name] = (max(int(num_steps), 1), 0)
        self._draw_phase(phase_name)

    def step_complete(self, phase_name: str, step: int) -> bool:
        steps, _ = self._phases.get(phase_name, (1, 0))
        self._phases[phase_name] = (steps, int(step) + 1)
        self._draw_phase(phase_name)
        return True  # never cancel the build

    def phase_finish(self, phase_name: str) -> None:
        self._phases.pop(phase_name, None)

    # -- drawing ------------------------------------------------------------------------------
    def _draw_phase(self, phase_name: str) -> None:
        steps, done = self._phases[phase_name]
        filled = _BAR * min(done, steps) // steps
        self._draw(f"{phase_name} [{'=' * filled}{' ' * (_BAR - filled)}] {done}/{steps}")

    def _draw(self, text: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._frame = (self._frame + 1) % len(_FRAMES)
            elapsed = time.perf_counter() - self._started
            self.stream.write(f"\r{_FRAMES[self._frame]} {text} ({elapsed:.1f} s)\x1b[K")
            self.stream.flush()
            self._drawn = True

    def _clear(self) -> None:
        with self._lock:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def finish(self) -> None:
        """Erase the spinner line (call once the build is over)."""
        if self._drawn:
            self._clear()
