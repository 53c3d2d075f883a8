"""Where the device memory that a GPU build leaves allocated comes from (issue 5: a ResNet-50
b1 FP16 build left 10.3 GB; a BERT build 0.2 GB).

    python benchmarks/gpu_build_memory.py                       # ResNet-50 b1, all sources
    python benchmarks/gpu_build_memory.py --sources cublas      # without the cuDNN tactics

Prints the tactic timings that grew the memory in use the most (measured around each
tactic's device timing), the memory the build left, and then what each release gives back,
in turn: Python's garbage, CuPy's pools, our cached cuDNN graphs, the cuDNN handles
destroyed (``cudnn.destroy_handle``; dropping the Python object does not), the CUDA graph
memory pool trimmed, and the context's local-memory reservation resized (the stack-size
limit set to another value and back).
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import cupy
import torch

import engine as trt
import engine.kernels.gpu as gpu
from benchmarks.gpu_models import bert_model, build_plan, export_onnx, resnet50_model


def used_mib() -> float:
    free, total = cupy.cuda.runtime.memGetInfo()
    return (total - free) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet50", choices=("resnet50", "bert"))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--sources", default="all", choices=("all", "cublas", "cudnn"))
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    torch.manual_seed(0)
    model, sample = {"resnet50": resnet50_model, "bert": bert_model}[args.model]()
    model.eval()
    with torch.no_grad():
        onnx_bytes = export_onnx(model, sample(args.batch))

    growth: list[tuple[float, str, str]] = []
    timer = gpu.device_milliseconds

    def measured(run: Any, iterations: int, rounds: int) -> float | None:
        before = used_mib()
        ms = timer(run, iterations, rounds)
        tactic = getattr((run.__defaults__ or (None,))[0], "name", "?")
        growth.append((used_mib() - before, tactic, f"{ms} ms"))
        return ms

    gpu.device_milliseconds = measured
    if args.sources != "all":
        from engine.builder import build as build_module

        allowed = {"cublas": trt.TacticSource.CUBLAS, "cudnn": trt.TacticSource.CUDNN}
        original = build_module._TacticChooser.allowed

        def only(self: Any, tactic: Any) -> bool:
            if tactic.source in ("CUBLAS", "CUDNN"):
                return tactic.source == allowed[args.sources].name
            return original(self, tactic)

        build_module._TacticChooser.allowed = only  # type: ignore[method-assign]
    cupy.get_default_memory_pool().free_all_blocks()
    start = used_mib()
    started = time.perf_counter()
    build_plan(onnx_bytes, fp16=True)
    print(f"{args.model} b{args.batch} FP16, sources {args.sources}: build "
          f"{time.perf_counter() - started:.1f} s, memory in use {start:.0f} -> "
          f"{used_mib():.0f} MiB")
    growth.sort(reverse=True)
    print(f"tactic timings that grew it most (of {len(growth)}):")
    for mib, tactic, ms in growth[:args.top]:
        print(f"  {mib:8.0f} MiB  {tactic}  ({ms})")

    from engine.kernels.gpu import cudnn_conv

    def release(what: str, action: Any) -> None:
        before = used_mib()
        try:
            action()
            gc.collect()
            print(f"{what:<48} {before:8.0f} -> {used_mib():8.0f} MiB")
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"{what:<48} failed: {type(exc).__name__}: {exc}")

    def destroy_handles() -> None:
        import cudnn

        for handle in cudnn_conv._LOCAL.handles.values():
            cudnn.destroy_handle(handle)
        cudnn_conv._LOCAL.handles.clear()

    def resize_local_memory() -> None:
        runtime = cupy.cuda.runtime
        limit = runtime.deviceGetLimit(0)
        runtime.deviceSetLimit(0, limit + 1024)
        runtime.deviceSetLimit(0, limit)

    def trim_graph_memory() -> None:
        cupy.cuda.runtime.deviceSynchronize()
        from cupy_backends.cuda.api import runtime as backend

        trim = getattr(backend, "deviceGraphMemTrim", None)
        if trim is None:
            raise RuntimeError("this CuPy has no deviceGraphMemTrim")
        trim(cupy.cuda.Device().id)

    release("Python garbage", lambda: None)
    release("CuPy pools", lambda: (cupy.get_default_memory_pool().free_all_blocks(),
                                   cupy.get_default_pinned_memory_pool().free_all_blocks()))
    release("cached cuDNN graphs", cudnn_conv._LOCAL.graphs.clear)
    release("cuDNN handles destroyed", destroy_handles)
    release("CUDA graph memory trimmed", trim_graph_memory)
    release("local-memory reservation resized", resize_local_memory)
    release("torch's cache", torch.cuda.empty_cache)


if __name__ == "__main__":
    main()
