"""IProfiler on a GPU execution context: layers run one by one between CUDA events, one
report per layer after the run (the stream is waited for), results unchanged; without a
profiler the context goes back to its CUDA graphs."""

from __future__ import annotations

import numpy as np
import pytest

from tests.gpu.gpu_support import build_gpu_engine
from tests.runtime.test_profiler import Recorder, X, _layer_names, _network

cupy = pytest.importorskip("cupy")


def test_gpu_layers_report_device_times_and_results_do_not_change() -> None:
    engine = build_gpu_engine(_network, {"x": X})
    context = engine.create_execution_context()
    plain = cupy.asnumpy(context.infer({"x": X})["out0"])
    recorder = Recorder()
    context.profiler = recorder
    stream = cupy.cuda.Stream(non_blocking=True)
    dx = cupy.asarray(X)
    dy = cupy.empty(tuple(engine.get_tensor_shape("out0")), cupy.float32)
    context.set_tensor_address("x", dx.data.ptr)
    context.set_tensor_address("out0", dy.data.ptr)
    assert context.execute_async_v3(stream.ptr)
    names = _layer_names(engine)
    assert [n for n, _ in recorder.reports] == names
    assert all(ms >= 0 for _, ms in recorder.reports)
    np.testing.assert_array_equal(cupy.asnumpy(dy), plain)  # complete when reported
    context.profiler = None
    for _ in range(3):  # graphs again: captured, then replayed
        assert context.execute_async_v3(stream.ptr)
    stream.synchronize()
    np.testing.assert_array_equal(cupy.asnumpy(dy), plain)
    assert len(recorder.reports) == len(names)
