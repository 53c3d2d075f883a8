"""Debug tensors on a GPU execution context: the listener gets a device pointer and the run's
stream; the layers run one by one (no CUDA graph) while a debug tensor is active."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from tests.runtime.test_debug_tensors import Collector, X, _build, _reference

cupy = pytest.importorskip("cupy")
stream_from_handle = pytest.importorskip("engine.runtime.device_gpu").stream_from_handle


def read_device(addr: int, dtype: np.dtype, shape: tuple[int, ...], stream: int) -> np.ndarray:
    memory = cupy.cuda.UnownedMemory(addr, int(np.prod(shape)) * dtype.itemsize, None)
    view = cupy.ndarray(shape, dtype, cupy.cuda.MemoryPointer(memory, 0))
    stream_from_handle(stream).synchronize()  # the value is complete at this point
    return cupy.asnumpy(view)


def test_gpu_debug_tensor_reaches_the_listener() -> None:
    engine = _build(mark=True, device=trt.DeviceType.GPU)
    context = engine.create_execution_context()
    listener = Collector(read_device)
    context.set_debug_listener(listener)
    assert context.set_tensor_debug_state("conv_out", True)
    for _ in range(3):  # would be captured and replayed without the debug tensor
        y = cupy.asnumpy(context.infer({"x": X})["y"])
    assert [call[0] for call in listener.calls] == [trt.TensorLocation.DEVICE] * 3
    np.testing.assert_allclose(listener.seen["conv_out"], _reference(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(y, np.maximum(_reference(), 0), rtol=1e-3, atol=1e-3)
