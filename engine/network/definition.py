"""``INetworkDefinition``: the graph a user builds, layer by layer or through the ONNX parser.

The ``add_*`` methods live in mixins, one per layer family (``engine/network/layers/``); this
class owns the graph: inputs, outputs, layers, and the cache of inferred shapes.

>>> import engine as trt, numpy as np
>>> builder = trt.Builder(trt.Logger())
>>> network = builder.create_network(0)
>>> x = network.add_input("x", trt.float32, (2, 3))
>>> y = network.add_identity(x).get_output(0)
>>> network.mark_output(y)
>>> tuple(y.shape)
(2, 3)
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from engine.errors import NetworkError
from engine.network.inference import infer_layer
from engine.network.layer import ILayer, TensorInfo, _SettableError
from engine.network.layers import fused, fused_attention, fused_pointwise  # noqa: F401 - builder-internal layers, registered for plan decoding
from engine.network.layers import quantized as _quantized  # noqa: F401 - registers layers
from engine.network.layers.basic import BasicLayers
from engine.network.layers.math import MathLayers
from engine.network.layers.plugin import PluginLayers
from engine.network.layers.shape import ShapeLayers
from engine.network.layers.spatial import SpatialLayers
from engine.network.tensor import ITensor
from engine.types import DataType, Dims, Weights

_L = TypeVar("_L", bound=ILayer)


def weights_pointer(weights: Weights) -> int:
    """The address of the first value of ``weights`` (TensorRT tells weights apart by it)."""
    return int(weights.numpy().__array_interface__["data"][0])


class NetworkDefinitionCreationFlag(enum.IntEnum):
    """Flags for ``Builder.create_network``, as bit positions (``1 << flag``)."""

    EXPLICIT_BATCH = 0  # deprecated in TensorRT 10: every network has an explicit batch
    STRONGLY_TYPED = 1
    PREFER_AOT_PYTHON_PLUGINS = 2
    PREFER_JIT_PYTHON_PLUGINS = 3


class INetworkDefinition(BasicLayers, MathLayers, ShapeLayers, SpatialLayers, PluginLayers):
    """A network definition: create it with ``Builder.create_network(flags)``.

    The network keeps references to the weight arrays it is given and does not copy them (as
    TensorRT does): keep them alive and unchanged until the plan is built.
    """

    def __init__(self, flags: int = 0) -> None:
        self.name = "Unnamed Network 0"
        self._flags = int(flags)
        self._layers: list[ILayer] = []
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []
        self._debug: list[ITensor] = []  # mark_debug: reported to IDebugListener at run time
        self._refittable: set[str] = set()  # mark_weights_refittable (REFIT_INDIVIDUAL)
        self.error_recorder: Any = None  # an IErrorRecorder (the builder's, when it made it)
        self._consumers: dict[ITensor, list[tuple[ILayer, int]]] = {}
        self._cache: dict[ITensor, TensorInfo] = {}
        self._layer_count = 0
        self._tensor_count = 0

    # -- flags ------------------------------------------------------------------------------
    @property
    def flags(self) -> int:
        return self._flags

    def get_flag(self, flag: NetworkDefinitionCreationFlag) -> bool:
        return bool(self._flags >> int(flag) & 1)

    @property
    def strongly_typed(self) -> bool:
        return self.get_flag(NetworkDefinitionCreationFlag.STRONGLY_TYPED)

    @property
    def has_implicit_batch_dimension(self) -> bool:
        return False

    def _check_weakly_typed(self, what: str) -> None:
        if self.strongly_typed:
            raise NetworkError(f"{what} is not allowed in a strongly typed network: types follow "
                               f"from the inputs and explicit Cast layers")

    # -- inputs and outputs -----------------------------------------------------------------
    def add_input(self, name: str, dtype: DataType, shape: Sequence[int]) -> ITensor:
        """Add a network input; -1 in ``shape`` marks a dynamic dimension."""
        dims = Dims(shape)
        if any(d < -1 for d in dims):
            raise NetworkError(f"input '{name}': invalid dimension in shape {tuple(dims)}")
        if any(t.name == name for t in self._inputs):
            raise NetworkError(f"input '{name}': the network already has an input of that name")
        tensor = ITensor(self, name, dtype=DataType(dtype), shape=dims)
        self._inputs.append(tensor)
        return tensor

    def mark_output(self, tensor: ITensor) -> None:
        self._check_own(tensor, "mark_output")
        if tensor.is_network_input:
            raise NetworkError(f"tensor '{tensor.name}' is a network input and cannot also be an "
                               f"output; add an identity layer")
        if tensor not in self._outputs:
            self._outputs.append(tensor)

    def unmark_output(self, tensor: ITensor) -> None:
        if tensor in self._outputs:
            self._outputs.remove(tensor)

    def mark_debug(self, tensor: ITensor) -> bool:
        """Keep ``tensor`` through the optimizer (no fusion removes it) and let execution
        contexts hand its value to their ``IDebugListener`` (``set_tensor_debug_state``)."""
        self._check_own(tensor, "mark_debug")
        if tensor.is_network_input:
            raise NetworkError(f"tensor '{tensor.name}' is a network input; mark a layer's "
                               f"output as a debug tensor")
        if tensor not in self._debug:
            self._debug.append(tensor)
        return True

    def unmark_debug(self, tensor: ITensor) -> bool:
        if tensor not in self._debug:
            return False
        self._debug.remove(tensor)
        return True

    def is_debug_tensor(self, tensor: ITensor) -> bool:
        return tensor in self._debug

    def _is_output(self, tensor: ITensor) -> bool:
        return tensor in self._outputs

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    def get_input(self, index: int) -> ITensor | None:
        return self._inputs[index] if 0 <= index < len(self._inputs) else None

    def get_output(self, index: int) -> ITensor | None:
        return self._outputs[index] if 0 <= index < len(self._outputs) else None

    def get_layer(self, index: int) -> ILayer | None:
        return self._layers[index] if 0 <= index < len(self._layers) else None

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, index: int) -> ILayer:
        return self._layers[index]

    def __iter__(self) -> Iterator[ILayer]:
        return iter(list(self._layers))

    # -- weight names (for refitting) -------------------------------------------------------
    def mark_weights_refittable(self, name: str) -> bool:
        """Make the weights called ``name`` refittable in an engine built with
        ``BuilderFlag.REFIT_INDIVIDUAL`` (the others are not); False when the network has no
        weights of that name."""
        from engine.network.weight_names import weights_of_layers

        found, aliases = weights_of_layers(self._layers)
        key = name if name in found else aliases.get(name)
        if key is None:
            return False
        self._refittable.add(key)
        return True

    def unmark_weights_refittable(self, name: str) -> bool:
        """Undo ``mark_weights_refittable``; False when ``name`` was not marked."""
        if name not in self._refittable:
            return False
        self._refittable.discard(name)
        return True

    def are_weights_marked_refittable(self, name: str) -> bool:
        return name in self._refittable

    def set_weights_name(self, weights: Weights, name: str | None) -> bool:
        """Name every use of ``weights`` in the network (uses are matched by value pointer, as
        in TensorRT); the name travels with them into the plan and the ``Refitter`` lists and
        accepts the weights by it. None clears the name. False when the network does not use
        the weights, uses their memory with another type or count, or gives ``name`` to other
        weights."""
        if not isinstance(weights, Weights) or weights.size == 0 or name == "":
            return False
        pointer = weights_pointer(weights)
        uses: list[Weights] = []
        others: list[Weights] = []
        for layer in self._layers:
            for attribute in type(layer)._attributes:
                value = getattr(layer, attribute, None)
                if not isinstance(value, Weights) or value.size == 0:
                    continue
                (uses if weights_pointer(value) == pointer else others).append(value)
        if not uses or any(w.dtype != weights.dtype or w.size != weights.size for w in uses):
            return False
        if name is not None and any(w.name == name for w in others):
            return False
        for w in {id(w): w for w in uses + [weights]}.values():
            w.name = name
        return True

    def __enter__(self) -> INetworkDefinition:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    # -- graph bookkeeping (used by layers and the builder) ---------------------------------
    def _next_layer_index(self) -> int:
        self._layer_count += 1
        return self._layer_count - 1

    def _next_tensor_id(self) -> int:
        self._tensor_count += 1
        return self._tensor_count - 1

    def _check_own(self, tensor: ITensor | None, what: str) -> None:
        if not isinstance(tensor, ITensor):
            raise NetworkError(f"{what}: expected an ITensor, got {type(tensor).__name__}")
        if tensor._network is not self:
            raise NetworkError(f"{what}: tensor '{tensor.name}' belongs to another network")

    def _add_layer(self, layer: _L) -> _L:
        """Add a constructed layer, validating it by inferring its outputs."""
        for index, tensor in enumerate(layer._inputs):
            if tensor is not None:
                self._check_own(tensor, f"layer '{layer.name}' input {index}")
        self._layers.append(layer)
        self._link(layer)
        try:
            if layer._outputs:
                self._info(layer._outputs[0])
            else:  # a layer without outputs (an assertion): validate it directly
                infer_layer(layer, [None if t is None else self._info(t) for t in layer._inputs])
        except NetworkError as exc:
            if not layer._validated_on_add or isinstance(exc, _SettableError):
                return layer
            self._unlink(layer)
            self._layers.remove(layer)
            raise
        return layer

    def _link(self, layer: ILayer) -> None:
        linked = layer.__dict__.setdefault("_linked_inputs", [])
        for index, tensor in enumerate(layer._inputs):
            if tensor is not None:
                self._consumers.setdefault(tensor, []).append((layer, index))
                linked.append(tensor)

    def _unlink(self, layer: ILayer) -> None:
        # Only the tensors it was linked to (its inputs may have changed since): scanning
        # every tensor's uses made graph rewrites quadratic in the network's size.
        for tensor in set(layer.__dict__.pop("_linked_inputs", ())):
            uses = self._consumers.get(tensor, [])
            uses[:] = [(lay, i) for lay, i in uses if lay is not layer]

    def _relink(self, layer: ILayer) -> None:
        self._unlink(layer)
        self._link(layer)

    def _consumers_of(self, tensor: ITensor) -> list[tuple[ILayer, int]]:
        return list(self._consumers.get(tensor, []))

    def _invalidate(self, layer: ILayer) -> None:
        """Forget inferred infos of ``layer`` and of everything downstream of it."""
        # Linked means in the network (``_link`` and ``_unlink`` go with adding and removing):
        # a dictionary lookup where scanning ``_layers`` made decoding a network quadratic.
        if layer._inputs and "_linked_inputs" in layer.__dict__:
            self._relink(layer)
        stack = [layer]
        while stack:
            current = stack.pop()
            for out in current._outputs:
                if self._cache.pop(out, None) is not None:
                    stack.extend(lay for lay, _ in self._consumers.get(out, []))

    def _invalidate_consumers(self, tensor: ITensor) -> None:
        for layer, _ in self._consumers_of(tensor):
            self._invalidate(layer)

    def _info(self, tensor: ITensor) -> TensorInfo:
        """The inferred info of ``tensor`` (cached; computed upstream first, iteratively)."""
        if tensor._producer is None:
            return TensorInfo(tuple(tensor._declared_shape), tensor._declared_dtype)
        if tensor in self._cache:
            return self._cache[tensor]
        stack: list[ILayer] = [tensor._producer]
        visiting: set[int] = set()
        while stack:
            layer = stack[-1]
            missing = [t._producer for t in layer._inputs
                       if t is not None and t._producer is not None and t not in self._cache]
            if missing:
                if id(layer) in visiting:
                    raise NetworkError(f"layer '{layer.name}' ({layer.layer_type.name}) is on a "
                                       f"cycle")
                visiting.add(id(layer))
                stack.extend(p for p in missing if p is not None)
                continue
            stack.pop()
            if layer._outputs[0] in self._cache:
                continue
            inputs = [None if t is None else self._info(t) for t in layer._inputs]
            for out, info in zip(layer._outputs, infer_layer(layer, inputs)):
                self._cache[out] = info
        return self._cache[tensor]
