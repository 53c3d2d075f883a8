"""Debug tensors on a GPU execution context: the listener gets a device pointer and the run's
stream; the layers run one by one (no CUDA graph) while a debug tensor is active."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt
from tests.runtime.test_debug_tensors import X, _reference

cupy = pytest.importorskip("cupy")


class DeviceCollector(trt.IDebugListener):
    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, np.ndarray] = {}
        self.locations: list[trt.TensorLocation] = []

    def process_debug_tensor(self, addr, location, type, shape, name, stream):  # noqa: A002, ANN001, ANN201
        self.locations.append(location)
        dtype = np.dtype(trt.nptype(type))
        count = int(np.prod(tuple(shape)))
        memory = cupy.cuda.UnownedMemory(addr, count * dtype.itemsize, None)
        view = cupy.ndarray(tuple(shape), dtype, cupy.cuda.MemoryPointer(memory, 0))
        cupy.cuda.ExternalStream(stream).synchronize()
        self.seen[name] = cupy.asnumpy(view)
        return True


def test_gpu_debug_tensor_reaches_the_listener() -> None:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, X.shape)
    from tests.runtime.test_debug_tensors import B, W

    conv = network.add_convolution_nd(x, 4, (3, 3), W, B)
    conv.padding_nd = (1, 1)
    conv.get_output(0).name = "conv_out"
    relu = network.add_activation(conv.get_output(0), trt.ActivationType.RELU)
    relu.get_output(0).name = "y"
    network.mark_output(relu.get_output(0))
    network.mark_debug(conv.get_output(0))
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.GPU
    engine = trt.Runtime(logger).deserialize_cuda_engine(
        builder.build_serialized_network(network, config))
    context = engine.create_execution_context()
    listener = DeviceCollector()
    context.set_debug_listener(listener)
    assert context.set_tensor_debug_state("conv_out", True)
    for _ in range(3):  # would be captured and replayed without the debug tensor
        y = cupy.asnumpy(context.infer({"x": X})["y"])
    assert listener.locations == [trt.TensorLocation.DEVICE] * 3
    np.testing.assert_allclose(listener.seen["conv_out"], _reference(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(y, np.maximum(_reference(), 0), rtol=1e-3, atol=1e-3)
