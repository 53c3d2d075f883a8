"""The CPU target's device layer: host memory views, and running the layers in order.

Addresses are host pointers (``numpy_array.ctypes.data``); a run completes before
``execute`` returns, whatever stream handle it was given.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import EngineError, ExecutionError, UnsupportedError
from engine.network.layer import TensorInfo
from engine.network.tensor import ITensor
from engine.types import DataType, nbytes_of, nptype, pack_int4, unpack_int4

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
        """Run every layer in order; returns the network outputs."""
        network = self._engine._network
        env: dict[ITensor, np.ndarray] = dict(feeds)
        outputs = set(network._outputs)
        last_use: dict[ITensor, int] = {}
        for index, (layer, _) in enumerate(self._engine._steps):
            for t in layer._inputs:
                if t is not None:
                    last_use[t] = index
        for index, (layer, run) in enumerate(self._engine._steps):
            args = [None if t is None else env[t] for t in layer._inputs]
            try:
                results = run(layer, args)
            except EngineError:
                raise
            except Exception as exc:  # a kernel failing on these inputs: report, do not crash
                raise ExecutionError(f"layer '{layer.name}' ({layer.layer_type.name}) failed: "
                                     f"{type(exc).__name__}: {exc}") from exc
            for t, value in zip(layer._outputs, results):
                env[t] = np.asarray(value, dtype=nptype(t.dtype)) if t.dtype != DataType.INT4 \
                    else np.asarray(value)
            for t in layer._inputs:
                if t is not None and last_use.get(t) == index and t not in outputs:
                    env.pop(t, None)
        return {t: env[t] for t in network._outputs}
