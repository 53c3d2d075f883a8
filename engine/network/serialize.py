"""A network as plain data: a JSON-able record plus a list of arrays, and back.

The builder clones networks through it, and the plan stores it. Decoding trusts nothing: layer
classes come from a fixed table, attributes must be ones the class declares, enum values must
be members of registered enums, and every malformed part raises ``PlanError``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.errors import PlanError
from engine.network.definition import INetworkDefinition
from engine.network.layer import ATTRIBUTE_ENUMS, LAYER_CLASSES, ILayer, LayerType
from engine.network.scaled_weights import ScaledWeights
from engine.network.tensor import ITensor
from engine.types import DataType, Dims, TensorLocation, Weights, nptype


class StrippedWeights(Weights):
    """Weights left out of a plan (``BuilderFlag.STRIP_PLAN``, ``SerializationFlag
    .EXCLUDE_WEIGHTS``): their type and shape, values zero (a read-only view of one zero,
    no memory) until the engine is refitted with the real ones."""

    def __init__(self, shape: tuple[int, ...], array_dtype: np.dtype, dtype: DataType,
                 name: str | None) -> None:
        super().__init__(np.broadcast_to(np.zeros((), array_dtype), shape), dtype=dtype,
                         name=name)


# The array types a stripped weights record may name: those of the engine's data types.
_ARRAY_TYPES = {np.dtype(nptype(d)).name: np.dtype(nptype(d)) for d in DataType}


class _Encoder:
    def __init__(self, lazy_weights: bool,
                 strip_weights: bool | Callable[[Weights], bool] = False) -> None:
        self.arrays: list[Any] = []
        self.lazy_weights = lazy_weights
        self.strip = strip_weights if callable(strip_weights) else \
            (lambda _: bool(strip_weights))

    def array(self, arr: np.ndarray) -> int:
        self.arrays.append(np.ascontiguousarray(arr))
        return len(self.arrays) - 1

    def weights(self, w: Weights) -> int:
        if self.lazy_weights and isinstance(w, ScaledWeights) and not w.evaluated:
            self.arrays.append(w.product)
            return len(self.arrays) - 1
        return self.array(w.numpy())

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, enum.Enum):
            cls = type(v).__name__
            if ATTRIBUTE_ENUMS.get(cls) is not type(v):
                raise AssertionError(f"enum {cls} is not registered with @attribute_enum")
            return {"enum": cls, "name": v.name}
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            return float(v)
        if isinstance(v, Dims):
            return {"dims": [int(d) for d in v]}
        if isinstance(v, Weights) and (isinstance(v, StrippedWeights) or self.strip(v)) \
                and v.size:
            array = v.numpy()
            record: dict[str, Any] = {"stripped": [int(d) for d in array.shape],
                                      "array_dtype": array.dtype.name, "dtype": v.dtype.name}
            if v.name is not None:
                record["name"] = v.name
            return record
        if isinstance(v, Weights):
            record = {"weights": self.weights(v), "dtype": v.dtype.name}
            if v.name is not None:
                record["name"] = v.name
            return record
        if isinstance(v, np.ndarray):
            return {"array": self.array(v)}
        if isinstance(v, (tuple, list)):
            return [self.value(x) for x in v]
        raise AssertionError(f"cannot encode layer attribute value of type {type(v).__name__}")


def encode_network(
    network: INetworkDefinition, layers: list[ILayer] | None = None, lazy_weights: bool = False,
    strip_weights: bool | Callable[[Weights], bool] = False
) -> tuple[dict[str, Any], list[Any]]:
    """The record of ``network`` (or of ``layers`` of it, in that order) and its arrays.

    With ``lazy_weights``, scaled weights not computed yet are listed as their
    ``RowScaledArray`` (``write_plan`` computes them into the plan), not computed here. With
    ``strip_weights`` (all, or those it returns True for), weights are listed by type and
    shape only (``StrippedWeights`` when decoded), as are weights already stripped.
    """
    enc = _Encoder(lazy_weights, strip_weights)
    layers = list(network._layers) if layers is None else layers
    ids: dict[ITensor, int] = {}
    tensors: list[dict[str, Any]] = []

    def tensor_record(t: ITensor) -> int:
        ids[t] = len(tensors)
        rec: dict[str, Any] = {"name": t.name, "location": t.location.name}
        if t.is_network_input:
            rec["dtype"] = t.dtype.name
            rec["shape"] = list(t.shape)
            rec["dimension_names"] = {str(k): v for k, v in t._dimension_names.items()}
        if t.dynamic_range is not None:
            rec["dynamic_range"] = list(t.dynamic_range)
        tensors.append(rec)
        return ids[t]

    for t in network._inputs:
        tensor_record(t)
    layer_records: list[dict[str, Any]] = []
    for layer in layers:
        layer_records.append({
            "type": layer.layer_type.name,
            "name": layer.name,
            "metadata": layer.metadata,
            "inputs": [None if t is None else ids.get(t) for t in layer._inputs],
            "outputs": [tensor_record(t) for t in layer._outputs],
            "attrs": {k: enc.value(v) for k, v in layer.attributes().items()},
            "precision": None if layer._precision is None else layer._precision.name,
            "output_types": {str(k): v.name for k, v in layer._output_types.items()},
        })
    for rec, layer in zip(layer_records, layers):
        if any(i is None and t is not None for i, t in zip(rec["inputs"], layer._inputs)):
            missing = [t.name for i, t in zip(rec["inputs"], layer._inputs)
                       if i is None and t is not None]
            raise AssertionError(f"layer '{layer.name}' reads tensors not in the record: {missing}")
    record = {
        "name": network.name,
        "flags": network.flags,
        "tensors": tensors,
        "inputs": [ids[t] for t in network._inputs],
        "outputs": [ids[t] for t in network._outputs],
        "layers": layer_records,
    }
    return record, enc.arrays


class _Decoder:
    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.arrays = arrays

    @staticmethod
    def stripped(v: dict[str, Any]) -> StrippedWeights:
        shape, array_dtype, name = v["stripped"], v.get("array_dtype"), v.get("name")
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape) or \
                array_dtype not in _ARRAY_TYPES or v.get("dtype") not in DataType.__members__ \
                or (name is not None and not isinstance(name, str)):
            raise PlanError(f"malformed plan: stripped weights record {v!r}")
        return StrippedWeights(tuple(shape), _ARRAY_TYPES[array_dtype], DataType[v["dtype"]],
                               name)

    def array(self, index: Any) -> np.ndarray:
        if not isinstance(index, int) or not 0 <= index < len(self.arrays):
            raise PlanError(f"malformed plan: array index {index!r} out of range")
        return self.arrays[index]

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, list):
            return tuple(self.value(x) for x in v)
        if isinstance(v, dict):
            if "enum" in v:
                cls = ATTRIBUTE_ENUMS.get(v["enum"])
                if cls is None or v.get("name") not in cls.__members__:
                    raise PlanError(f"malformed plan: unknown enum value {v!r}")
                return cls[v["name"]]
            if "dims" in v:
                return Dims(v["dims"])
            if "stripped" in v:
                return self.stripped(v)
            if "weights" in v:
                name = v.get("name")
                if name is not None and not isinstance(name, str):
                    raise PlanError(f"malformed plan: weights name {name!r} is not a string")
                return Weights(self.array(v["weights"]), dtype=DataType[v["dtype"]], name=name)
            if "array" in v:
                return self.array(v["array"])
        raise PlanError(f"malformed plan: cannot decode attribute value {v!r}")


def decode_network(
    record: dict[str, Any], arrays: list[np.ndarray]
) -> tuple[INetworkDefinition, list[ITensor | None]]:
    """Rebuild a network from ``encode_network``'s output; returns it and its tensors by id."""
    try:
        return _decode(record, arrays)
    except PlanError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise PlanError(f"malformed plan: network record is invalid ({type(exc).__name__}: "
                        f"{exc})") from None


def _decode(
    record: dict[str, Any], arrays: list[np.ndarray]
) -> tuple[INetworkDefinition, list[ITensor | None]]:
    dec = _Decoder(arrays)
    network = INetworkDefinition(int(record["flags"]))
    network.name = str(record["name"])
    tensor_recs = record["tensors"]
    tensors: list[ITensor | None] = [None] * len(tensor_recs)

    def finish(t: ITensor, rec: dict[str, Any]) -> None:
        t.name = str(rec["name"])
        t.location = TensorLocation[rec["location"]]
        if rec.get("dynamic_range") is not None:
            lo, hi = rec["dynamic_range"]
            t.set_dynamic_range(float(lo), float(hi))

    for tid in record["inputs"]:
        rec = tensor_recs[tid]
        t = network.add_input(str(rec["name"]), DataType[rec["dtype"]], Dims(rec["shape"]))
        for k, name in rec.get("dimension_names", {}).items():
            t.set_dimension_name(int(k), str(name))
        finish(t, rec)
        tensors[tid] = t
    for rec in record["layers"]:
        cls = LAYER_CLASSES.get(LayerType[rec["type"]])
        if cls is None:
            raise PlanError(f"malformed plan: layer type {rec['type']} has no implementation")
        inputs: list[ITensor | None] = []
        for tid in rec["inputs"]:
            if tid is None:
                inputs.append(None)
                continue
            t = tensors[tid]
            if t is None:
                raise PlanError(f"malformed plan: layer '{rec['name']}' reads tensor {tid} "
                                f"before it is produced")
            inputs.append(t)
        layer = cls.__new__(cls)
        ILayer.__init__(layer, network, inputs, len(rec["outputs"]))
        layer.name = str(rec["name"])
        layer.metadata = str(rec.get("metadata", ""))
        for key, value in rec["attrs"].items():
            if key not in cls._attributes:
                raise PlanError(f"malformed plan: layer '{rec['name']}' has no attribute {key!r}")
            setattr(layer, key, dec.value(value))
        if rec.get("precision") is not None:
            layer._precision = DataType[rec["precision"]]
        layer._output_types = {int(k): DataType[v] for k, v in rec["output_types"].items()}
        for tid, t in zip(rec["outputs"], layer._outputs):
            if tensors[tid] is not None:
                raise PlanError(f"malformed plan: tensor {tid} is produced twice")
            finish(t, tensor_recs[tid])
            tensors[tid] = t
        network._layers.append(layer)
        network._link(layer)
    for tid in record["outputs"]:
        t = tensors[tid]
        if t is None:
            raise PlanError(f"malformed plan: output tensor {tid} is never produced")
        network._outputs.append(t)
    return network, tensors


def clone_network(network: INetworkDefinition) -> INetworkDefinition:
    """A deep copy of ``network`` (weights shared, as weights are never modified in place)."""
    record, arrays = encode_network(network)
    return decode_network(record, arrays)[0]

