"""A TensorRT 10 network-API script, as one would write it for TensorRT: an MNIST-style CNN
(conv -> relu -> max pool -> conv -> relu -> max pool -> fully connected -> relu -> fully
connected -> softmax), built into a plan, deserialized, and run with set_tensor_address and
execute_async_v3. Only the import line differs from a TensorRT script.

    python examples/tensorrt_style/mnist_cnn.py
"""

from __future__ import annotations

import numpy as np

import engine as trt
from examples.tensorrt_style.buffers import allocate, download, upload

TRT_LOGGER = trt.Logger(trt.Logger.WARNING)
INPUT_NAME, INPUT_SHAPE, OUTPUT_NAME = "data", (1, 1, 28, 28), "prob"


def make_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    return {
        "conv1.weight": w(20, 1, 5, 5), "conv1.bias": w(20, 1).reshape(20),
        "conv2.weight": w(50, 20, 5, 5), "conv2.bias": w(50, 1).reshape(50),
        "fc1.weight": w(500, 800), "fc1.bias": w(500, 1).reshape(500),
        "fc2.weight": w(10, 500), "fc2.bias": w(10, 1).reshape(10),
    }


def add_matmul_as_fc(network, input_tensor, num_outputs, w, b):
    """Fully connected as TensorRT samples write it: reshape, matrix multiply, add bias."""
    batch = input_tensor.shape[0]
    flat = network.add_shuffle(input_tensor)
    flat.reshape_dims = (batch, -1)
    weights = network.add_constant((num_outputs, w.size // num_outputs), trt.Weights(w))
    mm = network.add_matrix_multiply(flat.get_output(0), trt.MatrixOperation.NONE,
                                     weights.get_output(0), trt.MatrixOperation.TRANSPOSE)
    bias = network.add_constant((1, num_outputs), trt.Weights(b.reshape(1, num_outputs)))
    return network.add_elementwise(mm.get_output(0), bias.get_output(0),
                                   trt.ElementWiseOperation.SUM)


def populate_network(network, weights):
    input_tensor = network.add_input(name=INPUT_NAME, dtype=trt.float32, shape=INPUT_SHAPE)

    conv1 = network.add_convolution_nd(input=input_tensor, num_output_maps=20, kernel_shape=(5, 5),
                                       kernel=trt.Weights(weights["conv1.weight"]),
                                       bias=trt.Weights(weights["conv1.bias"]))
    conv1.stride_nd = (1, 1)
    relu1 = network.add_activation(input=conv1.get_output(0), type=trt.ActivationType.RELU)
    pool1 = network.add_pooling_nd(input=relu1.get_output(0), type=trt.PoolingType.MAX,
                                   window_size=(2, 2))
    pool1.stride_nd = trt.Dims2(2, 2)

    conv2 = network.add_convolution_nd(pool1.get_output(0), 50, (5, 5),
                                       trt.Weights(weights["conv2.weight"]),
                                       trt.Weights(weights["conv2.bias"]))
    conv2.stride_nd = (1, 1)
    relu2 = network.add_activation(conv2.get_output(0), trt.ActivationType.RELU)
    pool2 = network.add_pooling_nd(relu2.get_output(0), trt.PoolingType.MAX, (2, 2))
    pool2.stride_nd = trt.Dims2(2, 2)

    fc1 = add_matmul_as_fc(network, pool2.get_output(0), 500, weights["fc1.weight"],
                           weights["fc1.bias"])
    relu3 = network.add_activation(input=fc1.get_output(0), type=trt.ActivationType.RELU)
    fc2 = add_matmul_as_fc(network, relu3.get_output(0), 10, weights["fc2.weight"],
                           weights["fc2.bias"])
    softmax = network.add_softmax(fc2.get_output(0))
    softmax.axes = 1 << 1
    softmax.get_output(0).name = OUTPUT_NAME
    network.mark_output(tensor=softmax.get_output(0))


def build_engine(weights):
    builder = trt.Builder(TRT_LOGGER)
    network = builder.create_network(0)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 28)
    populate_network(network, weights)
    plan = builder.build_serialized_network(network, config)
    runtime = trt.Runtime(TRT_LOGGER)
    return runtime.deserialize_cuda_engine(plan)


def infer(engine, image: np.ndarray) -> np.ndarray:
    """Buffers and pointers where the target wants them: host memory on the CPU target,
    device memory on the GPU."""
    context = engine.create_execution_context()
    buffers = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shape = tuple(context.get_tensor_shape(name))
        buffers[name], address = allocate(engine, shape, trt.nptype(engine.get_tensor_dtype(name)))
        context.set_tensor_address(name, address)
    upload(buffers[INPUT_NAME], image)
    assert context.execute_async_v3(stream_handle=0)
    return download(buffers[OUTPUT_NAME])


def main() -> None:
    weights = make_weights()
    engine = build_engine(weights)
    image = np.random.default_rng(1).random(INPUT_SHAPE, dtype=np.float32)
    prob = infer(engine, image)
    print("prediction:", int(prob.argmax()), "probabilities:", np.round(prob.ravel(), 4))


if __name__ == "__main__":
    main()
