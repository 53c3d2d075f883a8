"""Optimizer benchmark (not a test), on the nine light models shipped with onnx: layer
counts before/after the passes, max error against onnxruntime with and without the passes,
CPU batch-1 latency against onnxruntime in the same run, peak activation memory against its
lower bound, and cold build against a rebuild with a warm timing cache. Prints a Markdown
table (docs/benchmarks.md, "Builder optimizer (CPU)").

    PYTHONPATH=. .venv/bin/python benchmarks/optimizer_bench.py [--models resnet50,...]

Besides the light models (``resnet50``, ``squeezenet``, ...), ``torch_resnet50`` and
``torch_bert`` are exported from PyTorch at run time with random weights
(``tests/onnx/pytorch_models.py``: torchvision's ResNet-50 architecture; a 12-layer BERT-base
encoder, batch 1, sequence 128); they need the dev extra's CPU torch.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import time
from collections.abc import Callable
from functools import partial

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


def build(model: onnx.ModelProto, cache: trt.ITimingCache | None = None, passes: bool = True
          ) -> tuple[trt.ICudaEngine, int, float]:
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    if not OnnxParser(network, logger).parse(model.SerializeToString()):
        raise RuntimeError(f"cannot parse {model.graph.name}")
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


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


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


def ort_options() -> ort.SessionOptions:
    """onnxruntime's defaults but for spinning: its pool thread spin-waits after each run and
    holds a core for the next 60-80 ms, which slowed our runs taken in turns with it by about
    20 ms on 2 cores. Measured without spinning, its own latency is the same on an idle host
    (46 ms for ResNet-50) and lower on a busy one."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def max_errors(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """Max absolute error, and that relative to the reference's largest magnitude."""
    error = float(np.abs(got.astype(np.float64) - want).max())
    return error, error / max(float(np.abs(want).max()), 1e-30)


def load_model(model: str) -> onnx.ModelProto:
    """A light model of the onnx package, or a PyTorch export made now (``torch_*``)."""
    if not model.startswith("torch_"):
        return onnx.load(str(LIGHT / f"light_{model}.onnx"))
    import tempfile

    from tests.onnx import pytorch_models

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / f"{model}.onnx"
        if model == "torch_resnet50":
            pytorch_models.export_resnet50(path)
        elif model == "torch_bert":
            pytorch_models.export_bert(path, pytorch_models.BertConfig(layers=12, hidden=768,
                                                                       heads=12),
                                       batch=1, sequence=128)
        else:
            raise SystemExit(f"unknown model {model!r}: torch_resnet50 or torch_bert")
        return onnx.load(str(path))


def sample_feeds(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Random normal floats (seed 0) for each graph input; token ids in [0, 1000) and masks
    of ones for integer inputs."""
    rng = np.random.default_rng(0)
    initializers = {i.name for i in proto.graph.initializer}
    feeds = {}
    for graph_input in proto.graph.input:
        if graph_input.name in initializers:
            continue
        tensor_type = graph_input.type.tensor_type
        shape = [d.dim_value for d in tensor_type.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        if dtype.kind == "f":
            feeds[graph_input.name] = rng.standard_normal(shape).astype(dtype)
        elif "mask" in graph_input.name:
            feeds[graph_input.name] = np.ones(shape, dtype)
        else:
            feeds[graph_input.name] = rng.integers(0, 1000, shape).astype(dtype)
    return feeds


def with_logits_output(model: onnx.ModelProto) -> str | None:
    """Add the input of the last Softmax as a graph output; returns its name. These models'
    weights are constants, so their 1000 logits are equal in exact arithmetic and the softmax
    turns a last-ulp difference into a different answer: the logits say more."""
    softmax = [n for n in model.graph.node if n.op_type == "Softmax"]
    if not softmax:
        return None
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(softmax[-1].input[0]))
    return softmax[-1].input[0]


ROW = ("| {model} | {defined} → {plain} → {optimized} | {plain_abs:.1e} / {plain_rel:.1e} | "
       "{opt_abs:.1e} / {opt_rel:.1e} | {logits} | {ours:.1f} | {ort:.1f} | {ratio:.2f}x | "
       "{arena:.1f} / {bound:.1f} MB | {cold:.2f} / {warm:.2f} s ({speedup:.1f}x) |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="resnet50,squeezenet,densenet121,inception_v1,"
                        "inception_v2,shufflenet,bvlc_alexnet,zfnet512,vgg19")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {cpu_name()} ({platform.machine()}, {os.cpu_count()} CPUs); "
          f"onnxruntime {ort.__version__}, numpy {np.__version__}; random normal input, "
          f"batch 1, FP32, latency = median of {args.repeats} interleaved runs")
    print("| model | layers: ONNX-defined → plan without passes → optimized plan | "
          "output max error vs onnxruntime without passes (abs / rel) | with passes (abs / rel) | "
          "logits max rel error without / with passes | ours ms | onnxruntime ms | ratio | "
          "activation memory: plan / lower bound | build: cold / warm timing cache |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        proto = load_model(model)
        logits = with_logits_output(proto)
        feeds = sample_feeds(proto)
        try:
            plain, _, _ = build(proto, passes=False)
            cache = trt.Builder(trt.Logger()).create_builder_config().create_timing_cache(b"")
            optimized, defined, cold = build(proto, cache)
            _, _, warm = build(proto, cache)
        except Exception as exc:  # noqa: BLE001 - report and go on to the next model
            print(f"| {model} | build failed: {str(exc)[:200]} |")
            continue
        session = ort.InferenceSession(proto.SerializeToString(), ort_options(),
                                       providers=["CPUExecutionProvider"])
        want = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
        output = proto.graph.output[0].name
        context = optimized.create_execution_context()
        got = context.infer(dict(feeds))
        unoptimized = plain.create_execution_context().infer(dict(feeds))
        plain_abs, plain_rel = max_errors(unoptimized[output], want[output])
        opt_abs, opt_rel = max_errors(got[output], want[output])
        logit_errors = "-" if logits is None else (
            f"{max_errors(unoptimized[logits], want[logits])[1]:.1e} / "
            f"{max_errors(got[logits], want[logits])[1]:.1e}")
        ms = interleaved_latency({"ours": partial(context.infer, feeds),
                                  "ort": partial(session.run, None, feeds)}, args.repeats)
        print(ROW.format(model=model, defined=defined, plain=plain.num_layers,
                         optimized=optimized.num_layers, plain_abs=plain_abs,
                         plain_rel=plain_rel, opt_abs=opt_abs, opt_rel=opt_rel,
                         logits=logit_errors,
                         ours=ms["ours"], ort=ms["ort"], ratio=ms["ours"] / ms["ort"],
                         arena=optimized.device_memory_size_v2 / 1e6,
                         bound=lower_bound(optimized) / 1e6, cold=cold, warm=warm,
                         speedup=cold / warm), flush=True)


if __name__ == "__main__":
    main()
