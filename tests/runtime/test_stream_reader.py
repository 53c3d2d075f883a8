"""Deserializing from an ``IStreamReader`` / ``IStreamReaderV2`` (TensorRT 10): the engine is
the one the bytes give; a stream that ends early or a reader that misbehaves is refused with
the reason, and the process goes on."""

from __future__ import annotations

import io

import numpy as np
import pytest

import engine as trt
from tests.engine.test_plan import make_plan
from tests.support import CollectingLogger


class Reader(trt.IStreamReader):
    def __init__(self, data: bytes, chunk: int | None = None) -> None:
        super().__init__()
        self.file = io.BytesIO(data)
        self.chunk = chunk
        self.asked: list[int] = []

    def read(self, size):
        self.asked.append(size)
        return self.file.read(size if self.chunk is None else min(size, self.chunk))


class SeekingReader(trt.IStreamReaderV2):
    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.file = io.BytesIO(data)

    def read(self, size, cuda_stream):
        assert cuda_stream == 0
        return self.file.read(size)

    def seek(self, offset, where):
        self.file.seek(offset, int(where))
        return True


def outputs(engine):
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    return engine.create_execution_context().infer({"x": x})


@pytest.mark.parametrize("make_reader", [
    lambda data: Reader(data), lambda data: Reader(data, chunk=7),
    lambda data: SeekingReader(data)], ids=["whole", "short-reads", "v2"])
def test_a_plan_read_from_a_stream_is_the_plan(make_reader):
    plan = make_plan()
    reader = make_reader(plan)
    if isinstance(reader, SeekingReader):
        reader.file.seek(5)  # the runtime seeks to the start itself
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(reader)
    assert engine is not None
    want = outputs(trt.Runtime(trt.Logger()).deserialize_cuda_engine(plan))
    for name, value in outputs(engine).items():
        np.testing.assert_array_equal(value, want[name])


def test_the_reader_is_asked_only_for_the_plan():
    plan = make_plan()
    reader = Reader(plan + b"trailing data of the file")
    assert trt.Runtime(trt.Logger()).deserialize_cuda_engine(reader) is not None
    assert sum(reader.asked) == len(plan)


class Broken(trt.IStreamReader):
    def __init__(self, result) -> None:
        super().__init__()
        self.result = result

    def read(self, size):
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.mark.parametrize("reader, reason", [
    (Reader(make_plan()[:-10]), "the stream ended after"),
    (Reader(b"PYTRTPLX" + bytes(100)), "not a plan of this engine"),
    (Broken("text"), "returned str, not bytes"),
    (Broken(OSError("disk gone")), "failed after 0 bytes: OSError: disk gone"),
    (Broken(bytes(1 << 20)), "returned 1048576 bytes when asked for 40"),
], ids=["truncated", "foreign", "not-bytes", "raises", "too-much"])
def test_a_bad_stream_is_refused_with_the_reason(reader, reason):
    logger = CollectingLogger()
    assert trt.Runtime(logger).deserialize_cuda_engine(reader) is None
    assert reason in logger.errors()[-1]
