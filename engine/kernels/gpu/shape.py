"""GPU kernels of the shape family: shape, shuffle, concatenation, squeeze, unsqueeze, slice
and gather. Shape inputs (reshape dims, slice bounds, axes) arrive as NumPy values when
inference knows them, so these kernels launch without reading the device."""

from __future__ import annotations

import cupy
import numpy as np

from engine.errors import ExecutionError
from engine.kernels.gpu.capabilities import (
    both,
    contiguous,
    device_types_only,
    host_synchronizing,
    host_value,
)
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.shape_assertion import IAssertionLayer
from engine.network.layers.shape_gather import GatherMode, IGatherLayer
from engine.network.layers.shape_of import IConcatenationLayer
from engine.network.layers.shape_reshape import (
    IShuffleLayer,
    ISqueezeLayer,
    IUnsqueezeLayer,
    resolve_reshape,
)
from engine.network.layers.shape_slice import ISliceLayer, SampleMode, slice_indices, source_indices


@kernel(LayerType.SHAPE, backend="gpu", name="gpu.shape")
def shape(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    # At run time the runtime takes the value from shape inference; this runs when timing.
    return [cupy.asarray(np.array(inputs[0].shape, np.int64))]


@kernel(LayerType.SHUFFLE, backend="gpu", name="gpu.shuffle", supports=device_types_only)
def shuffle(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    assert isinstance(layer, IShuffleLayer)
    x = inputs[0]
    assert x is not None
    out = cupy.transpose(x, layer.first_transpose[:x.ndim])
    shape_tensor = inputs[1] if len(inputs) > 1 else None
    if shape_tensor is not None:
        dims: tuple[int, ...] | None = tuple(int(d) for d in host_value(shape_tensor).reshape(-1))
    else:
        dims = None if layer.reshape_dims is None else tuple(layer.reshape_dims)
    if dims is not None:
        wanted = resolve_reshape(out.shape, dims, layer.zero_is_placeholder)
        if tuple(wanted) != tuple(out.shape):
            out = contiguous(out)  # the widened copy, not reshape's own
        out = out.reshape(wanted)
    out = cupy.transpose(out, layer.second_transpose[:out.ndim])
    if out.ndim >= 2 and not out.flags.c_contiguous and out.strides[-1] != out.itemsize and \
            out.strides[-2] == out.itemsize:
        # A transpose ending in a swap of the last two axes (k^T of attention): copy rows
        # whole (the widened copy) and hand over the swapped view; matrix products read it
        # with a transpose flag, other kernels copy what they need in C order.
        return [contiguous(out.swapaxes(-1, -2)).swapaxes(-1, -2)]
    return [contiguous(out)]  # a reshape alone is a view: no copy


@kernel(LayerType.CONCATENATION, backend="gpu", name="gpu.concatenation",
        supports=device_types_only)
def concatenation(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IConcatenationLayer)
    return [cupy.concatenate(inputs, axis=layer.axis)]


def _axes(values: object, rank: int) -> tuple[int, ...]:
    return tuple(int(a) % rank for a in host_value(values).reshape(-1))


@kernel(LayerType.SQUEEZE, backend="gpu", name="gpu.squeeze", supports=device_types_only)
def squeeze(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, ISqueezeLayer)
    x, axes = inputs
    return [cupy.squeeze(x, axis=_axes(axes, x.ndim))]


@kernel(LayerType.UNSQUEEZE, backend="gpu", name="gpu.unsqueeze", supports=device_types_only)
def unsqueeze(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IUnsqueezeLayer)
    x, axes = inputs
    count = host_value(axes).size
    return [cupy.expand_dims(x, _axes(axes, x.ndim + count))]


# -- slice --------------------------------------------------------------------------------------
def _values(given: object, attribute: tuple[int, ...]) -> tuple[int, ...]:
    if given is None:
        return tuple(attribute)
    return tuple(int(v) for v in host_value(given).reshape(-1))


def _slice_plan(layer: ISliceLayer, inputs: list[cupy.ndarray | None]
                ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    x = inputs[0]
    assert x is not None
    extra = list(inputs[1:]) + [None] * (6 - len(inputs))
    start_in, size_in, stride_in, _, axes_in = extra[:5]
    default_axes = tuple(range(x.ndim)) if layer.axes is None else tuple(layer.axes)
    axes = tuple(a % x.ndim for a in _values(axes_in, default_axes))
    return (_values(start_in, layer.start), _values(size_in, layer.shape),
            _values(stride_in, layer.stride), axes)


def _strict(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return SampleMode(layer.mode) == SampleMode.STRICT_BOUNDS  # type: ignore[attr-defined]


@kernel(LayerType.SLICE, backend="gpu", name="gpu.slice_strided",
        supports=both(device_types_only, _strict))
def slice_strided(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    """STRICT_BOUNDS: a strided view of the input, copied (no index arrays)."""
    assert isinstance(layer, ISliceLayer)
    x = inputs[0]
    assert x is not None
    start, size, stride, axes = _slice_plan(layer, inputs)
    index: list[slice] = [slice(None)] * x.ndim
    for axis, s0, n, st in zip(axes, start, size, stride):
        source_indices(SampleMode.STRICT_BOUNDS, s0 + np.arange(n, dtype=np.int64) * st,
                       x.shape[axis])  # raises for coordinates out of bounds
        if n == 0:
            index[axis] = slice(0, 0)
        else:
            last = s0 + (n - 1) * st
            stop = last + (1 if st > 0 else -1)
            index[axis] = slice(s0, None if stop < 0 else stop, st)
    return [x[tuple(index)].copy()]


def _not_strict(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    return not _strict(layer, inputs)


@kernel(LayerType.SLICE, backend="gpu", name="gpu.slice_indexed",
        supports=both(device_types_only, _not_strict))
@host_synchronizing  # uploads index arrays computed on the host
def slice_indexed(layer: ILayer, inputs: list[cupy.ndarray | None]) -> list[cupy.ndarray]:
    """WRAP, CLAMP, FILL and REFLECT: per-axis index arrays computed on the host."""
    assert isinstance(layer, ISliceLayer)
    x = inputs[0]
    assert x is not None
    start, size, stride, axes = _slice_plan(layer, inputs)
    fill_in = inputs[4] if len(inputs) > 4 else None
    index, inside = slice_indices(layer.mode, x.shape, axes, start, size, stride)
    out_shape = tuple(len(i) for i in index)
    if layer.mode == SampleMode.FILL:
        fill = cupy.zeros((), x.dtype) if fill_in is None else \
            cupy.asarray(fill_in).reshape(()).astype(x.dtype)
        if x.size == 0:
            return [cupy.full(out_shape, fill, x.dtype)]
        gathered = x[cupy.ix_(*[cupy.asarray(i) for i in index])]
        return [cupy.where(cupy.asarray(inside), gathered, fill).astype(x.dtype)]
    if not x.ndim:
        return [x.copy()]
    return [x[cupy.ix_(*[cupy.asarray(i) for i in index])]]


# -- gather -------------------------------------------------------------------------------------
def _default_gather(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IGatherLayer)
    return GatherMode(layer.mode) in (GatherMode.DEFAULT, GatherMode.ELEMENT) and \
        layer.num_elementwise_dims == 0


@kernel(LayerType.GATHER, backend="gpu", name="gpu.gather_take",
        supports=both(device_types_only, _default_gather))
def gather(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    """DEFAULT and ELEMENT modes; negative indices count from the end. Out-of-range indices
    are not reported (checking them would read the device): they wrap."""
    assert isinstance(layer, IGatherLayer)
    data, indices = inputs
    axis = layer.axis % data.ndim
    size = data.shape[axis]
    idx = cupy.asarray(indices).astype(cupy.int64)
    idx = cupy.where(idx < 0, idx + size, idx)
    if GatherMode(layer.mode) == GatherMode.ELEMENT:
        return [cupy.take_along_axis(data, idx, axis=axis)]
    return [cupy.take(data, idx, axis=axis)]


@kernel(LayerType.ASSERTION, backend="gpu", name="gpu.assertion", supports=device_types_only)
@host_synchronizing
def assertion(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    """Reads the condition back (a host synchronization, as the CPU kernel checks it there)
    and fails the run with the layer's message where any element is false."""
    assert isinstance(layer, IAssertionLayer)
    if not bool(cupy.all(inputs[0]).get()):
        raise ExecutionError(f"layer '{layer.name}' (ASSERTION): assertion failed: "
                             f"{layer.message}")
    return []
