"""GPU target against PyTorch eager on the same weights: an MLP and a small CNN built with the
layer API, timed with CUDA events on one stream (median of repeated batches of runs).

    python benchmarks/gpu_bench.py

Prints, per model and precision, milliseconds per run for the engine with CUDA graphs, the
engine without them, and PyTorch eager, and the ratios engine / PyTorch (< 1: faster).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import cupy
import numpy as np
import torch

import engine as trt

RNG = np.random.default_rng(0)


def mlp(dtype: type, batch: int = 64, sizes: tuple[int, ...] = (1024, 4096, 4096, 1024)):
    weights = [(RNG.standard_normal((a, b)) / np.sqrt(a)).astype(dtype)
               for a, b in zip(sizes, sizes[1:])]
    biases = [(RNG.standard_normal((1, b)) * 0.1).astype(dtype) for b in sizes[1:]]

    def define(net: trt.INetworkDefinition, x: trt.ITensor) -> trt.ITensor:
        for index, (w, b) in enumerate(zip(weights, biases)):
            wt = net.add_constant(w.shape, w).get_output(0)
            bt = net.add_constant(b.shape, b).get_output(0)
            x = net.add_matrix_multiply(x, trt.MatrixOperation.NONE, wt,
                                        trt.MatrixOperation.NONE).get_output(0)
            x = net.add_elementwise(x, bt, trt.ElementWiseOperation.SUM).get_output(0)
            if index < len(weights) - 1:
                x = net.add_activation(x, trt.ActivationType.RELU).get_output(0)
        return x

    def torch_model(x: torch.Tensor) -> torch.Tensor:
        for index, (w, b) in enumerate(zip(tw, tb)):
            x = torch.addmm(b, x, w)
            if index < len(tw) - 1:
                x = torch.relu(x)
        return x

    tw = [torch.from_numpy(w).cuda() for w in weights]
    tb = [torch.from_numpy(b).cuda() for b in biases]
    x = RNG.standard_normal((batch, sizes[0])).astype(dtype)
    return define, torch_model, x


def cnn(dtype: type, batch: int = 8):
    convs = [(3, 32), (32, 64), (64, 64)]
    kernels = [(RNG.standard_normal((m, c, 3, 3)) / np.sqrt(9 * c)).astype(dtype)
               for c, m in convs]
    biases = [(RNG.standard_normal(m) * 0.1).astype(dtype) for _, m in convs]
    fc = (RNG.standard_normal((64 * 8 * 8, 10)) / 64).astype(dtype)

    def define(net: trt.INetworkDefinition, x: trt.ITensor) -> trt.ITensor:
        for k, b in zip(kernels, biases):
            conv = net.add_convolution_nd(x, k.shape[0], (3, 3), k, b)
            conv.padding_nd = (1, 1)
            x = net.add_activation(conv.get_output(0), trt.ActivationType.RELU).get_output(0)
            if k.shape[0] != 32:
                pool = net.add_pooling_nd(x, trt.PoolingType.MAX, (2, 2))
                pool.stride_nd = (2, 2)
                x = pool.get_output(0)
        flat = net.add_shuffle(x)
        flat.reshape_dims = (batch, -1)
        w = net.add_constant(fc.shape, fc).get_output(0)
        return net.add_matrix_multiply(flat.get_output(0), trt.MatrixOperation.NONE, w,
                                       trt.MatrixOperation.NONE).get_output(0)

    tk = [torch.from_numpy(k).cuda() for k in kernels]
    tb = [torch.from_numpy(b).cuda() for b in biases]
    tfc = torch.from_numpy(fc).cuda()

    def torch_model(x: torch.Tensor) -> torch.Tensor:
        for k, b in zip(tk, tb):
            x = torch.relu(torch.nn.functional.conv2d(x, k, b, padding=1))
            if k.shape[0] != 32:
                x = torch.nn.functional.max_pool2d(x, 2)
        return x.reshape(batch, -1) @ tfc

    x = RNG.standard_normal((batch, 3, 32, 32)).astype(dtype)
    return define, torch_model, x


def build(define: Callable, x: np.ndarray) -> trt.ICudaEngine:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    inp = net.add_input("x", trt.DataType.HALF if x.dtype == np.float16 else trt.float32, x.shape)
    out = define(net, inp)
    out.name = "y"
    net.mark_output(out)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.GPU
    plan = builder.build_serialized_network(net, config)
    assert plan is not None
    return trt.Runtime(logger).deserialize_cuda_engine(plan)


def time_ms(run: Callable[[], None], stream: cupy.cuda.Stream, runs: int = 50,
            repeats: int = 7) -> float:
    for _ in range(5):
        run()
    stream.synchronize()
    samples = []
    for _ in range(repeats):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record(stream)
        for _ in range(runs):
            run()
        end.record(stream)
        end.synchronize()
        samples.append(cupy.cuda.get_elapsed_time(start, end) / runs)
    return statistics.median(samples)


def bench(name: str, model: tuple) -> str:
    define, torch_model, x = model
    engine = build(define, x)
    tactics = sorted({t for _, _, t in engine.layer_tactics})
    stream = cupy.cuda.Stream(non_blocking=True)
    dx = cupy.asarray(x)
    out_shape = tuple(engine.create_execution_context().infer({"x": x})["y"].shape)
    results = {}
    reference = None
    for graphs in (True, False):
        context = engine.create_execution_context()
        context.use_cuda_graphs = graphs
        dy = cupy.empty(out_shape, x.dtype)
        context.set_tensor_address("x", dx.data.ptr)
        context.set_tensor_address("y", dy.data.ptr)
        results[graphs] = time_ms(lambda c=context: c.execute_async_v3(stream.ptr), stream)
        stream.synchronize()
        reference = cupy.asnumpy(dy)
    tstream = torch.cuda.ExternalStream(stream.ptr)
    tx = torch.from_numpy(x).cuda()
    with torch.cuda.stream(tstream), torch.no_grad():
        torch_ms = time_ms(lambda: torch_model(tx), stream)
        expected = torch_model(tx).float().cpu().numpy()
    stream.synchronize()
    error = float(np.linalg.norm(reference.astype(np.float64) - expected) /
                  np.linalg.norm(expected))
    return (f"{name:<14} graphs {results[True]:8.3f} ms  eager {results[False]:8.3f} ms  "
            f"torch {torch_ms:8.3f} ms  ratio(graphs/torch) {results[True] / torch_ms:5.2f}  "
            f"ratio(eager/torch) {results[False] / torch_ms:5.2f}  rel.err {error:.1e}  "
            f"tactics {tactics}")


def main() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"device: {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}")
    lines = [
        bench("mlp fp32 b64", mlp(np.float32)),
        bench("mlp fp16 b64", mlp(np.float16)),
        bench("mlp fp16 b1", mlp(np.float16, batch=1)),
        bench("cnn fp32 b8", cnn(np.float32)),
        bench("cnn fp16 b8", cnn(np.float16)),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
