"""What the ONNX parser tests share: parse a model the way a user would, build it for the CPU
target, run it."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx

import engine as trt
from tests.support import CollectingLogger


def parse(model: onnx.ModelProto | bytes, path: str | None = None
          ) -> tuple[bool, trt.INetworkDefinition, trt.OnnxParser]:
    logger = CollectingLogger()
    network = trt.Builder(logger).create_network(0)
    parser = trt.OnnxParser(network, logger)
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return parser.parse(data, path), network, parser


def errors(parser: trt.OnnxParser) -> list[trt.ParserError]:
    return [parser.get_error(i) for i in range(parser.num_errors)]


def run_model(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Parse, build for the CPU target (a profile at the feeds' shapes) and infer."""
    ok, network, parser = parse(model)
    assert ok, [str(e) for e in errors(parser)]
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    profile = builder.create_optimization_profile()
    dynamic = False
    for i in range(network.num_inputs):
        t = network.get_input(i)
        if any(d < 0 for d in t.shape):
            shape = feeds[t.name].shape
            profile.set_shape(t.name, shape, shape, shape)
            dynamic = True
        if t.is_shape_tensor:
            values = [int(v) for v in feeds[t.name].reshape(-1)]
            profile.set_shape_input(t.name, values, values, values)
            dynamic = True
    if dynamic:
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors()
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    return engine.create_execution_context().infer(dict(feeds))
