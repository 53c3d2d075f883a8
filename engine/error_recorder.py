"""``IErrorRecorder``: an application's collector of the errors TensorRT objects meet
(TensorRT's interface). Set one on a ``Builder``, ``Runtime``, ``ICudaEngine``,
``IExecutionContext`` or ``Refitter`` (``obj.error_recorder = recorder``); objects made from
one inherit its recorder (a runtime's engines, an engine's contexts and refitters, a
builder's networks). Each error is reported with an ``ErrorCodeTRT`` and its description,
as well as logged.

>>> import engine as trt
>>> class Collect(trt.IErrorRecorder):
...     def __init__(self):
...         super().__init__()
...         self.errors = []
...     def report_error(self, val, desc):
...         self.errors.append((val, desc))
...         return False
...     def num_errors(self):
...         return len(self.errors)
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCodeTRT(enum.IntEnum):
    """What kind of error (TensorRT's ``ErrorCode`` members and values)."""

    SUCCESS = 0
    UNSPECIFIED_ERROR = 1
    INTERNAL_ERROR = 2
    INVALID_ARGUMENT = 3
    INVALID_CONFIG = 4
    FAILED_ALLOCATION = 5
    FAILED_INITIALIZATION = 6
    FAILED_EXECUTION = 7
    FAILED_COMPUTATION = 8
    INVALID_STATE = 9
    UNSUPPORTED_STATE = 10


class IErrorRecorder:
    """Subclass and implement ``report_error`` (return True to say the error is fatal; the
    call that met it fails either way), ``num_errors``, ``get_error_code``,
    ``get_error_desc``, ``has_overflowed`` and ``clear``."""

    MAX_DESC_LENGTH = 127

    def report_error(self, val: ErrorCodeTRT, desc: str) -> bool:
        raise NotImplementedError("IErrorRecorder.report_error must be implemented")

    def num_errors(self) -> int:
        raise NotImplementedError("IErrorRecorder.num_errors must be implemented")

    def get_error_code(self, index: int) -> ErrorCodeTRT:
        raise NotImplementedError("IErrorRecorder.get_error_code must be implemented")

    def get_error_desc(self, index: int) -> str:
        raise NotImplementedError("IErrorRecorder.get_error_desc must be implemented")

    def has_overflowed(self) -> bool:
        raise NotImplementedError("IErrorRecorder.has_overflowed must be implemented")

    def clear(self) -> None:
        raise NotImplementedError("IErrorRecorder.clear must be implemented")


def record_error(recorder: Any, code: ErrorCodeTRT, desc: str) -> None:
    """Report an error to ``recorder`` if there is one. A recorder that fails is not allowed
    to take the caller down: its failure is dropped (the error is logged anyway)."""
    if recorder is None:
        return
    try:
        recorder.report_error(ErrorCodeTRT(code), str(desc))
    except Exception:  # noqa: BLE001, S110 - the application's recorder: never crash on it
        pass
