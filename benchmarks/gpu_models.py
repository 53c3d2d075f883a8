"""Real models on the GPU target against PyTorch in the same process: ResNet-50 (torchvision,
random weights) and a BERT-base-like encoder (12 layers, hidden 768, 12 heads, sequence 128),
exported to ONNX with ``torch.onnx.export`` (Identity nodes kept), parsed with our
``OnnxParser``, built FP16 (and FP32 or BF16 with ``--precisions fp16,fp32,bf16``) for the
GPU and run with CUDA graphs on the caller's buffers; peers: PyTorch eager and
``torch.compile`` (default and reduce-overhead) in the same precision on the same weights and
inputs (TF32 off everywhere unless ``--tf32``).

    python benchmarks/gpu_models.py                      # everything (needs a GPU, minutes)
    python benchmarks/gpu_models.py --models bert --batches 1 --compile none
    python benchmarks/gpu_models.py --precisions fp32 --warm-cache

Prints per model, batch and precision: milliseconds per run and items per second for each
runner, the engine / peer ratios (< 1: the engine is faster), the engine's output error
against PyTorch eager in the same precision (relative L2 norm), its build time (cold, and with
``--warm-cache`` again from the first build's timing cache), the device memory of the engine
(weights, measured around deserializing the plan), of one execution context (activations
and graphs), and what the build itself left allocated after it returned.
"""

from __future__ import annotations

import argparse
import gc
import io
import statistics
import time
from collections.abc import Callable

import cupy
import numpy as np
import torch

import engine as trt
from engine.onnx import OnnxParser

HIDDEN, HEADS, LAYERS, SEQUENCE, VOCABULARY = 768, 12, 12, 128, 30522
TF32 = False  # --tf32: FP32 products on TF32 tensor cores in the engine and the peers


class EncoderLayer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (torch.nn.Linear(HIDDEN, HIDDEN) for _ in range(4))
        self.up = torch.nn.Linear(HIDDEN, 4 * HIDDEN)
        self.down = torch.nn.Linear(4 * HIDDEN, HIDDEN)
        self.norm1, self.norm2 = torch.nn.LayerNorm(HIDDEN), torch.nn.LayerNorm(HIDDEN)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        batch, length = h.shape[0], h.shape[1]

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(batch, length, HEADS, HIDDEN // HEADS).transpose(1, 2)

        q, k, v = heads(self.q(h)), heads(self.k(h)), heads(self.v(h))
        scores = q @ k.transpose(-1, -2) / float(np.sqrt(HIDDEN // HEADS))
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, length, HIDDEN)
        h = self.norm1(h + self.o(context))
        return self.norm2(h + self.down(torch.nn.functional.gelu(self.up(h))))


class Encoder(torch.nn.Module):
    """BERT-base's encoder shape: token + position embeddings, LayerNorm, 12 post-norm
    layers (no attention mask: every sequence is full length)."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = torch.nn.Embedding(VOCABULARY, HIDDEN)
        self.positions = torch.nn.Parameter(torch.randn(1, SEQUENCE, HIDDEN) * 0.02)
        self.norm = torch.nn.LayerNorm(HIDDEN)
        self.layers = torch.nn.ModuleList(EncoderLayer() for _ in range(LAYERS))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.tokens(ids) + self.positions)
        for layer in self.layers:
            h = layer(h)
        return h


def resnet50_model() -> tuple[torch.nn.Module, Callable[[int], torch.Tensor]]:
    import torchvision

    return torchvision.models.resnet50(weights=None), \
        lambda batch: torch.randn(batch, 3, 224, 224)


def bert_model() -> tuple[torch.nn.Module, Callable[[int], torch.Tensor]]:
    return Encoder(), lambda batch: torch.randint(0, VOCABULARY, (batch, SEQUENCE))


def export_onnx(model: torch.nn.Module, x: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False)
    return buffer.getvalue()


def without_identities(onnx_bytes: bytes) -> bytes:
    """The model with its Identity nodes removed (readers take the Identity's input). The
    TorchScript exporter routes most convolution weights through Identity nodes; our parser
    then gives those convolutions their kernel as a tensor input, which the fusion passes
    do not fuse (they need the kernel as weights)."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    graph = model.graph
    outputs = {o.name for o in graph.output}
    alias = {}
    for node in graph.node:
        if node.op_type == "Identity" and node.output[0] not in outputs:
            alias[node.output[0]] = node.input[0]
    kept = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in alias)]
    for node in kept:
        for i, name in enumerate(node.input):
            while name in alias:
                name = alias[name]
            node.input[i] = name
    del graph.node[:]
    graph.node.extend(kept)
    return model.SerializeToString()


# The builder flag each precision allows (the network stays as exported: FP32, weakly typed)
# and the peers' type.
_FLAGS = {"fp32": None, "fp16": trt.BuilderFlag.FP16, "bf16": trt.BuilderFlag.BF16}
_PEER_TYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def build_plan(onnx_bytes: bytes, precision: str, cache: bytes = b""
               ) -> tuple[bytes, float, bytes]:
    """(plan, seconds from parse to plan, the timing cache after the build). ``cache``: a
    serialized timing cache to start from (empty: cold)."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    started = time.perf_counter()
    if not OnnxParser(network, logger).parse(onnx_bytes):
        raise RuntimeError("the ONNX export did not parse")
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.GPU
    flag = _FLAGS[precision]
    if flag is not None:
        config.set_flag(flag)
    if not TF32:  # TensorRT's default allows TF32; the peers run with it off unless --tf32
        config.clear_flag(trt.BuilderFlag.TF32)
    timing = config.create_timing_cache(cache)
    config.set_timing_cache(timing, False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError("build failed")
    return bytes(plan), time.perf_counter() - started, bytes(timing.serialize())


def time_ms(run: Callable[[], object], runs: int, repeats: int = 5) -> float:
    """Median milliseconds per run, CUDA events on PyTorch's current stream."""
    for _ in range(3):
        run()
    torch.cuda.synchronize()
    samples = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(runs):
            run()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / runs)
    return statistics.median(samples)


# Cast layers of the FP16 builds before precision selection counted cast costs (commit
# 4b09de3, benchmarks/gpu_models_h100.txt of then).
BEFORE = {("resnet50", 1): 23, ("resnet50", 64): 8, ("bert", 1): 83, ("bert", 32): 124}

_TORCH_TYPES = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
                trt.DataType.INT64: torch.int64, trt.DataType.INT32: torch.int32}


def used_bytes() -> int:
    gc.collect()  # networks and layers hold cycles; their device copies go with them
    cupy.get_default_memory_pool().free_all_blocks()
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    free, _ = cupy.cuda.runtime.memGetInfo()
    return -int(free)


def bench(name: str, make: Callable, batch: int, modes: list[str], runs: int,
          strip: bool = False, precision: str = "fp16", warm: bool = False) -> list[str]:
    torch.manual_seed(0)
    model, sample = make()
    model.eval()
    x = sample(batch)
    with torch.no_grad():
        onnx_bytes = export_onnx(model, x)
        if strip:
            onnx_bytes = without_identities(onnx_bytes)
    before = used_bytes()
    plan, build_s, cache = build_plan(onnx_bytes, precision)
    held_mb = (used_bytes() - before) / 2**20  # what the build left allocated
    warm_s = build_plan(onnx_bytes, precision, cache)[1] if warm else None
    before = used_bytes()
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan)
    weights_mb = (used_bytes() - before) / 2**20
    stream = torch.cuda.current_stream().cuda_stream
    dx = x.cuda().to(_TORCH_TYPES[engine.get_tensor_dtype("x")])
    shape = tuple(engine.get_tensor_shape("y"))
    dy = torch.empty(shape, dtype=_TORCH_TYPES[engine.get_tensor_dtype("y")], device="cuda")
    before = used_bytes()
    context = engine.create_execution_context()
    context.set_tensor_address("x", dx.data_ptr())
    context.set_tensor_address("y", dy.data_ptr())

    def run_engine() -> None:
        context.execute_async_v3(stream)

    for _ in range(3):
        run_engine()
    torch.cuda.synchronize()
    context_mb = (used_bytes() - before) / 2**20
    engine_ms = time_ms(run_engine, runs)
    ours = dy.float().cpu().numpy()

    peer_type = _PEER_TYPES[precision]
    half = model.to(peer_type).cuda()
    tx = x.cuda() if not x.dtype.is_floating_point else x.cuda().to(peer_type)
    peers: dict[str, float] = {}
    with torch.no_grad():
        reference = half(tx).float().cpu().numpy()
        peers["eager"] = time_ms(lambda: half(tx), runs)
        for mode in modes:
            torch._dynamo.reset()
            compiled = torch.compile(half, mode=None if mode == "default" else mode)
            started = time.perf_counter()
            for _ in range(3):
                compiled(tx)
            torch.cuda.synchronize()
            compile_s = time.perf_counter() - started
            peers[f"compile-{mode}"] = time_ms(lambda c=compiled: c(tx), runs)
            print(f"  ({name} b{batch}: torch.compile {mode} took {compile_s:.0f} s)", flush=True)
    error = float(np.linalg.norm(ours.astype(np.float64) - reference) /
                  np.linalg.norm(reference))
    unit = "img/s" if name == "resnet50" else "seq/s"
    warm_text = "" if warm_s is None else f" (warm cache {warm_s:4.1f} s)"
    lines = [f"{name:<9} b{batch:<3} {precision} engine {engine_ms:8.3f} ms "
             f"{batch * 1000 / engine_ms:9.0f} {unit}  build {build_s:5.1f} s{warm_text}  "
             f"weights {weights_mb:5.0f} MiB  context {context_mb:5.0f} MiB  left by the "
             f"build {held_mb:5.0f} MiB  rel.err {error:.1e}"]
    for peer, ms in peers.items():
        lines.append(f"{'':<14} {peer:<22} {ms:8.3f} ms {batch * 1000 / ms:9.0f} {unit}  "
                     f"engine/peer {engine_ms / ms:5.2f}")
    tactics: dict[str, int] = {}
    for _, _, tactic in engine.layer_tactics:
        tactics[tactic] = tactics.get(tactic, 0) + 1
    casts = sum(n for t, n in tactics.items() if t.endswith(".cast"))
    lines.append(f"{'':<14} layers {sum(tactics.values())} ({casts} casts, before "
                 f"reformat-aware precision: {BEFORE.get((name, batch), '?')}): " +
                 ", ".join(f"{t} x{n}" for t, n in sorted(tactics.items())))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="resnet50,bert")
    parser.add_argument("--batches", default="", help="e.g. 1,64 (default: 1,64 for "
                                                      "ResNet-50, 1,32 for BERT)")
    parser.add_argument("--compile", default="default,reduce-overhead",
                        help="torch.compile modes, or 'none'")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--precisions", default="fp16",
                        help="fp16,fp32,bf16 (peers in the same precision, TF32 off for both)")
    parser.add_argument("--tf32", action="store_true",
                        help="allow TF32 for FP32 products, in the engine and the peers")
    parser.add_argument("--warm-cache", action="store_true",
                        help="also time a rebuild from the first build's timing cache")
    parser.add_argument("--strip-identities", action="store_true",
                        help="remove the export's Identity nodes before parsing (no longer "
                             "needed: the builder inlines constant weights behind them)")
    args = parser.parse_args()
    global TF32
    TF32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = TF32
    torch.backends.cudnn.allow_tf32 = TF32
    modes = [] if args.compile == "none" else args.compile.split(",")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"cupy {cupy.__version__}", flush=True)
    makers = {"resnet50": (resnet50_model, [1, 64]), "bert": (bert_model, [1, 32])}
    for name in args.models.split(","):
        make, batches = makers[name]
        if args.batches:
            batches = [int(b) for b in args.batches.split(",")]
        for batch in batches:
            for precision in args.precisions.split(","):
                try:
                    print("\n".join(bench(name, make, batch, modes, args.runs,
                                          args.strip_identities, precision,
                                          args.warm_cache)), flush=True)
                except Exception as exc:  # noqa: BLE001 - report and go on with the next one
                    print(f"{name} b{batch} {precision}: FAILED {type(exc).__name__}: {exc}",
                          flush=True)


if __name__ == "__main__":
    main()
