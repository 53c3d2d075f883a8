"""``IOutputAllocator``: memory for outputs whose shape is known only once the engine has run
(data-dependent shapes: ``NonZero``, ``NMS`` and the like), and the values of shape-tensor
inputs, which a context reads from host memory before it resolves shapes.

On the pointer path (``execute_async_v3``) a context runs the layers, then, for every output
that has an allocator, asks it for memory of the output's size in bytes
(``reallocate_output_async``, or ``reallocate_output``), writes the output there and tells it
the shape (``notify_shape``). Outputs without an allocator are written to the address set with
``set_tensor_address``, which requires their shape to be known before the run.

>>> import engine as trt
>>> class Allocator(trt.IOutputAllocator):
...     def reallocate_output(self, tensor_name, memory, size, alignment):
...         return memory
>>> Allocator().reallocate_output("y", 0, 0, 256)
0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ExecutionError
from engine.runtime.device_cpu import host_array
from engine.types import DataType, Dims, TensorLocation, nbytes_of, nptype

if TYPE_CHECKING:
    from engine.network.layer import TensorInfo
    from engine.network.tensor import ITensor
    from engine.runtime.context import IExecutionContext

ALIGNMENT = 256


class IOutputAllocator:
    """Provides the memory of an output once its size is known; subclass it."""

    def __init__(self) -> None:
        return None

    def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
        """A pointer to at least ``size`` bytes for output ``tensor_name`` (``memory`` is the
        address it had, 0 if none); 0 when it cannot provide it."""
        return 0

    def reallocate_output_async(self, tensor_name: str, memory: int, size: int, alignment: int,
                                stream: int) -> int:
        """As ``reallocate_output``, with the stream the output will be written on."""
        return self.reallocate_output(tensor_name, memory, size, alignment)

    def notify_shape(self, tensor_name: str, shape: Dims) -> None:
        """Called with the output's shape once it is written."""
        return None


# -- shape-tensor inputs ----------------------------------------------------------------------
def shape_input_value(values: tuple[int, ...] | None, shape: tuple[int, ...],
                      dtype: DataType) -> np.ndarray | None:
    """The value inference sees for a shape input (None for other inputs)."""
    if values is None:
        return None
    return np.asarray(values, nptype(dtype)).reshape(shape)


def set_shape_input_values(context: IExecutionContext, name: str, value: Any) -> None:
    """Record the values of shape input ``name`` for the next run, checked against the
    active profile's ``set_shape_input`` range. Shape inference uses them (static output
    shapes follow); an input given no values in the profiles is left to the kernels."""
    host = value.get() if hasattr(value, "get") and not isinstance(value, np.ndarray) else value
    values = tuple(int(v) for v in np.asarray(host).reshape(-1))
    engine = context._engine
    ranges = engine._profile_shape_values[context._profile] if engine._profile_shape_values \
        else {}
    if name not in ranges:  # no profile values: the kernels read it like any input
        return
    lo, _, hi = ranges[name]
    if len(values) != len(lo) or any(not a <= v <= b for a, v, b in zip(lo, values, hi)):
        raise ExecutionError(f"shape input '{name}': values {values} are outside "
                             f"optimization profile {context._profile}: min {tuple(lo)}, "
                             f"max {tuple(hi)}")
    context._values[name] = values


def read_shape_inputs(context: IExecutionContext) -> None:
    """Read the values of shape inputs from the host memory set for them."""
    engine = context._engine
    for t in engine._input_tensors():
        address = context._addresses.get(t.name)
        if address and t.name in context._shapes and engine.is_shape_inference_io(t.name):
            view = host_array(address, context._shapes[t.name], t.dtype)
            set_shape_input_values(context, t.name, view)


# -- running with allocators --------------------------------------------------------------------
def _reallocate(allocator: Any, name: str, memory: int, size: int, stream: int) -> int:
    own_async = getattr(type(allocator), "reallocate_output_async", None)
    if own_async is not None and own_async is not IOutputAllocator.reallocate_output_async:
        address = allocator.reallocate_output_async(name, memory, size, ALIGNMENT, stream)
    else:
        address = allocator.reallocate_output(name, memory, size, ALIGNMENT)
    return int(address or 0)


def execute_with_allocators(context: IExecutionContext, infos: dict[ITensor, TensorInfo],
                            stream_handle: int) -> None:
    """The pointer path for engines with output allocators or data-dependent outputs."""
    engine = context._engine
    gpu = engine._backend == "gpu"
    feeds = {}
    for t in engine._input_tensors():
        shape = infos[t].shape
        address = context._addresses.get(t.name, 0)
        if not address and nbytes_of(t.dtype, shape):
            raise ExecutionError(f"tensor '{t.name}': no address set; call "
                                 f"set_tensor_address('{t.name}', pointer)")
        feeds[t] = _view(gpu, engine.get_tensor_location(t.name), address, shape, t.dtype)
    results = context._execution.infer(feeds, infos)
    for t in engine._output_tensors():
        result = results[t]
        shape = tuple(int(d) for d in result.shape)
        size = nbytes_of(t.dtype, shape)
        allocator = context._allocators.get(t.name)
        address = context._addresses.get(t.name, 0)
        if allocator is not None:
            address = _reallocate(allocator, t.name, address, size, stream_handle)
            if not address and size:
                raise ExecutionError(f"output '{t.name}': the output allocator returned no "
                                     f"memory for {size} bytes")
            context._addresses[t.name] = address
        elif any(d < 0 for d in infos[t].shape):
            raise ExecutionError(f"output '{t.name}' has a data-dependent shape: set an "
                                 f"output allocator with context.set_output_allocator"
                                 f"('{t.name}', allocator), or use context.infer()")
        elif not address and size:
            raise ExecutionError(f"tensor '{t.name}': no address set; call "
                                 f"set_tensor_address('{t.name}', pointer)")
        if size:
            target = _view(gpu, engine.get_tensor_location(t.name), address, shape, t.dtype)
            if gpu and engine.get_tensor_location(t.name) == TensorLocation.HOST:
                host = result.get()  # BF16 / FP8 come as their patterns: copied as they are
                np.copyto(target.view(host.dtype) if host.dtype != target.dtype else target,
                          host)
            elif gpu:
                target[...] = result
            else:
                np.copyto(target, result, casting="no")
        if allocator is not None:
            allocator.notify_shape(t.name, Dims(shape))


def _view(gpu: bool, location: TensorLocation, address: int, shape: tuple[int, ...],
          dtype: DataType) -> Any:
    if not gpu or location == TensorLocation.HOST:
        return host_array(address, shape, dtype)
    from engine.kernels.gpu.storage import storage_dtype
    from engine.runtime.device_gpu import device_array

    return device_array(address, shape, storage_dtype(dtype))
