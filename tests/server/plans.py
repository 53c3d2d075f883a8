"""Plans and configs for server tests, made with the layer API: used by the REST, gRPC and
client tests alike."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import engine as trt

WIDTH = 16


def build_plan(define: Callable[[trt.INetworkDefinition], None], inputs: list[str],
               width: int = WIDTH, max_batch: int = 8,
               target: trt.DeviceType = trt.DeviceType.CPU) -> bytes:
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    network = builder.create_network(0)
    define(network)
    config = builder.create_builder_config()
    config.default_device_type = target
    profile = builder.create_optimization_profile()
    for name in inputs:
        profile.set_shape(name, (1, width), (max_batch, width), (max_batch, width))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None
    return bytes(plan)


def add_sub_plan(max_batch: int = 8, target: trt.DeviceType = trt.DeviceType.CPU,
                 width: int = WIDTH) -> bytes:
    """OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1; FP32 [-1, width]."""
    def define(network: trt.INetworkDefinition) -> None:
        a = network.add_input("INPUT0", trt.float32, (-1, width))
        b = network.add_input("INPUT1", trt.float32, (-1, width))
        for name, op in (("OUTPUT0", trt.ElementWiseOperation.SUM),
                         ("OUTPUT1", trt.ElementWiseOperation.SUB)):
            out = network.add_elementwise(a, b, op).get_output(0)
            out.name = name
            network.mark_output(out)
    return build_plan(define, ["INPUT0", "INPUT1"], width=width, max_batch=max_batch,
                      target=target)


def identity_plan(dtype: trt.DataType, width: int = 4) -> bytes:
    def define(network: trt.INetworkDefinition) -> None:
        out = network.add_identity(network.add_input("INPUT0", dtype, (-1, width))).get_output(0)
        out.name = "OUTPUT0"
        network.mark_output(out)
    return build_plan(define, ["INPUT0"], width=width)


def scale_plan(factor: float) -> bytes:
    """OUTPUT0 = INPUT0 * factor, FP32 [-1, 4]: versions that differ in what they compute."""
    def define(network: trt.INetworkDefinition) -> None:
        x = network.add_input("INPUT0", trt.float32, (-1, 4))
        k = network.add_constant((1, 4), np.full((1, 4), factor, np.float32)).get_output(0)
        out = network.add_elementwise(x, k, trt.ElementWiseOperation.PROD).get_output(0)
        out.name = "OUTPUT0"
        network.mark_output(out)
    return build_plan(define, ["INPUT0"], width=4)


ADD_SUB_CONFIG = """
name: "add_sub"
platform: "tensorrt_plan"
max_batch_size: 8
input [
  { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] },
  { name: "INPUT1" data_type: TYPE_FP32 dims: [ 16 ] }
]
output [
  { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] },
  { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 16 ] }
]
instance_group [ { count: 2 kind: KIND_CPU } ]
%s
"""
BATCHING = """dynamic_batching {
  preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 200000
}"""
