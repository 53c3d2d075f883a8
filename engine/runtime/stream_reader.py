"""``IStreamReader`` and ``IStreamReaderV2``: deserialize a plan from a reader object instead
of bytes in memory (TensorRT's ``runtime.deserialize_cuda_engine(reader)``).

Subclass one and implement ``read``; the runtime reads the plan's prefix, learns the plan's
length from it, and reads the rest in chunks. A reader that ends early or returns something
other than bytes makes the plan refused with the reason.

>>> import io, engine as trt
>>> class FromFile(trt.IStreamReader):
...     def __init__(self, f):
...         super().__init__()
...         self.f = f
...     def read(self, size):
...         return self.f.read(size)
"""

from __future__ import annotations

import enum
from typing import Any

from engine.errors import PlanError
from engine.plan.format import PREFIX_SIZE, plan_length

_CHUNK = 64 << 20  # bytes asked of the reader at once


class SeekPosition(enum.IntEnum):
    """Where ``IStreamReaderV2.seek`` counts from (TensorRT's members and values)."""

    SET = 0
    CUR = 1
    END = 2


class IStreamReader:
    """A source of plan bytes: ``read(size)`` returns up to ``size`` bytes (fewer at the
    end)."""

    def read(self, size: int) -> bytes:
        raise NotImplementedError("IStreamReader.read must be implemented by the subclass")


class IStreamReaderV2:
    """A source of plan bytes that can also seek: ``read(size, cuda_stream)`` returns up to
    ``size`` bytes (the stream is where a reader may copy device memory; the plan is read
    into host memory here, with stream 0), ``seek(offset, where)``."""

    def read(self, size: int, cuda_stream: int) -> bytes:
        raise NotImplementedError("IStreamReaderV2.read must be implemented by the subclass")

    def seek(self, offset: int, where: SeekPosition) -> bool:
        raise NotImplementedError("IStreamReaderV2.seek must be implemented by the subclass")


def is_stream_reader(source: Any) -> bool:
    return isinstance(source, (IStreamReader, IStreamReaderV2))


def read_stream(reader: IStreamReader | IStreamReaderV2) -> bytearray:
    """The whole plan from ``reader``: its prefix, then the length the prefix declares;
    ``PlanError`` when the stream ends early or the reader misbehaves."""
    if isinstance(reader, IStreamReaderV2) and not reader.seek(0, SeekPosition.SET):
        raise PlanError("the stream reader could not seek to the start of the plan")
    data = bytearray()

    def take(count: int) -> None:
        while count > 0:
            asked = min(count, _CHUNK)
            try:
                chunk = reader.read(asked, 0) if isinstance(reader, IStreamReaderV2) \
                    else reader.read(asked)
            except Exception as exc:  # noqa: BLE001 - the caller's reader: report, not crash
                raise PlanError(f"the stream reader failed after {len(data)} bytes: "
                                f"{type(exc).__name__}: {exc}") from None
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise PlanError(f"the stream reader returned {type(chunk).__name__}, not bytes")
            if len(chunk) > asked:
                raise PlanError(f"the stream reader returned {len(chunk)} bytes when asked "
                                f"for {asked}")
            if not chunk:
                raise PlanError(f"the stream ended after {len(data)} bytes; the plan needs "
                                f"{len(data) + count}")
            data.extend(chunk)
            count -= len(chunk)

    take(PREFIX_SIZE)
    take(plan_length(data) - len(data))
    return data
