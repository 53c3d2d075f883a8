"""``ILayer``: the base of every layer, and ``TensorInfo``, what shape inference passes around.

A layer subclass declares:

- ``type``: its ``LayerType`` (class attribute; some subclasses shadow ``type`` on instances
  with their own enum, as TensorRT's ``IActivationLayer.type`` does — use ``layer_type``),
- ``_attributes``: the names of its public attributes; they are all of its state, and are what
  the plan stores (so a layer restored from a plan equals the one built),
- ``_shape_inputs``: indices of inputs that are shape tensors (values, not data),
- ``infer(inputs)``: output ``TensorInfo``s from input ``TensorInfo``s, raising through
  ``self.fail(reason)`` when the inputs or attributes are invalid.

Every public attribute set on a layer invalidates cached shapes downstream of it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import numpy as np

from engine.errors import NetworkError
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


class LayerType(enum.IntEnum):
    """Layer kinds (TensorRT's ``LayerType``)."""

    CONVOLUTION = 0
    CAST = 1
    ACTIVATION = 2
    POOLING = 3
    LRN = 4
    SCALE = 5
    SOFTMAX = 6
    DECONVOLUTION = 7
    CONCATENATION = 8
    ELEMENTWISE = 9
    PLUGIN = 10
    UNARY = 11
    PADDING = 12
    SHUFFLE = 13
    REDUCE = 14
    TOPK = 15
    GATHER = 16
    MATRIX_MULTIPLY = 17
    RAGGED_SOFTMAX = 18
    CONSTANT = 19
    IDENTITY = 20
    PLUGIN_V2 = 21
    SLICE = 22
    SHAPE = 23
    PARAMETRIC_RELU = 24
    RESIZE = 25
    TRIP_LIMIT = 26
    RECURRENCE = 27
    ITERATOR = 28
    LOOP_OUTPUT = 29
    SELECT = 30
    FILL = 31
    QUANTIZE = 32
    DEQUANTIZE = 33
    CONDITION = 34
    CONDITIONAL_INPUT = 35
    CONDITIONAL_OUTPUT = 36
    SCATTER = 37
    EINSUM = 38
    ASSERTION = 39
    ONE_HOT = 40
    NON_ZERO = 41
    GRID_SAMPLE = 42
    NMS = 43
    REVERSE_SEQUENCE = 44
    NORMALIZATION = 45
    PLUGIN_V3 = 46
    SQUEEZE = 47
    UNSQUEEZE = 48
    CUMULATIVE = 49
    DYNAMIC_QUANTIZE = 50
    # Internal layers made by the builder's quantization passes (values 1100-1199).
    QUANTIZED_CONVOLUTION = 1100
    QUANTIZED_MATRIX_MULTIPLY = 1101
    FUSED_QUANTIZED_CONVOLUTION = 1102
    # Internal kinds the builder's fusion passes create (TensorRT's inspector shows such
    # kinds too); never added by users. Values 1000-1099: builder fusions.
    FUSED_CONVOLUTION = 1000
    FUSED_MATRIX_MULTIPLY = 1001
    FUSED_POINTWISE = 1002
    FUSED_RMS_NORMALIZATION = 1003
    FUSED_ATTENTION = 1004


@dataclass(frozen=True)
class TensorInfo:
    """What inference knows of a tensor: its shape (-1 where unknown), its type, and its
    value when that is known and small (shape tensors, folded constants)."""

    shape: tuple[int, ...]
    dtype: DataType
    value: np.ndarray | None = None

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(d >= 0 for d in self.shape)


# Layer classes by LayerType, filled by ILayer.__init_subclass__; plan loading looks them up
# here (a fixed table, never an import by name).
LAYER_CLASSES: dict[LayerType, type[ILayer]] = {}

# Enums that may appear as layer attribute values, by class name (for plan decoding).
ATTRIBUTE_ENUMS: dict[str, type[enum.Enum]] = {"DataType": DataType}


def attribute_enum(cls: type[enum.Enum]) -> type[enum.Enum]:
    """Class decorator: allow members of this enum as layer attribute values in plans."""
    ATTRIBUTE_ENUMS[cls.__name__] = cls
    return cls


ATTRIBUTE_ENUMS["LayerType"] = LayerType


class ILayer:
    """Base class of layers. Created by ``INetworkDefinition.add_*`` methods only."""

    type: ClassVar[LayerType]
    _attributes: ClassVar[tuple[str, ...]] = ()
    _shape_inputs: ClassVar[tuple[int, ...]] = ()
    _max_inputs: ClassVar[int] = 1
    # False for layers whose attributes are usually set after ``add_*`` returns (a
    # concatenation's axis, a slice's mode): their errors surface when an output shape is
    # read or the network is built, as in TensorRT, instead of refusing the add.
    _validated_on_add: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        layer_type = cls.__dict__.get("type")
        if isinstance(layer_type, LayerType):
            LAYER_CLASSES[layer_type] = cls

    def __init__(
        self,
        network: INetworkDefinition,
        inputs: Sequence[ITensor | None],
        num_outputs: int = 1,
    ) -> None:
        from engine.network.tensor import ITensor

        self._network = network
        self._inputs: list[ITensor | None] = list(inputs)
        self._index = network._next_layer_index()
        self._name = f"(Unnamed Layer* {self._index}) [{self.layer_type.name.title()}]"
        self._precision: DataType | None = None
        self._output_types: dict[int, DataType] = {}
        self._metadata = ""
        suffix = ["_output"] if num_outputs == 1 else [f"_output_{i}" for i in range(num_outputs)]
        self._outputs: list[ITensor] = [
            ITensor(network, self._name + s, producer=self, index=i) for i, s in enumerate(suffix)
        ]

    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)
        if not key.startswith("_") and "_network" in self.__dict__:
            self._network._invalidate(self)

    # -- identity -------------------------------------------------------------------------
    @property
    def layer_type(self) -> LayerType:
        """The ``LayerType`` (``type`` itself may be shadowed, as in ``IActivationLayer``)."""
        return type(self).type

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = str(value)

    @property
    def metadata(self) -> str:
        return self._metadata

    @metadata.setter
    def metadata(self, value: str) -> None:
        self._metadata = str(value)

    # -- inputs and outputs ---------------------------------------------------------------
    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_input(self, index: int) -> ITensor | None:
        if not 0 <= index < len(self._inputs):
            return None
        return self._inputs[index]

    def set_input(self, index: int, tensor: ITensor) -> None:
        """Replace (or, up to the layer's limit, add) input ``index``."""
        if not 0 <= index < max(self._max_inputs, len(self._inputs)):
            self.fail(f"set_input: index {index} out of range; this layer takes at most "
                      f"{self._max_inputs} inputs")
        if tensor._network is not self._network:
            self.fail("set_input: the tensor belongs to another network")
        while len(self._inputs) <= index:
            self._inputs.append(None)
        self._inputs[index] = tensor
        self._network._invalidate(self)

    def get_output(self, index: int) -> ITensor | None:
        if not 0 <= index < len(self._outputs):
            return None
        return self._outputs[index]

    # -- precision --------------------------------------------------------------------------
    @property
    def precision(self) -> DataType:
        return self._precision if self._precision is not None else DataType.FLOAT

    @precision.setter
    def precision(self, dtype: DataType) -> None:
        self._network._check_weakly_typed(f"layer '{self.name}': precision")
        self._precision = DataType(dtype)

    @property
    def precision_is_set(self) -> bool:
        return self._precision is not None

    def reset_precision(self) -> None:
        self._precision = None

    def set_output_type(self, index: int, dtype: DataType) -> None:
        self._network._check_weakly_typed(f"layer '{self.name}': set_output_type")
        if not 0 <= index < len(self._outputs):
            self.fail(f"set_output_type: output index {index} out of range")
        self._output_types[index] = DataType(dtype)
        self._network._invalidate(self)

    def get_output_type(self, index: int) -> DataType:
        if index in self._output_types:
            return self._output_types[index]
        return self._outputs[index].dtype

    def output_type_is_set(self, index: int) -> bool:
        return index in self._output_types

    def reset_output_type(self, index: int) -> None:
        self._output_types.pop(index, None)
        self._network._invalidate(self)

    # -- inference ------------------------------------------------------------------------
    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        """Output infos from input infos; subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__}.infer")

    def fail(self, reason: str, *, settable: bool = False) -> NoReturn:
        """Raise a ``NetworkError`` naming this layer. ``settable``: attributes set after
        ``add_*`` (padding, stride) may still make it valid, so adding the layer does not
        fail on it; querying its output or building does, if it still holds then."""
        error = _SettableError if settable else NetworkError
        raise error(f"layer '{self.name}' ({self.layer_type.name}): {reason}")

    def require_inputs(self, inputs: list[TensorInfo | None], count: int) -> list[TensorInfo]:
        """The first ``count`` input infos, failing clearly when one is missing."""
        present = []
        for i in range(count):
            info = inputs[i] if i < len(inputs) else None
            if info is None:
                self.fail(f"input {i} is not set")
            present.append(info)
        return present

    def attributes(self) -> dict[str, Any]:
        """The layer's public attributes, by name (what a plan stores)."""
        return {name: getattr(self, name) for name in self._attributes}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} '{self.name}'>"


class _SettableError(NetworkError):
    """A ``NetworkError`` that attributes set after the layer was added may still clear."""
