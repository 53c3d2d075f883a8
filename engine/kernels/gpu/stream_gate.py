"""A gate on a CUDA stream: a kernel that holds the stream while the host enqueues work
behind it, then lets it all run back to back. Timing small kernels launched from Python with
events measures the host's launch latency unless the stream is held like this: the GPU
profiler and the timing of cuDNN's plans enqueue behind a gate, so their events time the
device.

>>> from engine.kernels.gpu.stream_gate import StreamGate  # doctest: +SKIP
>>> gate = StreamGate(); enqueue_work(); gate.open()      # doctest: +SKIP
"""

from __future__ import annotations

import cupy
import numpy as np

# The gate is a kernel spinning on a pinned host flag. It opens by itself after
# _GATE_LIMIT_NS, so work that waits on the stream mid-enqueue (a dynamic shape read back)
# delays the run instead of deadlocking it.
_GATE_SOURCE = r"""
extern "C" __global__ void engine_profile_gate(const volatile int* flag,
                                               unsigned long long limit_ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        __nanosleep(2000);
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (*flag == 0 && now - start < limit_ns);
}
"""
_GATE_LIMIT_NS = 2_000_000_000


class StreamGate:
    """A closed gate on the current stream until ``open()`` (see _GATE_SOURCE)."""

    _kernel: cupy.RawKernel | None = None

    def __init__(self) -> None:
        if StreamGate._kernel is None:
            StreamGate._kernel = cupy.RawKernel(_GATE_SOURCE, "engine_profile_gate")
        self._memory = cupy.cuda.alloc_pinned_memory(4)
        self._flag = np.frombuffer(self._memory, np.int32, 1)
        self._flag[0] = 0
        StreamGate._kernel((1,), (1,), (self._memory.ptr, np.uint64(_GATE_LIMIT_NS)))

    def open(self) -> None:
        self._flag[0] = 1
