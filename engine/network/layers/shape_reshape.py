"""Layers that change a tensor's shape without changing its values' order rules:
``IShuffleLayer`` (transpose, reshape, transpose), ``ISqueezeLayer`` and ``IUnsqueezeLayer``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.shape_values import dims_or_unknown, shape_tensor_values
from engine.types import Dims

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


class Permutation(tuple):
    """A permutation of axes (TensorRT's ``Permutation``): ``Permutation([1, 0])``.

    Entry ``i`` names the input axis that becomes output axis ``i``.
    """

    def __new__(cls, order: Iterable[int] = ()) -> Permutation:
        return super().__new__(cls, (int(i) for i in order))


IDENTITY_PERMUTATION = tuple(range(Dims.MAX_DIMS))


def permuted(layer: ILayer, shape: Sequence[int], order: Sequence[int], what: str
             ) -> tuple[int, ...]:
    """``shape`` permuted by the first ``len(shape)`` entries of ``order`` (TensorRT reads only
    those), failing naming ``layer`` unless they are a permutation."""
    rank = len(shape)
    used = tuple(order[:rank])
    if sorted(used) != list(range(rank)):
        layer.fail(f"{what} {tuple(order)} is not a permutation of the {rank} axes of a tensor "
                   f"of shape {tuple(shape)}")
    return tuple(shape[i] for i in used)


def resolve_reshape(source: Sequence[int], dims: Sequence[int], zero_is_placeholder: bool
                    ) -> tuple[int, ...]:
    """The shape that reshaping a tensor of shape ``source`` to ``dims`` gives.

    0 copies the source dim at the same index when ``zero_is_placeholder``; one -1 takes the
    remaining volume. Unknown (-1) source dims give unknown output dims, except where a
    placeholder copies them (then the -1 can still be inferred). Raises ``ValueError``
    describing the problem.
    """
    dims = tuple(int(d) for d in dims)
    copied = set()
    for index, d in enumerate(dims):
        if d == 0 and zero_is_placeholder:
            if index >= len(source):
                raise ValueError(f"reshape dims {dims}: placeholder 0 at index {index} has no "
                                 f"input dim to copy (input shape {tuple(source)})")
            copied.add(index)
        elif d < -1:
            raise ValueError(f"reshape dims {dims}: invalid dim {d}")
    if dims.count(-1) > 1:
        raise ValueError(f"reshape dims {dims}: at most one dim may be -1")
    out = [source[i] if i in copied else d for i, d in enumerate(dims)]
    # Copied dims hold the same values on both sides: only the rest must match in volume.
    rest_source = [d for i, d in enumerate(source) if i not in copied]
    rest_out = [d for i, d in enumerate(dims) if i not in copied]
    if any(d < 0 for d in rest_source):
        return tuple(out)  # an unknown dim reaches the -1 (if any): it stays unknown
    volume = math.prod(rest_source)
    if -1 in rest_out:
        known = math.prod(d for d in rest_out if d != -1)
        if known == 0 or volume % known:
            raise ValueError(f"reshape dims {dims}: cannot infer -1 from input shape "
                             f"{tuple(source)}")
        out[dims.index(-1)] = volume // known
    elif math.prod(rest_out) != volume:
        raise ValueError(f"cannot reshape input of shape {tuple(source)} to {tuple(out)}: "
                         f"the volumes differ")
    return tuple(out)


class IShuffleLayer(ILayer):
    """Transpose (``first_transpose``), reshape (``reshape_dims``, or the shape tensor of
    input 1), transpose again (``second_transpose``)."""

    type = LayerType.SHUFFLE
    _attributes: ClassVar[tuple[str, ...]] = (
        "first_transpose", "reshape_dims", "second_transpose", "zero_is_placeholder")
    _shape_inputs = (1,)
    _max_inputs = 2

    def __init__(self, network: INetworkDefinition, input: ITensor) -> None:  # noqa: A002
        super().__init__(network, [input])
        self.first_transpose = Permutation(IDENTITY_PERMUTATION)
        self.reshape_dims: Dims | None = None
        self.second_transpose = Permutation(IDENTITY_PERMUTATION)
        self.zero_is_placeholder = True

    def __setattr__(self, key: str, value: Any) -> None:
        if key in ("first_transpose", "second_transpose"):
            value = Permutation(value)
        elif key == "reshape_dims" and value is not None:
            value = Dims(value)
        elif key == "zero_is_placeholder":
            value = bool(value)
        super().__setattr__(key, value)

    def target_dims(self, inputs: list[TensorInfo | None]) -> tuple[int, ...] | None:
        """The requested reshape dims (input 1 wins over ``reshape_dims``); None: no reshape."""
        shape_info = inputs[1] if len(inputs) > 1 else None
        if shape_info is not None:
            return dims_or_unknown(self, shape_info, "reshape shape tensor (input 1)")
        return None if self.reshape_dims is None else tuple(self.reshape_dims)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        shape = permuted(self, x.shape, self.first_transpose, "first_transpose")
        shape_info = inputs[1] if len(inputs) > 1 else None
        dims = self.target_dims(inputs)
        if dims is not None and shape_info is not None and shape_info.value is None:
            shape = dims  # the shape tensor's values are only known at run time
        elif dims is not None:
            shape = resolve_reshape(shape, dims, self.zero_is_placeholder)
        shape = permuted(self, shape, self.second_transpose, "second_transpose")
        return [TensorInfo(shape, x.dtype)]


def normalized_axes(layer: ILayer, axes: Sequence[int], rank: int, what: str
                    ) -> tuple[int, ...]:
    """``axes`` with negative entries counted from the end of ``rank`` axes; fails on
    out-of-range or repeated axes."""
    result = []
    for a in axes:
        if not -rank <= a < rank:
            layer.fail(f"{what}: axis {a} is out of range for rank {rank}")
        result.append(a % rank)
    if len(set(result)) != len(result):
        layer.fail(f"{what}: repeated axes in {tuple(axes)}")
    return tuple(sorted(result))


class _AxesLayer(ILayer):
    """Shared by squeeze and unsqueeze: the axes arrive as a build-time constant tensor."""

    _shape_inputs = (1,)
    _max_inputs = 2

    def axes_values(self, inputs: list[TensorInfo | None]) -> tuple[int, ...]:
        info = inputs[1] if len(inputs) > 1 else None
        if info is None:
            self.fail("the axes tensor (input 1) is not set")
        values = shape_tensor_values(self, info, "axes (input 1)", scalar=True)
        if values is None:
            self.fail("axes (input 1) must be a build-time constant (e.g. a Constant layer)")
        return values


class ISqueezeLayer(_AxesLayer):
    """Removes the size-1 axes listed by the axes tensor (input 1)."""

    type = LayerType.SQUEEZE

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        axes = normalized_axes(self, self.axes_values(inputs), x.rank, "squeeze")
        for a in axes:
            if x.shape[a] not in (1, -1):
                self.fail(f"cannot squeeze axis {a} of shape {x.shape}: its size is not 1")
        return [TensorInfo(tuple(d for i, d in enumerate(x.shape) if i not in axes), x.dtype)]


class IUnsqueezeLayer(_AxesLayer):
    """Inserts size-1 axes at the output positions listed by the axes tensor (input 1)."""

    type = LayerType.UNSQUEEZE

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (x,) = self.require_inputs(inputs, 1)
        values = self.axes_values(inputs)
        rank = x.rank + len(values)
        axes = normalized_axes(self, values, rank, "unsqueeze")
        rest = iter(x.shape)
        shape = tuple(1 if i in axes else next(rest) for i in range(rank))
        return [TensorInfo(shape, x.dtype)]
