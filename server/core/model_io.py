"""A model's inputs and outputs as a request sees them: checking a request against the
configuration, choosing the outputs it asked for, and the metadata that describes them.
Plan-backed models and ensembles check requests alike, through these functions.

>>> config = ModelConfig("m", max_batch_size=8, inputs=(TensorConfig("x", "FP32", (4,)),))
>>> full_shape(config, config.inputs[0])
(-1, 4)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from server.core.codec import InferRequest
from server.core.config import ModelConfig, TensorConfig
from server.core.errors import InvalidArgument

Feeds = dict[str, np.ndarray]


def full_shape(config: ModelConfig, tensor: TensorConfig) -> tuple[int, ...]:
    """``tensor``'s shape with the batch dimension (-1) when the model batches."""
    return ((-1,) if config.max_batch_size > 0 else ()) + tensor.dims


def feeds_from_request(config: ModelConfig, request: InferRequest) -> tuple[Feeds, int]:
    """The request's input arrays by name and its batch size (1 for a model without a batch
    dimension); ``InvalidArgument`` names the input that does not fit the model."""
    name = config.name
    declared = {t.name: t for t in config.inputs}
    given = [i.name for i in request.inputs]
    duplicates = sorted({n for n in given if given.count(n) > 1})
    if duplicates:
        raise InvalidArgument(f"model '{name}': inputs {duplicates} are given twice")
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise InvalidArgument(f"model '{name}' has no inputs {unknown}; its inputs "
                              f"are {sorted(declared)}")
    missing = sorted(set(declared) - set(given))
    if missing:
        raise InvalidArgument(f"model '{name}': inputs {missing} are missing")
    batches = set()
    feeds = {}
    for item in request.inputs:
        tensor = declared[item.name]
        if item.datatype != tensor.datatype:
            raise InvalidArgument(f"model '{name}' input '{item.name}': datatype "
                                  f"{item.datatype}, the model expects {tensor.datatype}")
        batches.add(_check_shape(config, item.name, item.shape, tensor))
        assert item.data is not None, "DataPlane.infer reads region inputs first"
        feeds[item.name] = item.data
    if len(batches) > 1:
        raise InvalidArgument(f"model '{name}': inputs disagree on the batch size "
                              f"({sorted(batches)})")
    return feeds, batches.pop()


def _check_shape(config: ModelConfig, name: str, shape: tuple[int, ...],
                 declared: TensorConfig) -> int:
    mbs = config.max_batch_size
    full = full_shape(config, declared)
    if len(shape) != len(full) or any(d != -1 and d != s for d, s in zip(full, shape)):
        raise InvalidArgument(f"model '{config.name}' input '{name}': shape {list(shape)} "
                              f"does not match the model's {list(full)} (-1 may vary)")
    if mbs > 0 and not 1 <= shape[0] <= mbs:
        raise InvalidArgument(f"model '{config.name}' input '{name}': batch size {shape[0]} "
                              f"must be in 1..{mbs} (max_batch_size)")
    return shape[0] if mbs > 0 else 1


def requested_outputs(config: ModelConfig, request: InferRequest) -> list[str]:
    """The outputs the request asked for, in its order (all of them when it named none)."""
    outputs = [t.name for t in config.outputs]
    if request.outputs is None:
        return outputs
    names = [o.name for o in request.outputs]
    unknown = sorted(set(names) - set(outputs))
    if unknown:
        raise InvalidArgument(f"model '{config.name}' has no outputs {unknown}; its outputs "
                              f"are {sorted(outputs)}")
    return names


def metadata_of(config: ModelConfig, versions: list[str]) -> dict[str, Any]:
    """KServe v2 model metadata."""
    return {
        "name": config.name, "versions": versions, "platform": config.platform,
        "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(full_shape(config, t))}
                   for t in config.inputs],
        "outputs": [{"name": t.name, "datatype": t.datatype,
                     "shape": list(full_shape(config, t))} for t in config.outputs],
    }
