"""What the GPU tests share: build a network for the GPU target, run it, and compare with the
same network built for the CPU target."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import engine as trt
from tests.support import Define, build_engine


def build_gpu_engine(define: Define, inputs: Mapping[str, np.ndarray], **kwargs: Any
                     ) -> trt.ICudaEngine:
    """``tests.support.build_engine`` for the GPU target, exact FP32 (TF32 off: the tests
    compare FP32 against the CPU target closely) unless ``tf32=True``."""
    hook = kwargs.pop("config_hook", None)
    tf32 = kwargs.pop("tf32", False)

    def on_gpu(config: trt.IBuilderConfig) -> None:
        config.default_device_type = trt.DeviceType.GPU
        if not tf32:
            config.clear_flag(trt.BuilderFlag.TF32)
        if hook is not None:
            hook(config)

    engine = build_engine(define, inputs, config_hook=on_gpu, **kwargs)
    assert engine.target["backend"] == "gpu"
    return engine


def run_on_both(define: Define, inputs: Mapping[str, np.ndarray], **kwargs: Any
                ) -> tuple[list[Any], list[np.ndarray]]:
    """The outputs of ``define`` on the GPU target (CuPy, run three times so the CUDA graph
    is captured and replayed) and on the CPU target (NumPy)."""
    gpu = build_gpu_engine(define, inputs, **kwargs).create_execution_context()
    for _ in range(3):
        by_gpu = gpu.infer(dict(inputs))
    cpu = build_engine(define, inputs, **kwargs).create_execution_context()
    by_cpu = cpu.infer(dict(inputs))
    count = len(by_cpu)
    return ([by_gpu[f"out{i}"] for i in range(count)], [by_cpu[f"out{i}"] for i in range(count)])


class DeviceAllocator(trt.IOutputAllocator):
    """An output allocator handing out CuPy device buffers; keeps the last buffer and the
    shape it was told (for data-dependent outputs on the GPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer: Any = None
        self.shape: tuple[int, ...] | None = None

    def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int
                          ) -> int:
        import cupy

        self.buffer = cupy.empty(max(size, 1), cupy.uint8)
        return int(self.buffer.data.ptr)

    def notify_shape(self, tensor_name: str, shape: Any) -> None:
        self.shape = tuple(shape)


def only_source(source: trt.TacticSource, fp16: bool) -> Any:
    """A config hook: ``source`` as the only tactic source (so a layer it serves must take
    its tactic; tactics of no source stay allowed), FP16 allowed or not."""
    def hook(config: trt.IBuilderConfig) -> None:
        config.set_tactic_sources(1 << int(source))
        if fp16:
            config.set_flag(trt.BuilderFlag.FP16)
    return hook
