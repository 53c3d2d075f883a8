"""Every cuDNN execution plan of the convolution graphs the GPU tactics build, timed: for
ResNet-50's convolution shapes, the FP16 fused convolution (``cudnn_conv``) and the INT8 one
(``cudnn_quantized``: int8 codes, INT32 sums, per-channel dequantizing epilogue, then
residual / ReLU / requantization as the fused layer asks), the plan cuDNN's heuristics pick
(what the tactics run without a timed choice) against every plan of heuristics A, B and the
fallback list.

    python benchmarks/cudnn_plans.py                 # needs a GPU and nvidia-cudnn-frontend
    python benchmarks/cudnn_plans.py --batch 256 --top 3

Prints per graph: the heuristic choice's microseconds, the fastest plan's, their ratio, and
the ``--top`` fastest plans by name.
"""

from __future__ import annotations

import argparse

import cupy
import numpy as np

from engine.kernels.gpu import cudnn_conv, cudnn_quantized
from engine.kernels.gpu.capabilities import empty_channels_last
from engine.kernels.gpu.stream_gate import StreamGate
from engine.network.layers.math_pointwise import ActivationType

# (name, channels, maps, kernel, stride, size)
SHAPES = (
    ("1x1 64->256 56", 64, 256, 1, 1, 56),
    ("1x1 256->64 56", 256, 64, 1, 1, 56),
    ("3x3 64 56", 64, 64, 3, 1, 56),
    ("3x3 128 28", 128, 128, 3, 1, 28),
    ("3x3 256 14", 256, 256, 3, 1, 14),
    ("1x1 512->2048 7", 512, 2048, 1, 1, 7),
)


def _event_ms(run, runs: int = 20) -> float:
    """Device milliseconds of one ``run``: the runs are enqueued behind a gate (the
    profiler's), so the host's launch cost does not pace them."""
    for _ in range(3):
        run()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    best = float("inf")
    for _ in range(3):
        gate = StreamGate()
        try:
            start.record()
            for _ in range(runs):
                run()
            end.record()
        finally:
            gate.open()
        end.synchronize()
        best = min(best, cupy.cuda.get_elapsed_time(start, end) / runs)
    return best


def _buffer(tensor_shape: tuple[int, ...], dtype, rng: np.random.Generator) -> cupy.ndarray:
    out = empty_channels_last(tensor_shape, dtype) if len(tensor_shape) == 4 else \
        cupy.empty(tensor_shape, dtype)
    if np.dtype(dtype) == np.int8:
        out[...] = cupy.asarray(rng.integers(-20, 20, tensor_shape).astype(np.int8))
    else:
        out[...] = cupy.asarray((rng.standard_normal(tensor_shape) * 0.1).astype(dtype))
    return out


def time_plans(graph, pack: dict, top: int) -> tuple[float, float, list[tuple[float, str]]]:
    """(heuristic choice ms, fastest plan ms, the fastest plans)."""
    handle = cudnn_conv._handle()
    cudnn_conv._cudnn().set_stream(handle=handle, stream=cupy.cuda.get_current_stream().ptr)
    chosen_ws = cupy.empty(max(int(graph.get_workspace_size()), 1), cupy.uint8)
    chosen = _event_ms(lambda: graph.execute(pack, chosen_ws, handle=handle))
    timings = []
    for index in range(graph.get_execution_plan_count()):
        name = graph.get_plan_name_at_index(index)
        try:
            graph.build_plan_at_index(index)
            ws = cupy.empty(max(int(graph.get_workspace_size_plan_at_index(index)), 1),
                            cupy.uint8)
            ms = _event_ms(lambda i=index, w=ws: graph.execute_plan_at_index(
                pack, w, i, handle=handle))
        except Exception:  # noqa: BLE001 - a plan this graph cannot run
            continue
        timings.append((ms, name))
    timings.sort()
    return chosen, timings[0][0] if timings else float("nan"), timings[:top]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--top", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    relu = ActivationType.RELU
    for name, channels, maps, kernel, stride, size in SHAPES:
        pad = kernel // 2
        out_size = (size + 2 * pad - kernel) // stride + 1
        x = (args.batch, channels, size, size)
        w = (maps, channels, kernel, kernel)
        out = (args.batch, maps, out_size, out_size)
        conv = ([pad, pad], [pad, pad], [stride, stride], [1, 1])
        half, int8 = np.dtype(np.float16), np.dtype(np.int8)
        variants = {  # name: (FP16 graph arguments) or (INT8 graph arguments)
            "fp16 bias relu": (half, True, False, relu, 0.0),
            "fp16 bias res relu": (half, True, True, relu, 0.0),
            "int8 relu ->int8": (None, relu, 0.0, True, int8),
            "int8 res relu ->fp16": (half, relu, 0.0, False, half),
            "int8 ->fp16": (None, None, 0.0, False, half),
        }
        for variant, rest in variants.items():
            kind = cudnn_quantized._Int8ConvGraph if variant.startswith("int8") \
                else cudnn_conv._Graph
            try:
                g = kind(x, w, out, *conv, *rest)
            except Exception as exc:  # noqa: BLE001
                print(f"{name:18s} {variant:22s} not built: {type(exc).__name__}: {exc}"[:200])
                continue
            graph = g.graph
            quantized = variant.startswith("int8")
            io = np.int8 if quantized else np.float16
            pack = {g.x: _buffer(x, io, rng), g.w: _buffer(w, io, rng),
                    g.y: empty_channels_last(out, np.int8 if "->int8" in variant
                                             else np.float16)}
            if quantized:
                pack[g.scale] = cupy.full(maps, 1e-3, cupy.float32)
                pack[g.bias] = cupy.zeros(maps, cupy.float32)
                if g.inverse is not None:
                    pack[g.inverse] = cupy.full(maps, 0.05, cupy.float32)
            elif g.b is not None:
                pack[g.b] = cupy.zeros(maps, cupy.float16)
            if g.r is not None:
                pack[g.r] = _buffer(out, np.float16, rng)
            chosen, best, fastest = time_plans(graph, pack, args.top)
            print(f"{name:18s} {variant:22s} heuristic {chosen * 1000:7.1f} us  best "
                  f"{best * 1000:7.1f} us  ({chosen / best:4.2f}x)  plans "
                  f"{graph.get_execution_plan_count():3d}  fastest: " +
                  "; ".join(f"{n} {t * 1000:.1f}" for t, n in fastest), flush=True)


if __name__ == "__main__":
    main()
