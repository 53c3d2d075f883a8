"""What an importer sees: the node being imported (``Node``) and the import state
(``ImportContext``: the network, the ONNX tensors mapped so far, the opset, the logger)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import onnx
from onnx import helper

from engine.errors import NetworkError
from engine.logger import ILogger, Severity, log
from engine.network.definition import weights_pointer
from engine.network.layers.basic import IConstantLayer
from engine.onnx.errors import ErrorCode, ImportFailure
from engine.onnx.tensors import narrow_array
from engine.types import DataType, Weights, from_numpy_dtype, nptype

_INTEGERS = (DataType.INT32, DataType.INT64)

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.layer import ILayer
    from engine.network.tensor import ITensor


def output_of(layer: ILayer, index: int = 0) -> ITensor:
    """Output ``index`` of ``layer``, which it has (``get_output`` answers None only for an
    index out of range)."""
    tensor = layer.get_output(index)
    assert tensor is not None, f"layer '{layer.name}' has no output {index}"
    return tensor


class Node:
    """One ONNX node being imported: its inputs as network tensors, its attributes."""

    def __init__(self, proto: onnx.NodeProto, index: int, inputs: list[ITensor | None],
                 opset: int) -> None:
        self.proto = proto
        self.index = index
        self.inputs = inputs
        self.opset = opset
        self.attrs: dict[str, Any] = {a.name: helper.get_attribute_value(a)
                                      for a in proto.attribute}

    @property
    def name(self) -> str:
        return self.proto.name

    @property
    def op_type(self) -> str:
        return self.proto.op_type

    @property
    def input_names(self) -> list[str]:
        return list(self.proto.input)

    @property
    def num_outputs(self) -> int:
        return len(self.proto.output)

    def has_output(self, index: int) -> bool:
        return index < len(self.proto.output) and self.proto.output[index] != ""

    def attr(self, name: str, default: Any = None) -> Any:
        """An attribute's value (bytes decoded to str), or ``default``."""
        value = self.attrs.get(name, default)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if isinstance(value, list) and value and isinstance(value[0], bytes):
            return [v.decode("utf-8", "replace") for v in value]
        return value

    def input(self, index: int) -> ITensor | None:
        """Input ``index``, or None when it is absent (optional and not given)."""
        return self.inputs[index] if index < len(self.inputs) else None

    def require(self, index: int) -> ITensor:
        tensor = self.input(index)
        if tensor is None:
            self.fail(ErrorCode.INVALID_NODE, f"input {index} is required")
        return tensor

    def fail(self, code: ErrorCode, message: str, *, tensor: str | None = None) -> NoReturn:
        raise ImportFailure(code, message, tensor=tensor)

    def unsupported(self, message: str) -> NoReturn:
        self.fail(ErrorCode.UNSUPPORTED_NODE, message)


class ImportContext:
    """The state of one parse, handed to every importer."""

    def __init__(self, network: INetworkDefinition, logger: ILogger | None, opset: int,
                 flags: int) -> None:
        self.network = network
        self.logger = logger
        self.opset = opset
        # The model's opset of each other domain it imports (e.g. ai.onnx.preview).
        self.domain_opsets: dict[str, int] = {}
        self.flags = flags
        self.tensors: dict[str, ITensor] = {}
        self._values: dict[ITensor, np.ndarray] = {}
        # ONNX types of tensors carried in a wider engine type (``tensors.WIDENED``, and the
        # outputs of emulated casts): TensorProto data type numbers.
        self.onnx_types: dict[ITensor, int] = {}
        # What is known of the elements of small integer tensors computed at run time (a
        # Shape over a partly dynamic tensor, and the Gathers, Concats, Casts and
        # (Un)Squeezes of it): an int per known element, None for a run-time one.
        self._elements: dict[ITensor, tuple[int | None, ...]] = {}
        # The initializers turned into constants, by the address of their values: value, name.
        self._initializers: dict[int, tuple[np.ndarray, str]] = {}

    # -- constants ----------------------------------------------------------------------------
    def constant(self, value: Any, dtype: Any = None) -> ITensor:
        """A constant layer holding ``value`` (float64 becomes float32, as TensorRT casts
        double weights down, and the other types in ``tensors.NARROWED`` likewise); its value
        stays known to later importers."""
        arr = narrow_array(np.asarray(value, dtype=dtype))
        try:
            from_numpy_dtype(arr.dtype)
        except TypeError as exc:
            raise ImportFailure(ErrorCode.UNSUPPORTED_NODE_DATATYPE, str(exc)) from None
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
        # TensorRT has no UINT8 constants (UINT8 is for network I/O): carry them in INT32,
        # remembering the ONNX type for the importers that care (zero points).
        uint8 = arr.dtype == np.uint8
        if uint8:
            arr = arr.astype(np.int32)
        layer = self.network.add_constant(arr.shape, arr)
        layer.weights.name = self.initializer_name(arr)
        tensor = output_of(layer)
        self._values[tensor] = arr
        if uint8:
            self.onnx_types[tensor] = onnx.TensorProto.UINT8
        return tensor

    def name_initializer(self, tensor: ITensor, name: str) -> None:
        """``tensor`` (a constant) holds initializer ``name``: the tensor, the constant's
        weights and the layer weights later taken from its value (or from a reshaped view
        of it) carry that name, which the ``Refitter`` accepts."""
        tensor.name = name
        value = self._values.get(tensor)
        constant = tensor._producer
        if value is None or value.size == 0 or not isinstance(constant, IConstantLayer):
            return
        self._initializers[weights_pointer(Weights(value))] = (value, name)
        constant.weights.name = name

    def initializer_name(self, value: np.ndarray) -> str | None:
        """The name of the initializer whose values ``value`` holds in their own memory and
        order (the initializer itself, or a reshaped view of it), else None: a transposed
        or computed array is new weights, refitted by its layer's name."""
        if value.size == 0 or not value.flags.c_contiguous:
            return None
        entry = self._initializers.get(weights_pointer(Weights(value)))
        if entry is None or entry[0].dtype != value.dtype or entry[0].size != value.size:
            return None
        return entry[1]

    def weights(self, value: np.ndarray) -> Weights:
        """Layer weights holding ``value``, named after the initializer they come from."""
        value = np.ascontiguousarray(value)
        return Weights(value, name=self.initializer_name(value))

    def value(self, tensor: ITensor | None) -> np.ndarray | None:
        """The value of ``tensor`` when it is known at build time (constants, and small
        results the network's shape inference computed), else None."""
        if tensor is None:
            return None
        if tensor in self._values:
            return self._values[tensor]
        if tensor.is_network_input:
            return None
        try:
            # The network propagates small values (shape arithmetic) during inference.
            info = self.network._info(tensor)
        except NetworkError:
            return None
        return None if info.value is None else np.asarray(info.value)

    def elements(self, tensor: ITensor | None) -> tuple[int | None, ...] | None:
        """The elements of a 0-D or 1-D integer tensor, flattened: ints where known at build
        time, None where computed at run time; None when not even its length is known."""
        if tensor is None or len(tensor.shape) > 1 or tensor.dtype not in _INTEGERS:
            return None
        value = self.value(tensor)
        if value is not None:
            return tuple(int(v) for v in value.reshape(-1))
        if tensor in self._elements:
            return self._elements[tensor]
        length = 1 if len(tensor.shape) == 0 else tensor.shape[0]
        return None if length < 0 else (None,) * length

    def note_elements(self, tensor: ITensor, elements: tuple[int | None, ...]) -> ITensor:
        """Remember what is known of ``tensor``'s elements; a constant replaces it when all
        of them are known."""
        if all(e is not None for e in elements) and self.value(tensor) is None:
            value: np.ndarray = np.array(elements, nptype(tensor.dtype)).reshape(
                () if len(tensor.shape) == 0 else (-1,))
            return self.constant(value)
        if any(e is not None for e in elements):
            self._elements[tensor] = elements
        return tensor

    def require_value(self, node: Node, index: int, what: str) -> np.ndarray:
        """The build-time value of input ``index``; refuses the node when it is dynamic."""
        value = self.value(node.input(index))
        if value is None:
            name = node.input_names[index] if index < len(node.input_names) else f"#{index}"
            node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                      f"input {index} ('{name}', {what}) must be known at build time (an "
                      f"initializer or a Constant); it is computed at run time here",
                      tensor=name)
        return value

    def dtype_of(self, tensor: ITensor) -> DataType:
        return tensor.dtype

    def rank_of(self, tensor: ITensor) -> int:
        return len(tensor.shape)

    def warn(self, message: str) -> None:
        log(self.logger, Severity.WARNING, message)

    def verbose(self, message: str) -> None:
        log(self.logger, Severity.VERBOSE, message)
