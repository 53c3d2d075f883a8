"""The tools' logger: TensorRT's ``[I]``/``[W]``/``[E]`` lines on a stream, remembering the
last error so that a failed build or load can be reported in one line."""

from __future__ import annotations

import sys
from typing import IO

from engine.logger import Logger, Severity


class ToolLogger(Logger):
    def __init__(self, min_severity: Severity = Severity.INFO, stream: IO[str] | None = None
                 ) -> None:
        super().__init__(min_severity)
        self.stream = stream
        self.last_error: str | None = None

    def log(self, severity: Severity, msg: str) -> None:
        if severity <= Severity.ERROR:
            self.last_error = msg
        if severity <= self.min_severity:
            prefix = self._PREFIX[Severity(severity)]
            print(f"{prefix} {msg}", file=self.stream or sys.stdout, flush=True)

    def info(self, msg: str) -> None:
        self.log(Severity.INFO, msg)

    def warning(self, msg: str) -> None:
        self.log(Severity.WARNING, msg)
