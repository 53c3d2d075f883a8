"""Where the host time of one ``execute_async_v3`` goes on the GPU target (cProfile), with
CUDA graphs on and off, for the fp16 batch-1 MLP of ``gpu_bench``.

    python benchmarks/gpu_overhead.py
"""

from __future__ import annotations

import cProfile
import pstats
import time

import cupy
import numpy as np

from benchmarks.gpu_bench import build, mlp


def main() -> None:
    define, _, x = mlp(np.float16, batch=1)
    engine = build(define, x)
    stream = cupy.cuda.Stream(non_blocking=True)
    dx = cupy.asarray(x)
    dy = cupy.empty((1, 1024), np.float16)
    for graphs in (True, False):
        context = engine.create_execution_context()
        context.use_cuda_graphs = graphs
        context.set_tensor_address("x", dx.data.ptr)
        context.set_tensor_address("y", dy.data.ptr)
        for _ in range(5):
            context.execute_async_v3(stream.ptr)
        stream.synchronize()
        states = [(s.graph is not None, s.graph_failed)
                  for s in context._execution._signatures.values()]
        start = time.perf_counter()
        for _ in range(200):
            context.execute_async_v3(stream.ptr)
        host = (time.perf_counter() - start) / 200 * 1e6
        stream.synchronize()
        print(f"graphs={graphs}: {host:.1f} us of host time per call; signatures {states}")
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(100):
            context.execute_async_v3(stream.ptr)
        profile.disable()
        stream.synchronize()
        pstats.Stats(profile).sort_stats("tottime").print_stats(14)


if __name__ == "__main__":
    main()
