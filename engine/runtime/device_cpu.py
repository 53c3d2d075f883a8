"""The CPU target's device layer: host memory views, and running the layers in order.

Addresses are host pointers (``numpy_array.ctypes.data``); a run completes before
``execute`` returns, whatever stream handle it was given. A run uses one BLAS thread
(``one_blas_thread``): contexts run in parallel on the caller's threads.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import EngineError, ExecutionError, UnsupportedError
from engine.kernels.cpu.blas_threads import one_blas_thread
from engine.network.layer import TensorInfo
from engine.network.tensor import ITensor
from engine.runtime.profiler import LayerTimer
from engine.types import (
    DataType,
    Dims,
    TensorLocation,
    from_numpy_dtype,
    nbytes_of,
    nptype,
    pack_int4,
    unpack_int4,
)

if TYPE_CHECKING:
    from engine.runtime.engine import ICudaEngine


def host_array(address: int, shape: Sequence[int], dtype: DataType) -> np.ndarray:
    """A writable NumPy view of host memory at ``address`` (INT4: the packed bytes)."""
    nbytes = nbytes_of(dtype, shape)
    if nbytes == 0:
        return np.empty(tuple(shape), np.uint8 if dtype == DataType.INT4 else nptype(dtype))
    raw = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(address))
    if dtype == DataType.INT4:
        return raw
    return raw.view(nptype(dtype)).reshape(tuple(shape))


class CpuExecution:
    """Per-context execution on the host (the CPU target)."""

    def __init__(self, engine: ICudaEngine) -> None:
        self._engine = engine
        self._release_after: list[list[ITensor]] | None = None
        self._output_dtypes: list[list[np.dtype | None]] | None = None
        self.profiling = False  # a profiler is set on the context: time every layer
        self.timer: LayerTimer | None = None  # the last run's layer times, when profiling
        self.debug: dict[ITensor, str] = {}  # debug tensors reported to debug_listener
        self.debug_listener: Any = None

    @property
    def use_cuda_graphs(self) -> bool:
        return False

    @use_cuda_graphs.setter
    def use_cuda_graphs(self, value: bool) -> None:
        if value:
            raise UnsupportedError("CUDA graphs exist on the GPU target only; this engine "
                                   "targets the CPU")

    def accept_input(self, name: str, value: Any) -> Any:
        """``context.infer``'s feed as an array of this device (NumPy)."""
        return np.asarray(value)

    @staticmethod
    def storage_dtype(dtype: Any) -> np.dtype:
        """The array type ``infer`` takes and gives for a tensor of ``dtype``."""
        return np.dtype(nptype(dtype))

    def execute(self, infos: Mapping[ITensor, TensorInfo], addresses: Mapping[str, int],
                stream_handle: int) -> None:
        """The pointer path: read inputs at and write outputs to host ``addresses``."""
        engine = self._engine
        feeds = {}
        for t in engine._input_tensors():
            shape = infos[t].shape
            view = host_array(addresses.get(t.name, 0), shape, t.dtype)
            feeds[t] = unpack_int4(view, int(np.prod(shape))).reshape(shape) \
                if t.dtype == DataType.INT4 else view
        results = self.run(feeds)
        for t in engine._output_tensors():
            result = results[t]
            view = host_array(addresses.get(t.name, 0), result.shape, t.dtype)
            if t.dtype == DataType.INT4:
                view[...] = pack_int4(result)
            else:
                np.copyto(view, result, casting="no")

    def infer(self, feeds: dict[ITensor, Any],
              infos: Mapping[ITensor, TensorInfo]) -> dict[ITensor, np.ndarray]:
        return self.run(feeds)

    def run(self, feeds: dict[ITensor, np.ndarray]) -> dict[ITensor, np.ndarray]:
        """Run every layer in order; returns the network outputs. With ``profiling`` on, each
        layer's wall-clock time goes into ``timer``."""
        network = self._engine._network
        env: dict[ITensor, np.ndarray] = dict(feeds)
        self.timer = LayerTimer() if self.profiling else None
        with one_blas_thread():
            for (layer, run), release, casts in zip(self._engine._steps, self._releases(),
                                                    self._casts()):
                args = [None if t is None else env[t] for t in layer._inputs]
                try:
                    if self.timer is None:
                        results = run(layer, args)
                    else:
                        with self.timer.wall_clock(layer.name):
                            results = run(layer, args)
                except EngineError:
                    raise
                except Exception as exc:  # a kernel failing on these inputs: report, do not crash
                    raise ExecutionError(f"layer '{layer.name}' ({layer.layer_type.name}) "
                                         f"failed: {type(exc).__name__}: {exc}") from exc
                for t, value, dtype in zip(layer._outputs, results, casts):
                    env[t] = np.asarray(value) if dtype is None else np.asarray(value, dtype)
                    if t in self.debug:
                        self._report_debug(self.debug[t], env[t])
                for t in release:
                    del env[t]
        return {t: env[t] for t in network._outputs}

    def _report_debug(self, name: str, value: np.ndarray) -> None:
        array = np.ascontiguousarray(value)  # alive until the listener returns
        self.debug_listener.process_debug_tensor(
            array.ctypes.data, TensorLocation.HOST, from_numpy_dtype(array.dtype),
            Dims(array.shape), name, 0)

    def _releases(self) -> list[list[ITensor]]:
        """Per step, the tensors that no later step reads (network outputs excepted): freed
        as soon as they are dead, so activations do not pile up."""
        if self._release_after is None:
            steps = self._engine._steps
            last_use: dict[ITensor, int] = {}
            for index, (layer, _) in enumerate(steps):
                for t in layer._inputs:
                    if t is not None:
                        last_use[t] = index
            kept = set(self._engine._network._outputs)
            self._release_after = [[] for _ in steps]
            for t, index in last_use.items():
                if t not in kept:
                    self._release_after[index].append(t)
        return self._release_after

    def _casts(self) -> list[list[np.dtype | None]]:
        """Per step, the NumPy dtype each output is held in (None: INT4, kept as given)."""
        if self._output_dtypes is None:
            self._output_dtypes = [
                [None if t.dtype == DataType.INT4 else np.dtype(nptype(t.dtype))
                 for t in layer._outputs] for layer, _ in self._engine._steps]
        return self._output_dtypes
