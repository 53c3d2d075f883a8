"""Model warmup (Triton's ``model_warmup``): sample requests that every execution context of a
model version runs when the version loads, before it reports ready.

    model_warmup [ {
      name: "zeros" batch_size: 4 count: 2
      inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 16 ] zero_data: true } }
      inputs { key: "INPUT1" value: { data_type: TYPE_FP32 dims: [ 16 ]
                                      input_data_file: "input1.bin" } }
    } ]

A sample gives every input of the model one data source: ``zero_data``, ``random_data`` or
``input_data_file``, a file under the model directory's ``warmup/`` folder holding one batch
item, raw, little-endian and row-major (a BYTES input's elements each a 4-byte little-endian
length, then the bytes), of exactly the size the dims need. The item is repeated
``batch_size`` times, as Triton duplicates it; the sample runs ``count`` times (0: once) on
each context. The samples are checked against the model's inputs (names, data types, dims,
``max_batch_size``) when the configuration is read if it declares its inputs, else once the
engine has completed it. A file is data, read as bytes: nothing in it is ever evaluated.

>>> from server.core.config import ModelConfig, TensorConfig
>>> sample = WarmupSample("zeros", 2, (("x", WarmupInput("FP32", (3,), "zero_data")),))
>>> config = ModelConfig("m", max_batch_size=4, inputs=(TensorConfig("x", "FP32", (3,)),))
>>> warmup_feeds(config, sample, Path("."))["x"].shape
(2, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from server.core.codec import bytes_from_binary, tensor_from_binary
from server.core.datatypes import datatype_to_config, numpy_of
from server.core.errors import InvalidArgument

if TYPE_CHECKING:
    from server.core.config import ModelConfig

SOURCES = ("zero_data", "random_data", "input_data_file")
WARMUP_FOLDER = "warmup"  # Triton's: <model>/warmup/<input_data_file>
# random_data for integer inputs: small non-negative values, so that inputs used as indices
# stay in range (Triton fills random bytes, which can make such a model fail its warmup).
RANDOM_INTEGER_LIMIT = 10

WARMUP_INPUT_SCHEMA = {"data_type": "enum", "dims": [int], "zero_data": bool,
                       "random_data": bool, "input_data_file": str}


@dataclass(frozen=True)
class WarmupInput:
    datatype: str  # KServe name: FP32, BYTES, ...
    dims: tuple[int, ...]  # one batch item's shape (without the batch dimension)
    source: str  # one of SOURCES
    data_file: str = ""  # for input_data_file: a path relative to the warmup folder

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"data_type": datatype_to_config(self.datatype),
                               "dims": list(self.dims)}
        out[self.source] = self.data_file if self.source == "input_data_file" else True
        return out


@dataclass(frozen=True)
class WarmupSample:
    name: str
    batch_size: int = 1
    inputs: tuple[tuple[str, WarmupInput], ...] = ()
    count: int = 0  # 0 runs the sample once, as 1 does (Triton's default)

    @property
    def runs(self) -> int:
        return max(self.count, 1)

    def describe(self) -> str:
        """The sample's inputs as a warmup failure names them."""
        return ", ".join(f"'{name}' {i.datatype} {list(i.dims)} from {i.source}"
                         + (f" '{i.data_file}'" if i.data_file else "")
                         for name, i in self.inputs)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "batch_size": self.batch_size, "count": self.count,
                "inputs": {name: i.to_json() for name, i in self.inputs}}


def check_data_file(path: str, where: str) -> str:
    """``path`` if it names a file inside the warmup folder: relative, no ``..``."""
    pure = PurePosixPath(path)
    if not path or "\\" in path or "\0" in path or pure.is_absolute() \
            or any(part == ".." for part in pure.parts):
        raise InvalidArgument(f"{where}: input_data_file {path!r} must be a relative path "
                              f"inside the model's {WARMUP_FOLDER}/ folder")
    return path


def check_warmup(config: ModelConfig, where: str) -> None:
    """Check every sample against the model's inputs and ``max_batch_size``."""
    declared = {t.name: t for t in config.inputs}
    mbs = config.max_batch_size
    for sample in config.model_warmup:
        at = f"{where}: model_warmup sample '{sample.name}'"
        if mbs == 0 and sample.batch_size != 1:
            raise InvalidArgument(f"{at}: batch_size {sample.batch_size}, but the model takes "
                                  f"no batch dimension (max_batch_size 0): it must be 1")
        if sample.batch_size > mbs > 0:
            raise InvalidArgument(f"{at}: batch_size {sample.batch_size} exceeds the model's "
                                  f"max_batch_size {mbs}")
        given = [name for name, _ in sample.inputs]
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise InvalidArgument(f"{at}: the model has no inputs {unknown}; its inputs are "
                                  f"{sorted(declared)}")
        missing = sorted(set(declared) - set(given))
        if missing:
            raise InvalidArgument(f"{at}: inputs {missing} are missing (a sample gives every "
                                  f"input of the model)")
        for name, item in sample.inputs:
            tensor = declared[name]
            if item.datatype != tensor.datatype:
                raise InvalidArgument(f"{at} input '{name}': data_type "
                                      f"{datatype_to_config(item.datatype)}, the model's input "
                                      f"is {datatype_to_config(tensor.datatype)}")
            if len(item.dims) != len(tensor.dims) or any(
                    m != -1 and d != m for d, m in zip(item.dims, tensor.dims)):
                raise InvalidArgument(f"{at} input '{name}': dims {list(item.dims)} do not fit "
                                      f"the model's {list(tensor.dims)} (-1 matches any size)")


def warmup_feeds(config: ModelConfig, sample: WarmupSample,
                 model_dir: Path) -> dict[str, np.ndarray]:
    """The sample's input arrays, batch included; files are read from
    ``model_dir/warmup/``. ``InvalidArgument`` names the sample and the input."""
    feeds = {}
    for name, item in sample.inputs:
        array = _one_item(name, item, model_dir, f"model_warmup sample '{sample.name}'")
        if config.max_batch_size > 0:
            array = np.repeat(array[np.newaxis], sample.batch_size, axis=0)
        feeds[name] = array
    return feeds


def _one_item(name: str, item: WarmupInput, model_dir: Path, where: str) -> np.ndarray:
    shape, count = item.dims, math.prod(item.dims)
    if item.source == "input_data_file":
        return _read_data_file(name, item, model_dir, where)
    if item.datatype == "BYTES":  # random_data falls back to zero_data (Triton's rule)
        zeros = np.empty(count, dtype=object)
        zeros[:] = [b""] * count
        return zeros.reshape(shape)
    dtype = numpy_of(item.datatype)
    if item.source == "zero_data":
        return np.zeros(shape, dtype)
    rng = np.random.default_rng()
    if item.datatype == "BOOL":
        return rng.integers(0, 2, shape).astype(dtype)
    if item.datatype in ("FP16", "BF16", "FP32", "FP64"):
        return rng.random(shape).astype(dtype)
    return rng.integers(0, RANDOM_INTEGER_LIMIT, shape).astype(dtype)


def _read_data_file(name: str, item: WarmupInput, model_dir: Path, where: str) -> np.ndarray:
    at = f"{where} input '{name}'"
    folder = (model_dir / WARMUP_FOLDER).resolve()
    path = (folder / item.data_file).resolve()
    if not path.is_relative_to(folder):  # a symbolic link out of the folder
        raise InvalidArgument(f"{at}: input_data_file '{item.data_file}' leads out of "
                              f"{folder}")
    if not path.is_file():
        raise InvalidArgument(f"{at}: input_data_file '{item.data_file}' is not a file in "
                              f"{folder}")
    count = math.prod(item.dims)
    size = path.stat().st_size
    if item.datatype != "BYTES":
        expected = count * numpy_of(item.datatype).itemsize
        if size != expected:
            raise InvalidArgument(f"{at}: input_data_file '{item.data_file}' holds {size} "
                                  f"bytes; dims {list(item.dims)} of {item.datatype} need "
                                  f"exactly {expected}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"{at}: input_data_file '{item.data_file}': {exc}") from None
    try:
        if item.datatype == "BYTES":
            return bytes_from_binary(raw, count, name).reshape(item.dims)
        return tensor_from_binary(raw, item.datatype, item.dims, name)
    except InvalidArgument as exc:  # it names the input
        raise InvalidArgument(f"{where}: input_data_file '{item.data_file}': {exc}") from None
