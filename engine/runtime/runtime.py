"""``Runtime``: turns plan bytes into engines.

>>> import engine as trt
>>> runtime = trt.Runtime(trt.Logger())
>>> runtime.deserialize_cuda_engine(b"not a plan") is None  # the reason is logged
True
"""

from __future__ import annotations

from typing import Any

from engine.error_recorder import ErrorCodeTRT, record_error
from engine.errors import PlanError
from engine.logger import ILogger, Severity, log
from engine.plan.format import read_plan
from engine.runtime.engine import ICudaEngine
from engine.runtime.stream_reader import is_stream_reader, read_stream


def engine_from_plan(plan: Any, logger: ILogger | None = None,
                     error_recorder: Any = None) -> ICudaEngine:
    """Deserialize ``plan`` (any bytes-like object, an mmap included, or an
    ``IStreamReader`` / ``IStreamReaderV2``); raises ``PlanError`` saying what is wrong with
    it. Arrays of a memory-mapped plan stay mapped."""
    if is_stream_reader(plan):
        plan = read_stream(plan)
    engine = ICudaEngine(read_plan(plan), plan)
    engine._logger = logger
    engine.error_recorder = error_recorder
    return engine


class Runtime:
    """Deserializes plans into engines."""

    def __init__(self, logger: ILogger) -> None:
        self.logger = logger
        self.error_recorder: Any = None  # an IErrorRecorder; its engines inherit it
        self.DLA_core = -1
        self.max_threads = 1

    def deserialize_cuda_engine(self, serialized_engine: Any) -> ICudaEngine | None:
        """An engine from plan bytes or a stream reader; None when the plan is refused, with
        the reason logged as an ERROR (as TensorRT). ``engine_from_plan`` raises instead."""
        try:
            return engine_from_plan(serialized_engine, self.logger, self.error_recorder)
        except PlanError as exc:
            log(self.logger, Severity.ERROR, f"deserialize_cuda_engine: {exc}")
            record_error(self.error_recorder, ErrorCodeTRT.INVALID_ARGUMENT,
                         f"deserialize_cuda_engine: {exc}")
            return None

    @property
    def num_DLA_cores(self) -> int:  # noqa: N802 - TensorRT's name
        return 0

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
