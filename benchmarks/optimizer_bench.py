"""Optimizer benchmark (not a test): layer counts before/after the passes and output
agreement on onnx's light models, CPU ResNet-50 latency against onnxruntime in the same run,
cold build vs rebuild with a warm timing cache, peak activation memory vs its lower bound.

    PYTHONPATH=. .venv/bin/python benchmarks/optimizer_bench.py [--models resnet50,...]
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

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


def latency(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="resnet50,squeezenet,densenet121,inception_v1,"
                        "inception_v2,shufflenet,bvlc_alexnet,zfnet512,vgg19")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
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
            print(f"{model}: build failed: {exc}")
            continue
        context = optimized.create_execution_context()
        got = list(context.infer({name: x}).values())[0]
        want = list(plain.create_execution_context().infer({name: x}).values())[0]
        reference = numpy_helper.to_array(onnx.load_tensor(str(LIGHT / f"light_{model}_output_0.pb")))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        ort_ms = latency(lambda: session.run(None, {name: x}), args.repeats)
        ours_ms = latency(lambda: context.infer({name: x}), args.repeats)
        bound = lower_bound(optimized)
        print(f"{model}: layers {defined} defined -> {plain.num_layers} unoptimized -> "
              f"{optimized.num_layers} optimized; max |optimized - unoptimized| "
              f"{np.abs(got - want).max():.2e}; reference output shape {reference.shape}")
        print(f"  latency batch 1: ours {ours_ms:.1f} ms, onnxruntime {ort_ms:.1f} ms, ratio "
              f"{ours_ms / ort_ms:.2f}x")
        print(f"  build: cold {cold:.2f} s, warm timing cache {warm:.2f} s, speedup "
              f"{cold / warm:.2f}x")
        print(f"  activation memory: plan {optimized.device_memory_size_v2} B, lower bound "
              f"{bound} B, ratio {optimized.device_memory_size_v2 / max(bound, 1):.2f}x")


if __name__ == "__main__":
    main()
