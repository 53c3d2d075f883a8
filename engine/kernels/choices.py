"""Choices a tactic makes while an engine is built and must make the same way when the engine
runs: which of cuDNN's execution plans a fused convolution graph runs, for example. The
builder times the candidates, the tactic records the fastest under a key that names the
geometry, and the plan carries every choice the build made (``kernel_choices`` in its
header); deserializing the plan restores them, so a loaded engine runs what was timed
without timing anything again.

Choices are strings (a plan never holds anything that is executed: a choice names an
implementation that the tactic looks up and checks). A key absent here means "no choice
recorded": the tactic takes its library's heuristic choice.

    with choices.recording(tune=True) as made:   # the builder, around tactic selection
        ...                                        # tactics: tuning(), lookup(), record()
    header["kernel_choices"] = made
    choices.restore(header["kernel_choices"])      # the runtime, when a plan is loaded
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_LOCK = threading.Lock()
_CHOICES: dict[str, str] = {}
_RECORDINGS: list[tuple[dict[str, str], bool]] = []  # (choices made, tune) of active builds


@contextmanager
def recording(tune: bool) -> Iterator[dict[str, str]]:
    """Collect the choices made or used until the block ends; ``tune``: whether tactics may
    time candidates to make new ones (the builder's optimization level above 0)."""
    made: dict[str, str] = {}
    entry = (made, tune)
    with _LOCK:
        _RECORDINGS.append(entry)
    try:
        yield made
    finally:
        with _LOCK:
            _RECORDINGS.remove(entry)


def recording_in_progress() -> bool:
    """Whether a build is collecting choices (of any kind)."""
    return bool(_RECORDINGS)


def tuning() -> bool:
    """Whether a build that asks for timed choices is in progress."""
    with _LOCK:
        return any(tune for _, tune in _RECORDINGS)


def lookup(key: str) -> str | None:
    """The choice recorded for ``key``, or None; a build in progress records its use."""
    with _LOCK:
        value = _CHOICES.get(key)
        if value is not None:
            for made, _ in _RECORDINGS:
                made[key] = value
        return value


def record(key: str, value: str) -> None:
    """Make ``value`` the choice for ``key`` (in this process, and in the builds in progress)."""
    with _LOCK:
        _CHOICES[key] = value
        for made, _ in _RECORDINGS:
            made[key] = value


def restore(choices: Mapping[str, str]) -> None:
    """Adopt a plan's choices (``ValueError`` unless every key and value is a string)."""
    if not isinstance(choices, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in choices.items()):
        raise ValueError("kernel choices must map strings to strings")
    with _LOCK:
        _CHOICES.update(choices)
