"""Optimizer benchmark (not a test), on the nine light models shipped with onnx: layer
counts before/after the passes, max error against onnxruntime with and without the passes,
CPU batch-1 latency against onnxruntime in the same run, peak activation memory against its
lower bound, and cold build against a rebuild with a warm timing cache. Prints a Markdown
table (docs/benchmarks.md, "Builder optimizer (CPU)").

    PYTHONPATH=. .venv/bin/python benchmarks/optimizer_bench.py [--models resnet50,...]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import time
from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort

import engine as trt
from engine.builder import pipeline
from engine.network.inference import infer_all
from engine.network.layer import TensorInfo
from engine.onnx import OnnxParser
from engine.types import nbytes_of

LIGHT = pathlib.Path(onnx.__file__).parent / "backend/test/data/light"


def build(path: pathlib.Path, cache: trt.ITimingCache | None = None, passes: bool = True
          ) -> tuple[trt.ICudaEngine, int, float]:
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    if not OnnxParser(network, logger).parse_from_file(str(path)):
        raise RuntimeError(f"cannot parse {path.name}")
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    if cache is not None:
        config.set_timing_cache(cache, False)
    saved = pipeline.PASSES
    if not passes:
        pipeline.PASSES = []
    try:
        start = time.perf_counter()
        plan = builder.build_serialized_network(network, config)
        seconds = time.perf_counter() - start
    finally:
        pipeline.PASSES = saved
    return trt.Runtime(logger).deserialize_cuda_engine(plan), network.num_layers, seconds


def lower_bound(engine: trt.ICudaEngine) -> int:
    """The largest total of intermediate tensors alive at once (network I/O excluded)."""
    network = engine._network
    layers = network._layers
    infos = infer_all(layers, {t: TensorInfo(tuple(t.shape), t.dtype) for t in network._inputs})
    pinned = set(network._inputs) | set(network._outputs)
    last = {}
    for index, layer in enumerate(layers):
        for t in layer._inputs + layer._outputs:
            if t is not None:
                last[t] = index
    live: dict = {}
    peak = 0
    for index, layer in enumerate(layers):
        for t in layer._outputs:
            if t not in pinned:
                live[t] = nbytes_of(infos[t].dtype, infos[t].shape)
        peak = max(peak, sum(live.values()))
        for t in list(live):
            if last[t] <= index:
                del live[t]
    return peak


def interleaved_latency(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median milliseconds of each function, run in turns so that a busy host slows all
    alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) * 1e3 for name, t in times.items()}


def max_errors(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """Max absolute error, and that relative to the reference's largest magnitude."""
    error = float(np.abs(got.astype(np.float64) - want).max())
    return error, error / max(float(np.abs(want).max()), 1e-30)


ROW = ("| {model} | {defined} → {plain} → {optimized} | {plain_abs:.1e} / {plain_rel:.1e} | "
       "{opt_abs:.1e} / {opt_rel:.1e} | {ours:.1f} | {ort:.1f} | {ratio:.2f}x | "
       "{arena:.1f} / {bound:.1f} MB | {cold:.2f} / {warm:.2f} s ({speedup:.1f}x) |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="resnet50,squeezenet,densenet121,inception_v1,"
                        "inception_v2,shufflenet,bvlc_alexnet,zfnet512,vgg19")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or ''} "
          f"onnxruntime {ort.__version__}, numpy {np.__version__}; random normal input, "
          f"batch 1, FP32, latency = median of {args.repeats} interleaved runs")
    print("| model | layers: ONNX-defined → plan without passes → optimized plan | "
          "max error vs onnxruntime without passes (abs / rel) | with passes (abs / rel) | "
          "ours ms | onnxruntime ms | ratio | activation memory: plan / lower bound | "
          "build: cold / warm timing cache |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        path = LIGHT / f"light_{model}.onnx"
        proto = onnx.load(str(path))
        initializers = {i.name for i in proto.graph.initializer}
        graph_input = next(i for i in proto.graph.input if i.name not in initializers)
        name = graph_input.name
        shape = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        try:
            plain, _, _ = build(path, passes=False)
            cache = trt.Builder(trt.Logger()).create_builder_config().create_timing_cache(b"")
            optimized, defined, cold = build(path, cache)
            _, _, warm = build(path, cache)
        except Exception as exc:  # noqa: BLE001 - report and go on to the next model
            print(f"| {model} | build failed: {str(exc)[:200]} |")
            continue
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        want = session.run(None, {name: x})[0]
        context = optimized.create_execution_context()
        got = list(context.infer({name: x}).values())[0]
        unoptimized = list(plain.create_execution_context().infer({name: x}).values())[0]
        plain_abs, plain_rel = max_errors(unoptimized, want)
        opt_abs, opt_rel = max_errors(got, want)
        ms = interleaved_latency({"ours": lambda: context.infer({name: x}),
                                  "ort": lambda: session.run(None, {name: x})}, args.repeats)
        print(ROW.format(model=model, defined=defined, plain=plain.num_layers,
                         optimized=optimized.num_layers, plain_abs=plain_abs,
                         plain_rel=plain_rel, opt_abs=opt_abs, opt_rel=opt_rel,
                         ours=ms["ours"], ort=ms["ort"], ratio=ms["ours"] / ms["ort"],
                         arena=optimized.device_memory_size_v2 / 1e6,
                         bound=lower_bound(optimized) / 1e6, cold=cold, warm=warm,
                         speedup=cold / warm), flush=True)


if __name__ == "__main__":
    main()
