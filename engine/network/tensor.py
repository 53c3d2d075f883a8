"""``ITensor``: a value flowing between layers of a network definition."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import NetworkError
from engine.types import DataType, Dims, TensorFormat, TensorLocation

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.layer import ILayer


class ITensor:
    """A tensor of a network: a network input, or the output of a layer.

    Shapes and types of layer outputs are inferred from the layers upstream, lazily, and are
    recomputed whenever a layer upstream changes.
    """

    def __init__(
        self,
        network: INetworkDefinition,
        name: str,
        *,
        producer: ILayer | None = None,
        index: int = 0,
        dtype: DataType = DataType.FLOAT,
        shape: Dims = Dims(),
    ) -> None:
        self._network = network
        self._name = name
        self._producer = producer
        self._index = index
        self._id = network._next_tensor_id()
        self._declared_dtype = DataType(dtype)
        self._declared_shape = Dims(shape)
        self.location = TensorLocation.DEVICE
        self.allowed_formats = 1 << TensorFormat.LINEAR
        self._dynamic_range: tuple[float, float] | None = None
        self._dimension_names: dict[int, str] = {}

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = str(value)

    @property
    def producer(self) -> ILayer | None:
        """The layer whose output this is (None for network inputs); an extension."""
        return self._producer

    @property
    def shape(self) -> Dims:
        if self._producer is None:
            return self._declared_shape
        return Dims(self._network._info(self).shape)

    @shape.setter
    def shape(self, value: Dims) -> None:
        if self._producer is not None:
            raise NetworkError(f"tensor '{self.name}': only network inputs can be reshaped")
        self._declared_shape = Dims(value)
        self._network._invalidate_consumers(self)

    @property
    def dtype(self) -> DataType:
        if self._producer is None:
            return self._declared_dtype
        return self._network._info(self).dtype

    @dtype.setter
    def dtype(self, value: DataType) -> None:
        if self._producer is None:
            self._declared_dtype = DataType(value)
            self._network._invalidate_consumers(self)
        else:
            self._producer.set_output_type(self._index, value)

    def get_dimension_name(self, index: int) -> str | None:
        return self._dimension_names.get(index)

    def set_dimension_name(self, index: int, name: str) -> None:
        self._dimension_names[index] = name

    # -- INT8 dynamic range (used by implicit quantization) ---------------------------------
    def set_dynamic_range(self, min: float, max: float) -> bool:  # noqa: A002 - TensorRT's names
        if not min <= max:
            return False
        self._dynamic_range = (float(min), float(max))
        return True

    def reset_dynamic_range(self) -> None:
        self._dynamic_range = None

    @property
    def dynamic_range(self) -> tuple[float, float] | None:
        return self._dynamic_range

    @property
    def dynamic_range_is_set(self) -> bool:
        return self._dynamic_range is not None

    # -- role -------------------------------------------------------------------------------
    @property
    def is_network_input(self) -> bool:
        return self._producer is None

    @property
    def is_network_output(self) -> bool:
        return self._network._is_output(self)

    @property
    def is_shape_tensor(self) -> bool:
        return any(index in type(layer)._shape_inputs
                   for layer, index in self._network._consumers_of(self))

    @property
    def is_execution_tensor(self) -> bool:
        return not self.is_shape_tensor or any(
            index not in type(layer)._shape_inputs
            for layer, index in self._network._consumers_of(self))

    def __repr__(self) -> str:
        return f"<ITensor '{self.name}'>"
