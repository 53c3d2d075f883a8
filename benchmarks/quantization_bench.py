"""INT8 (explicit Q/DQ) against FP16 on the GPU target: ResNet-50's layout (stem, 3-4-6-3
bottlenecks, widths 64..2048; no batch norm: folded into the convolutions in a deployed
model), built twice with the layer API from the same random weights — an FP16 network, and
the same network with quantize/dequantize pairs on every convolution's input (per tensor),
its weights (per output channel) and each residual add's identity input (NVIDIA's QAT recipe
for ResNet; ``--no-residual-qdq`` leaves the residuals FP16) — both strongly typed in
HALF, run with CUDA graphs on the caller's buffers in the same process. The input scales are
calibrated as TensorRT's IInt8MinMaxCalibrator does: each quantized tensor's largest magnitude
over a calibration batch (other random images than the timed ones) run through the FP16
network on the CPU target, divided by 127.

    python benchmarks/quantization_bench.py                  # batch 64, 224x224 (needs a GPU)
    python benchmarks/quantization_bench.py --batch 8 --size 64 --target cpu   # a smoke test

Prints per build: milliseconds per run, images per second, build time and the tactics chosen;
then INT8 / FP16 throughput (issue 6's target: at least 1.5) and the INT8 output's error
against the FP16 output (relative L2 norm). ``--fp8`` builds the same network with FP8 (E4M3)
Q/DQ too (activation scales: the calibrated largest magnitude onto 448; weights per output
channel) and prints its throughput and error against FP16 the same way.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import engine as trt

STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (width, blocks, stride)
CALIBRATION_BATCH = 2


class ResNetBuilder:
    """Adds ResNet-50's layers to ``network``; ``quantized`` wraps every convolution's
    input (per-tensor ``scales``, in the order they are tapped) and weights in Q/DQ pairs
    and, with ``quantize_residuals``, each block's residual input too (NVIDIA's QAT recipe
    for ResNet: the residual add's identity input is quantized, so the whole block can stay
    INT8). ``taps`` collects the tensors to calibrate: each convolution's input, then its
    residual where it has one."""

    def __init__(self, network: trt.INetworkDefinition, quantized: bool,
                 scales: list[float] | None = None, seed: int = 0,
                 quantize_residuals: bool = True, code_type: trt.DataType = trt.DataType.INT8):
        self.net, self.quantized, self.scales = network, quantized, scales
        self.quantize_residuals = quantize_residuals
        self.code_type = code_type
        self.largest_code = 448.0 if code_type == trt.DataType.FP8 else 127.0
        self.rng = np.random.default_rng(seed)
        self.taps: list[trt.ITensor] = []

    def constant(self, array: np.ndarray) -> trt.ITensor:
        return self.net.add_constant(array.shape, trt.Weights(array)).get_output(0)

    def qdq(self, x: trt.ITensor, scale: np.ndarray, axis: int) -> trt.ITensor:
        s = self.constant(scale.astype(np.float16))
        q = self.net.add_quantize(x, s, self.code_type)
        dq = self.net.add_dequantize(q.get_output(0), s, trt.DataType.HALF)
        q.axis = dq.axis = axis
        return dq.get_output(0)

    def conv(self, x: trt.ITensor, maps: int, kernel: int, stride: int = 1,
             relu: bool = True, residual: trt.ITensor | None = None) -> trt.ITensor:
        channels = x.shape[1]
        fan_in = channels * kernel * kernel
        w = (self.rng.standard_normal((maps, channels, kernel, kernel)) *
             np.sqrt((0.2 if residual is not None else 2.0) / fan_in)).astype(np.float16)
        b = (self.rng.standard_normal(maps) * 0.01).astype(np.float16)
        self.taps.append(x)
        if self.quantized:
            assert self.scales is not None, "a quantized network needs calibrated scales"
            x = self.qdq(x, np.array(self.scales[len(self.taps) - 1]), -1)
            scale = np.abs(w.astype(np.float32)).reshape(maps, -1).max(axis=1) / \
                self.largest_code
            weights = self.qdq(self.constant(w), scale, 0)
            layer = self.net.add_convolution_nd(x, maps, (kernel, kernel), trt.Weights(),
                                                trt.Weights(b))
            layer.set_input(1, weights)
        else:
            layer = self.net.add_convolution_nd(x, maps, (kernel, kernel), trt.Weights(w),
                                                trt.Weights(b))
        layer.stride_nd = (stride, stride)
        layer.padding_nd = (kernel // 2, kernel // 2)
        y = layer.get_output(0)
        if residual is not None and self.quantize_residuals:
            self.taps.append(residual)
            if self.quantized:
                residual = self.qdq(residual, np.array(self.scales[len(self.taps) - 1]), -1)
        if residual is not None:
            y = self.net.add_elementwise(y, residual, trt.ElementWiseOperation.SUM).get_output(0)
        if relu:
            y = self.net.add_activation(y, trt.ActivationType.RELU).get_output(0)
        return y

    def bottleneck(self, x: trt.ITensor, width: int, stride: int) -> trt.ITensor:
        shortcut = x
        if stride != 1 or x.shape[1] != width * 4:
            shortcut = self.conv(x, width * 4, 1, stride, relu=False)
        h = self.conv(x, width, 1)
        h = self.conv(h, width, 3, stride)
        return self.conv(h, width * 4, 1, residual=shortcut)

    def define(self, batch: int, size: int) -> None:
        x = self.net.add_input("x", trt.DataType.HALF, (batch, 3, size, size))
        h = self.conv(x, 64, 7, 2)
        pool = self.net.add_pooling_nd(h, trt.PoolingType.MAX, (3, 3))
        pool.stride_nd, pool.padding_nd = (2, 2), (1, 1)
        h = pool.get_output(0)
        for width, blocks, stride in STAGES:
            for block in range(blocks):
                h = self.bottleneck(h, width, stride if block == 0 else 1)
        pooled = self.net.add_reduce(h, trt.ReduceOperation.AVG, 0b1100, True).get_output(0)
        flat = self.net.add_shuffle(pooled)
        flat.reshape_dims = (batch, 2048)
        fc = self.constant((self.rng.standard_normal((2048, 1000)) * 0.02).astype(np.float16))
        y = self.net.add_matrix_multiply(flat.get_output(0), trt.MatrixOperation.NONE, fc,
                                         trt.MatrixOperation.NONE).get_output(0)
        y.name = "y"
        self.net.mark_output(y)


def calibrate(size: int, quantize_residuals: bool = True) -> list[float]:
    """Per-tensor scales of the tapped tensors (convolution inputs, residuals): the largest
    magnitude of each over a calibration batch through the FP16 network (CPU target),
    divided by 127."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    resnet = ResNetBuilder(network, quantized=False, quantize_residuals=quantize_residuals)
    resnet.define(CALIBRATION_BATCH, size)
    for i, tap in enumerate(resnet.taps):  # a block's input feeds two convolutions
        if tap.name != "x" and not tap.is_network_output:
            tap.name = f"tap{i}"
            network.mark_output(tap)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    config.builder_optimization_level = 0
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError("calibration build failed")
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    images = np.random.default_rng(2).standard_normal((CALIBRATION_BATCH, 3, size, size))
    outputs = engine.create_execution_context().infer({"x": images.astype(np.float16)})
    outputs["x"] = images
    amax = [float(np.abs(np.asarray(outputs[t.name], np.float32)).max()) for t in resnet.taps]
    return [max(a, 1e-3) / 127 for a in amax]


def build(quantized: bool, batch: int, size: int, target: str, level: int,
          scales: list[float] | None = None, quantize_residuals: bool = True,
          code_type: trt.DataType = trt.DataType.INT8) -> tuple[trt.ICudaEngine, float]:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    started = time.perf_counter()
    ResNetBuilder(network, quantized, scales, quantize_residuals=quantize_residuals,
                  code_type=code_type).define(batch, size)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.GPU if target == "gpu" else trt.DeviceType.CPU
    config.builder_optimization_level = level
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError("build failed")
    return trt.Runtime(logger).deserialize_cuda_engine(plan), time.perf_counter() - started


def tactic_summary(engine: trt.ICudaEngine) -> str:
    counts: dict[str, int] = {}
    for _, _, tactic in engine.layer_tactics:
        counts[tactic] = counts.get(tactic, 0) + 1
    return ", ".join(f"{t} x{n}" for t, n in sorted(counts.items()))


def run_gpu(engine: trt.ICudaEngine, x: np.ndarray, runs: int) -> tuple[float, np.ndarray]:
    """Median milliseconds per run (CUDA events; CUDA graphs on), and the output."""
    import cupy

    stream = cupy.cuda.Stream(non_blocking=True)
    dx = cupy.asarray(x)
    dy = cupy.empty(tuple(engine.get_tensor_shape("y")), cupy.float16)
    context = engine.create_execution_context()
    context.set_tensor_address("x", dx.data.ptr)
    context.set_tensor_address("y", dy.data.ptr)
    for _ in range(3):
        assert context.execute_async_v3(stream.ptr)
    stream.synchronize()
    samples = []
    for _ in range(5):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record(stream)
        for _ in range(runs):
            context.execute_async_v3(stream.ptr)
        end.record(stream)
        end.synchronize()
        samples.append(cupy.cuda.get_elapsed_time(start, end) / runs)
    return statistics.median(samples), cupy.asnumpy(dy)


class _Totals(trt.IProfiler):
    def __init__(self) -> None:
        super().__init__()
        self.ms: dict[str, float] = {}

    def report_layer_time(self, layer_name: str, ms: float) -> None:
        self.ms[layer_name] = self.ms.get(layer_name, 0.0) + ms


def profile_gpu(engine: trt.ICudaEngine, x: np.ndarray, top: int) -> str:
    """The ``top`` slowest layers (median of 5 profiled runs: layers one by one between CUDA
    events, no graphs), with their tactics and the share of the profiled total."""
    import cupy

    tactics = {name: tactic for name, _, tactic in engine.layer_tactics}
    context = engine.create_execution_context()
    dx = cupy.asarray(x)
    dy = cupy.empty(tuple(engine.get_tensor_shape("y")), cupy.float16)
    context.set_tensor_address("x", dx.data.ptr)
    context.set_tensor_address("y", dy.data.ptr)
    runs = []
    for _ in range(6):
        context.profiler = totals = _Totals()
        assert context.execute_async_v3(0)
        runs.append(totals.ms)
    ms = {name: statistics.median(run[name] for run in runs[1:]) for name in runs[-1]}
    total = sum(ms.values())
    by_tactic: dict[str, float] = {}
    for name, t in ms.items():
        by_tactic[tactics.get(name, "?")] = by_tactic.get(tactics.get(name, "?"), 0.0) + t
    lines = [f"      profiled total {total:.3f} ms; by tactic: " + ", ".join(
        f"{t} {v:.3f}" for t, v in sorted(by_tactic.items(), key=lambda kv: -kv[1]))]
    for name, t in sorted(ms.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"      {t:7.3f} ms  {tactics.get(name, '?'):40s} {name[:70]}")
    return "\n".join(lines)


def run_cpu(engine: trt.ICudaEngine, x: np.ndarray, runs: int) -> tuple[float, np.ndarray]:
    context = engine.create_execution_context()
    y = np.empty(tuple(engine.get_tensor_shape("y")), np.float16)
    context.set_tensor_address("x", x.ctypes.data)
    context.set_tensor_address("y", y.ctypes.data)
    context.execute_v2([x.ctypes.data, y.ctypes.data])
    started = time.perf_counter()
    for _ in range(runs):
        context.execute_v2([x.ctypes.data, y.ctypes.data])
    return (time.perf_counter() - started) * 1000 / runs, y.copy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--target", choices=("gpu", "cpu"), default="gpu")
    parser.add_argument("--no-residual-qdq", action="store_true",
                        help="quantize only the convolutions' inputs (residuals stay FP16)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also print each build's N slowest layers (GPU profiler)")
    parser.add_argument("--level", type=int, default=0,
                        help="builder optimization level (0: first valid tactic, no timing)")
    parser.add_argument("--fp8", action="store_true",
                        help="also build and time the FP8 (E4M3) Q/DQ network")
    args = parser.parse_args()
    x = np.random.default_rng(1).standard_normal((args.batch, 3, args.size, args.size)) \
        .astype(np.float16)
    run = run_gpu if args.target == "gpu" else run_cpu
    started = time.perf_counter()
    residuals = not args.no_residual_qdq
    scales = calibrate(args.size, residuals)
    print(f"calibrated {len(scales)} input scales on {CALIBRATION_BATCH} images "
          f"({time.perf_counter() - started:.1f} s): {min(scales) * 127:.2f} to "
          f"{max(scales) * 127:.2f} largest magnitude", flush=True)
    results = {}
    builds = [("fp16", False, trt.DataType.INT8, scales), ("int8", True, trt.DataType.INT8, scales)]
    if args.fp8:  # the calibrated largest magnitudes onto FP8's 448 instead of INT8's 127
        builds.append(("fp8", True, trt.DataType.FP8, [s * 127 / 448 for s in scales]))
    for name, quantized, code_type, build_scales in builds:
        try:
            engine, build_s = build(quantized, args.batch, args.size, args.target, args.level,
                                    build_scales, residuals, code_type)
            ms, y = run(engine, x, args.runs)
        except Exception as exc:  # noqa: BLE001 - report it; the other builds still count
            if name == "fp16":
                raise
            print(f"{name}  failed: {type(exc).__name__}: {exc}", flush=True)
            continue
        results[name] = (ms, y)
        print(f"{name}  b{args.batch} {args.size}px  {ms:8.3f} ms  "
              f"{args.batch * 1000 / ms:8.0f} img/s  build {build_s:5.1f} s\n"
              f"      tactics: {tactic_summary(engine)}", flush=True)
        if args.profile and args.target == "gpu":
            print(profile_gpu(engine, x, args.profile), flush=True)
    fp16_ms, fp16_y = results["fp16"]
    a = fp16_y.astype(np.float64)
    for name in [n for n in results if n != "fp16"]:
        ms, y = results[name]
        error = float(np.linalg.norm(a - y.astype(np.float64)) / max(np.linalg.norm(a), 1e-30))
        target = "  (target >= 1.5)" if name == "int8" else ""
        print(f"{name}/fp16 throughput {fp16_ms / ms:5.2f}x{target}  "
              f"{name} vs fp16 rel.err {error:.1e}")


if __name__ == "__main__":
    main()
