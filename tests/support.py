"""What the engine tests share: build a network the way a user would, run it on the CPU
target through both execution paths, and hand back the outputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

import engine as trt


class CollectingLogger(trt.ILogger):
    """A logger that keeps every message, for tests that assert on them."""

    def __init__(self) -> None:
        trt.ILogger.__init__(self)
        self.messages: list[tuple[Any, str]] = []

    def log(self, severity: Any, msg: str) -> None:
        self.messages.append((severity, msg))

    def errors(self) -> list[str]:
        return [m for s, m in self.messages if s <= trt.Logger.ERROR]


Define = Callable[[trt.INetworkDefinition, dict[str, trt.ITensor]], Sequence[trt.ITensor]]


def build_engine(
    define: Define,
    inputs: Mapping[str, np.ndarray],
    *,
    flags: int = 0,
    dynamic: Mapping[str, Sequence[int]] | None = None,
    config_hook: Callable[[trt.IBuilderConfig], None] | None = None,
) -> trt.ICudaEngine:
    """Build an engine on the CPU target.

    ``define(network, tensors)`` adds layers to the network, whose inputs (``tensors`` by name)
    are declared from ``inputs``' arrays, and returns the tensors to mark as outputs (named
    ``out0``, ``out1``, ...). ``dynamic`` maps an input name to its declared shape with -1s;
    the profile then spans exactly the given array's shape.
    """
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(flags)
    tensors = {}
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    profile = builder.create_optimization_profile()
    for name, arr in inputs.items():
        shape = tuple((dynamic or {}).get(name, arr.shape))
        tensors[name] = network.add_input(name, trt.DataType(_dtype(arr)), shape)
        if dynamic and name in dynamic:
            profile.set_shape(name, arr.shape, arr.shape, arr.shape)
    if dynamic:
        config.add_optimization_profile(profile)
    outputs = define(network, tensors)
    for i, t in enumerate(outputs):
        t.name = f"out{i}"
        network.mark_output(t)
    if config_hook is not None:
        config_hook(config)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, f"build failed: {logger.errors()}"
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine is not None, f"deserialization failed: {logger.errors()}"
    return engine


def _dtype(arr: np.ndarray) -> trt.DataType:
    from engine.types import from_numpy_dtype

    return from_numpy_dtype(arr.dtype)


def run_network(
    define: Define,
    inputs: Mapping[str, np.ndarray],
    **kwargs: Any,
) -> list[np.ndarray]:
    """Build with ``build_engine`` and run; returns the outputs in order.

    Runs twice — through ``context.infer`` and through the TensorRT path
    (``set_input_shape`` / ``set_tensor_address`` with pointers / ``execute_async_v3``) — and
    checks the two agree, so every layer test covers both.
    """
    engine = build_engine(define, inputs, **kwargs)
    context = engine.create_execution_context()
    by_infer = context.infer(dict(inputs))
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    outs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    second = engine.create_execution_context()
    keep = {}
    for name, arr in inputs.items():
        keep[name] = np.ascontiguousarray(arr)
        assert second.set_input_shape(name, arr.shape)
        second.set_tensor_address(name, keep[name].ctypes.data)
    static = all(d >= 0 for n in outs for d in second.get_tensor_shape(n))
    if static:
        for name in outs:
            shape = tuple(second.get_tensor_shape(name))
            keep[name] = np.zeros(shape, trt.nptype(engine.get_tensor_dtype(name)))
            second.set_tensor_address(name, keep[name].ctypes.data)
        assert second.execute_async_v3(0), "execute_async_v3 failed"
        for name in outs:
            np.testing.assert_array_equal(keep[name], by_infer[name], err_msg=name)
    return [by_infer[f"out{i}"] for i in range(len(outs))]


def gemm_rounds_rows_alike() -> bool:
    """Whether NumPy's BLAS gives equal rows of ``a @ b`` for equal rows of ``a``. OpenBLAS's
    AVX2 SGEMM (Haswell and Zen cores) does not: its micro-kernels for the first and last
    rows of a block sum the inner dimension in two interleaved halves, the others in one
    chain (kernel/x86_64/sgemm_kernel_8x4_haswell_2.c); its AVX-512 kernel does."""
    a = np.full((64, 512), 0.02, np.float32)
    product = a @ np.random.default_rng(0).random((512, 169), dtype=np.float32)
    return bool((product == product[0]).all())
