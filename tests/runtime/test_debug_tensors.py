"""Debug tensors (TensorRT 10's ``network.mark_debug`` and ``IDebugListener``): a marked
tensor survives the optimizer (no fusion swallows it), is no I/O tensor of the engine, and an
execution context hands its value to its listener when its debug state is on."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import engine as trt
from tests.support import CollectingLogger

RNG = np.random.default_rng(4)
W = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)
X = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)


def read_host(addr: int, dtype: np.dtype, shape: tuple[int, ...], stream: int) -> np.ndarray:
    buffer = (ctypes.c_byte * (int(np.prod(shape)) * dtype.itemsize)).from_address(addr)
    return np.frombuffer(buffer, dtype).reshape(shape).copy()


class Collector(trt.IDebugListener):
    """Keeps each reported value (copied out with ``read``: host memory by default)."""

    def __init__(self, read=read_host) -> None:  # noqa: ANN001
        super().__init__()
        self.read = read
        self.seen: dict[str, np.ndarray] = {}
        self.calls: list[tuple] = []

    def process_debug_tensor(self, addr, location, type, shape, name, stream):  # noqa: A002, ANN001, ANN201
        self.calls.append((location, type, tuple(shape), name, stream))
        self.seen[name] = self.read(addr, np.dtype(trt.nptype(type)), tuple(shape), stream)
        return True


def _build(mark: bool, logger: CollectingLogger | None = None,
           device: trt.DeviceType = trt.DeviceType.CPU) -> trt.ICudaEngine:
    logger = logger or CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, X.shape)
    conv = network.add_convolution_nd(x, 4, (3, 3), W, B)
    conv.padding_nd = (1, 1)
    conv.get_output(0).name = "conv_out"
    relu = network.add_activation(conv.get_output(0), trt.ActivationType.RELU)
    relu.get_output(0).name = "y"
    network.mark_output(relu.get_output(0))
    if mark:
        assert network.mark_debug(conv.get_output(0))
        assert network.is_debug_tensor(conv.get_output(0))
    config = builder.create_builder_config()
    config.default_device_type = device
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors()
    return trt.Runtime(logger).deserialize_cuda_engine(plan)


def _reference() -> np.ndarray:
    padded = np.pad(X[0], ((0, 0), (1, 1), (1, 1)))
    out = np.zeros((4, 8, 8))
    for k in range(4):
        for i in range(8):
            for j in range(8):
                out[k, i, j] = (padded[:, i:i + 3, j:j + 3] * W[k]).sum() + B[k]
    return out[np.newaxis]


def test_a_debug_tensor_survives_fusion_and_reaches_the_listener() -> None:
    fused = _build(mark=False)
    assert len(fused.layer_tactics) == 1  # conv + relu fuse without the mark
    engine = _build(mark=True)
    assert len(engine.layer_tactics) == 2  # with it, the convolution's output stays
    assert engine.num_io_tensors == 2  # and it is no I/O tensor
    context = engine.create_execution_context()
    listener = Collector()
    assert context.set_debug_listener(listener) and context.get_debug_listener() is listener
    assert not context.get_debug_state("conv_out")
    y = context.infer({"x": X})["y"]
    assert listener.calls == []  # debug state off: nothing reported
    assert context.set_tensor_debug_state("conv_out", True)
    assert context.get_debug_state("conv_out")
    y = context.infer({"x": X})["y"]
    (location, dtype, shape, name, stream), = listener.calls
    assert (location, dtype, shape, name, stream) == (
        trt.TensorLocation.HOST, trt.DataType.FLOAT, (1, 4, 8, 8), "conv_out", 0)
    np.testing.assert_allclose(listener.seen["conv_out"], _reference(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, np.maximum(_reference(), 0), rtol=1e-4, atol=1e-4)
    out = np.empty_like(y)
    assert context.execute_v2([X.ctypes.data, out.ctypes.data])  # the pointer path too
    assert len(listener.calls) == 2
    assert context.set_all_tensors_debug_state(False)
    context.infer({"x": X})
    assert len(listener.calls) == 2
    assert context.set_all_tensors_debug_state(True) and context.get_debug_state("conv_out")
    assert context.set_debug_listener(None)
    context.infer({"x": X})  # no listener: nothing to call
    assert len(listener.calls) == 2


def test_debug_tensors_survive_serialization() -> None:
    engine = _build(mark=True)
    again = trt.Runtime(CollectingLogger()).deserialize_cuda_engine(engine.serialize())
    context = again.create_execution_context()
    listener = Collector()
    context.set_debug_listener(listener)
    assert context.set_tensor_debug_state("conv_out", True)
    context.infer({"x": X})
    np.testing.assert_allclose(listener.seen["conv_out"], _reference(), rtol=1e-4, atol=1e-4)


def test_refusals_are_clear() -> None:
    logger = CollectingLogger()
    engine = _build(mark=True, logger=logger)
    context = engine.create_execution_context()
    assert not context.set_tensor_debug_state("y", True)
    assert any("'y' is not a debug tensor of this engine" in e for e in logger.errors())
    assert not context.set_debug_listener(object())
    assert any("expected an IDebugListener" in e for e in logger.errors())
    network = trt.Builder(logger).create_network(0)
    x = network.add_input("x", trt.float32, (2,))
    with pytest.raises(trt.NetworkError, match="is a network input"):
        network.mark_debug(x)
    y = network.add_unary(x, trt.UnaryOperation.NEG).get_output(0)
    assert not network.unmark_debug(y)
    assert network.mark_debug(y) and network.unmark_debug(y) and not network.is_debug_tensor(y)
    with pytest.raises(NotImplementedError):
        trt.IDebugListener().process_debug_tensor(0, None, None, None, "t", 0)


def test_an_output_can_be_a_debug_tensor() -> None:
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (2, 3))
    y = network.add_unary(x, trt.UnaryOperation.NEG).get_output(0)
    y.name = "y"
    network.mark_output(y)
    network.mark_debug(y)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    engine = trt.Runtime(logger).deserialize_cuda_engine(
        builder.build_serialized_network(network, config))
    assert engine.num_io_tensors == 2
    context = engine.create_execution_context()
    listener = Collector()
    context.set_debug_listener(listener)
    assert context.set_tensor_debug_state("y", True)
    value = np.arange(6, dtype=np.float32).reshape(2, 3)
    context.infer({"x": value})
    np.testing.assert_array_equal(listener.seen["y"], -value)
