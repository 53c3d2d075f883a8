"""TensorRT's logging interface: ``ILogger`` to subclass, ``Logger`` ready to use.

>>> import engine as trt
>>> logger = trt.Logger(trt.Logger.WARNING)
>>> logger.log(trt.Logger.ERROR, "shown on stderr")  # doctest: +SKIP
"""

from __future__ import annotations

import enum
import sys
import threading
from typing import TypeAlias


class _Severity(enum.IntEnum):
    """Message severities, most severe first (TensorRT's ``ILogger.Severity``)."""

    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


Severity = _Severity


class ILogger:
    """Base class for user loggers: override ``log(severity, msg)``.

    >>> import engine as trt
    >>> class Collect(trt.ILogger):
    ...     def __init__(self):
    ...         trt.ILogger.__init__(self)
    ...         self.seen = []
    ...     def log(self, severity, msg):
    ...         self.seen.append((severity, msg))
    """

    Severity: TypeAlias = _Severity  # usable in annotations: ``severity: trt.Logger.Severity``
    INTERNAL_ERROR = _Severity.INTERNAL_ERROR
    ERROR = _Severity.ERROR
    WARNING = _Severity.WARNING
    INFO = _Severity.INFO
    VERBOSE = _Severity.VERBOSE

    def __init__(self) -> None:
        pass

    def log(self, severity: _Severity, msg: str) -> None:
        raise NotImplementedError("subclasses of ILogger implement log(severity, msg)")


class Logger(ILogger):
    """Writes messages at or above ``min_severity`` to stderr, one line each."""

    _PREFIX = {
        _Severity.INTERNAL_ERROR: "[F]",
        _Severity.ERROR: "[E]",
        _Severity.WARNING: "[W]",
        _Severity.INFO: "[I]",
        _Severity.VERBOSE: "[V]",
    }

    def __init__(self, min_severity: _Severity = _Severity.WARNING) -> None:
        super().__init__()
        self.min_severity = _Severity(min_severity)
        self._lock = threading.Lock()

    def log(self, severity: _Severity, msg: str) -> None:
        if severity <= self.min_severity:
            with self._lock:
                print(f"{self._PREFIX[_Severity(severity)]} {msg}", file=sys.stderr)


def log(logger: ILogger | None, severity: _Severity, msg: str) -> None:
    """Send ``msg`` to ``logger`` if there is one (internal convenience)."""
    if logger is not None:
        logger.log(severity, msg)
