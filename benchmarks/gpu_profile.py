"""Where the GPU time of a built model goes: the kernels of one CUDA-graph replay, by total
device time (PyTorch's profiler over CUPTI sees the kernels CuPy's graphs launch).

    python benchmarks/gpu_profile.py --model bert --batch 1
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

import engine as trt
from benchmarks.gpu_models import (
    _TORCH_TYPES,
    bert_model,
    build_plan,
    export_onnx,
    resnet50_model,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bert")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    torch.manual_seed(0)
    model, sample = {"bert": bert_model, "resnet50": resnet50_model}[args.model]()
    model.eval()
    x = sample(args.batch)
    with torch.no_grad():
        plan = build_plan(export_onnx(model, x), fp16=True)[0]
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan)
    casts = [name for name, _, tactic in engine.layer_tactics if tactic.endswith(".cast")]
    print(f"{args.model} b{args.batch}: {len(casts)} casts: {casts[:12]}")
    dx = x.cuda().to(_TORCH_TYPES[engine.get_tensor_dtype("x")])
    dy = torch.empty(tuple(engine.get_tensor_shape("y")),
                     dtype=_TORCH_TYPES[engine.get_tensor_dtype("y")], device="cuda")
    context = engine.create_execution_context()
    context.set_tensor_address("x", dx.data_ptr())
    context.set_tensor_address("y", dy.data_ptr())
    stream = torch.cuda.current_stream().cuda_stream
    for _ in range(3):
        context.execute_async_v3(stream)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(args.runs):
            context.execute_async_v3(stream)
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    events.sort(key=lambda e: -e.device_time_total)
    total = sum(e.device_time_total for e in events) / args.runs
    launches = sum(e.count for e in events) / args.runs
    print(f"per run: {total:.1f} us of kernels in {launches:.0f} launches")
    for e in events[:args.top]:
        print(f"  {e.device_time_total / args.runs:8.1f} us  x{e.count / args.runs:5.1f}  "
              f"{e.key[:110]}")


if __name__ == "__main__":
    main()
