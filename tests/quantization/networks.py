"""The digits CNN as engine networks: FP32, with explicit Q/DQ layers (INT8, FP8), or with
INT4 weights; and the builder and calibrator the accuracy tests use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import engine as trt
from tests.quantization.digits import Cnn, digits, trained_cnn
from tests.support import CollectingLogger

Wrap = Callable[[trt.INetworkDefinition, trt.ITensor], trt.ITensor]
WeightsFn = Callable[[trt.INetworkDefinition, np.ndarray, str], trt.ITensor | None]


def define_cnn(model: Cnn, activation: Wrap | None = None,
               weights: WeightsFn | None = None) -> Callable[..., list[trt.ITensor]]:
    """``define(network, inputs)`` of the CNN; ``activation`` wraps each input of a
    convolution or matrix multiply (Q/DQ), ``weights(network, array, kind)`` gives the weight
    tensor of each (kind: "conv" or "matmul"; None keeps the real weights)."""
    wrap = activation or (lambda net, t: t)

    def conv(net: trt.INetworkDefinition, x: trt.ITensor, w: np.ndarray, b: np.ndarray,
             stride: int) -> trt.ITensor:
        tensor = weights(net, w, "conv") if weights else None
        layer = net.add_convolution_nd(wrap(net, x), w.shape[0], (3, 3),
                                       trt.Weights() if tensor is not None else trt.Weights(w),
                                       trt.Weights(b))
        if tensor is not None:
            layer.set_input(1, tensor)
        layer.stride_nd = (stride, stride)
        layer.padding_nd = (1, 1)
        return net.add_activation(layer.get_output(0), trt.ActivationType.RELU).get_output(0)

    def define(net: trt.INetworkDefinition, t: dict[str, trt.ITensor]) -> list[trt.ITensor]:
        h1 = conv(net, t["x"], model.w1, model.b1, 1)
        h2 = conv(net, h1, model.w2, model.b2, 2)
        flat = net.add_shuffle(h2)
        flat.reshape_dims = (-1, 256)
        w3 = (weights(net, model.w3, "matmul") if weights else None) or \
            net.add_constant(model.w3.shape, trt.Weights(model.w3)).get_output(0)
        product = net.add_matrix_multiply(wrap(net, flat.get_output(0)), trt.MatrixOperation.NONE,
                                          w3, trt.MatrixOperation.NONE).get_output(0)
        bias = net.add_constant((1, 10), trt.Weights(model.b3.reshape(1, 10))).get_output(0)
        return [net.add_elementwise(product, bias, trt.ElementWiseOperation.SUM).get_output(0)]

    return define


def constant(net: trt.INetworkDefinition, value: np.ndarray) -> trt.ITensor:
    value = np.asarray(value, np.float32)
    return net.add_constant(value.shape, trt.Weights(value)).get_output(0)


def qdq(net: trt.INetworkDefinition, x: trt.ITensor, scale: np.ndarray, to_type: Any,
        axis: int = -1, block_shape: Sequence[int] = ()) -> trt.ITensor:
    """``dequantize(quantize(x))`` with ``scale``."""
    s = constant(net, scale)
    q = net.add_quantize(x, s, to_type)
    dq = net.add_dequantize(q.get_output(0), s, trt.float32)
    for layer in (q, dq):
        layer.axis = axis
        if block_shape:
            layer.set_block_shape(block_shape)
    return dq.get_output(0)


def activation_amax() -> list[float]:
    """The largest magnitude entering each quantized layer, over the training split."""
    model, data = trained_cnn(), digits()
    x = data.train_x
    h1 = np.maximum(forward_conv(x, model.w1, model.b1, 1), 0)
    h2 = np.maximum(forward_conv(h1, model.w2, model.b2, 2), 0)
    return [float(np.abs(t).max()) for t in (x, h1, h2)]


def forward_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    from tests.quantization.digits import _conv

    return _conv(x, w, b, stride)[0]


def int4_weights(net: trt.INetworkDefinition, w: np.ndarray, kind: str) -> trt.ITensor:
    """INT4 weight codes with their dequantize: per output channel for a convolution, in
    blocks of 32 along K (one per output column) for the matrix multiply."""
    if kind == "conv":  # per output channel
        scale = per_channel_scale(w, 0, 7)
        codes = np.clip(np.rint(w / scale[:, None, None, None]), -8, 7)
        axis, block = 0, ()
    else:  # blocks of 32 along K, one per output column
        scale = (np.abs(w).reshape(8, 32, 10).max(axis=1) / 7).astype(np.float32)
        codes = np.clip(np.rint(w / np.repeat(scale, 32, axis=0)), -8, 7)
        axis, block = -1, (32, 1)
    packed = trt.Weights(trt.pack_int4(codes), dtype=trt.int4)
    c = net.add_constant(codes.shape, packed).get_output(0)
    s = net.add_constant(scale.shape, trt.Weights(scale)).get_output(0)
    dq = net.add_dequantize(c, s, trt.float32)
    dq.axis = axis
    if block:
        dq.set_block_shape(block)
    return dq.get_output(0)


def fp8_cnn(model: Cnn) -> Callable[..., list[trt.ITensor]]:
    """The CNN with FP8 Q/DQ: each activation per tensor (its training-split maximum onto
    448), each weight per output channel."""
    amax = iter(activation_amax())

    def activation(net: trt.INetworkDefinition, x: trt.ITensor) -> trt.ITensor:
        return qdq(net, x, np.float32(next(amax) / 448), trt.fp8)

    def weights(net: trt.INetworkDefinition, w: np.ndarray, kind: str) -> trt.ITensor:
        axis = 0 if kind == "conv" else 1
        c = net.add_constant(w.shape, trt.Weights(w)).get_output(0)
        return qdq(net, c, per_channel_scale(w, axis, 448), trt.fp8, axis=axis)

    return define_cnn(model, activation, weights)


def per_channel_scale(w: np.ndarray, axis: int, qmax: float) -> np.ndarray:
    moved = np.moveaxis(np.abs(w), axis, 0).reshape(w.shape[axis], -1)
    return (moved.max(axis=1) / qmax).astype(np.float32)


def build(define: Callable[..., list[trt.ITensor]], *, flags: Sequence[Any] = (),
          calibrator: Any = None, batch: int = 100,
          hook: Callable[[trt.INetworkDefinition], None] | None = None,
          device: trt.DeviceType = trt.DeviceType.CPU,
          config_hook: Callable[[trt.IBuilderConfig], None] | None = None
          ) -> tuple[trt.ICudaEngine, CollectingLogger]:
    """The engine of ``define`` with a dynamic batch (profile 1 / ``batch`` / 512), for the
    CPU target or ``device`` (the GPU's FP32 exact: TF32 off); ``config_hook`` edits the
    configuration last."""
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    x = net.add_input("x", trt.float32, (-1, 1, 8, 8))
    (out,) = define(net, {"x": x})
    out.name = "logits"
    net.mark_output(out)
    if hook is not None:
        hook(net)
    config = builder.create_builder_config()
    config.default_device_type = device
    if device == trt.DeviceType.GPU:
        config.clear_flag(trt.BuilderFlag.TF32)
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 1, 8, 8), (batch, 1, 8, 8), (512, 1, 8, 8))
    config.add_optimization_profile(profile)
    for flag in flags:
        config.set_flag(flag)
    config.int8_calibrator = calibrator
    if config_hook is not None:
        config_hook(config)
    plan = builder.build_serialized_network(net, config)
    assert plan is not None, logger.errors()
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine is not None, logger.errors()
    return engine, logger


def run(engine: trt.ICudaEngine, x: np.ndarray) -> np.ndarray:
    logits = engine.create_execution_context().infer({"x": x})["logits"]
    return logits.get() if hasattr(logits, "get") else logits  # a CuPy array from the GPU


def layer_types(engine: trt.ICudaEngine) -> list[str]:
    return [layer.layer_type.name for layer in engine._network._layers]


def calibrator_for(base: type, batches: Sequence[np.ndarray], cache: bytes | None = None
                   ) -> Any:
    """A calibrator of class ``base`` giving ``batches`` through host pointers."""

    class Calibrator(base):  # type: ignore[valid-type, misc]
        def __init__(self) -> None:
            base.__init__(self)
            self.batches = iter(batches)
            self.current: np.ndarray | None = None
            self.cache = cache
            self.written: bytes | None = None
            self.batches_given = 0

        def get_batch_size(self) -> int:
            return len(batches[0])

        def get_batch(self, names: list[str]) -> list[int] | None:
            assert names == ["x"]
            self.current = next(self.batches, None)
            if self.current is None:
                return None
            self.batches_given += 1
            return [int(self.current.ctypes.data)]

        def read_calibration_cache(self) -> bytes | None:
            return self.cache

        def write_calibration_cache(self, data: memoryview) -> None:
            self.written = bytes(data)

    return Calibrator()
