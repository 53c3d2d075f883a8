"""A TensorRT 10 network-API script for a 3-layer MLP with a dynamic batch dimension and an
optimization profile, run with set_input_shape, set_tensor_address and execute_async_v3.
Only the import line differs from a TensorRT script.

    python examples/tensorrt_style/mlp.py
"""

from __future__ import annotations

import numpy as np

import engine as trt
from examples.tensorrt_style.buffers import allocate, download, upload

TRT_LOGGER = trt.Logger(trt.Logger.WARNING)
SIZES = (64, 128, 128, 10)


def make_weights(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [((rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32),
             rng.standard_normal((1, n_out)).astype(np.float32) * 0.1)
            for n_in, n_out in zip(SIZES[:-1], SIZES[1:])]


def build_engine(weights):
    builder = trt.Builder(TRT_LOGGER)
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (-1, SIZES[0]))
    h = x
    for i, (w, b) in enumerate(weights):
        wt = network.add_constant(w.shape, trt.Weights(w)).get_output(0)
        bt = network.add_constant(b.shape, trt.Weights(b)).get_output(0)
        mm = network.add_matrix_multiply(h, trt.MatrixOperation.NONE, wt, trt.MatrixOperation.NONE)
        h = network.add_elementwise(mm.get_output(0), bt,
                                    trt.ElementWiseOperation.SUM).get_output(0)
        if i < len(weights) - 1:
            h = network.add_activation(h, trt.ActivationType.RELU).get_output(0)
    h.name = "logits"
    network.mark_output(h)

    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, SIZES[0]), (8, SIZES[0]), (64, SIZES[0]))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    return trt.Runtime(TRT_LOGGER).deserialize_cuda_engine(plan)


def infer(engine, x: np.ndarray) -> np.ndarray:
    context = engine.create_execution_context()
    context.set_input_shape("x", x.shape)
    inp, inp_address = allocate(engine, x.shape, np.float32)
    out, out_address = allocate(engine, tuple(context.get_tensor_shape("logits")), np.float32)
    upload(inp, x)
    context.set_tensor_address("x", inp_address)
    context.set_tensor_address("logits", out_address)
    assert context.execute_async_v3(0)
    return download(out)


def main() -> None:
    weights = make_weights()
    engine = build_engine(weights)
    x = np.random.default_rng(1).standard_normal((5, SIZES[0])).astype(np.float32)
    print(infer(engine, x).round(3))


if __name__ == "__main__":
    main()
