"""Parsers for trtexec's option values: shape specs, memory pools, tactic sources, inputs,
devices. Each raises ``UsageError`` naming the option and what was expected.

>>> parse_shapes("--shapes", "x:1x3x224x224,mask:1x16")
{'x': (1, 3, 224, 224), 'mask': (1, 16)}
>>> parse_mem_pool_size("workspace:64M")
{'workspace': 67108864}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.builder.config import MemoryPoolType, TacticSource
from engine.tools.errors import UsageError

# trtexec's pool names for --memPoolSize.
MEMORY_POOLS = {
    "workspace": MemoryPoolType.WORKSPACE,
    "dlaSRAM": MemoryPoolType.DLA_MANAGED_SRAM,
    "dlaLocalDRAM": MemoryPoolType.DLA_LOCAL_DRAM,
    "dlaGlobalDRAM": MemoryPoolType.DLA_GLOBAL_DRAM,
    "tacticSharedMem": MemoryPoolType.TACTIC_SHARED_MEMORY,
}
_UNITS = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_shapes(option: str, spec: str) -> dict[str, tuple[int, ...]]:
    """``name:AxBxC[,name2:...]`` into shapes; ``name:`` or ``name:scalar`` is 0-d."""
    shapes: dict[str, tuple[int, ...]] = {}
    for item in _items(spec):
        name, sep, dims = item.rpartition(":")
        name = name.strip("'\"")
        if not sep or not name:
            raise UsageError(f"{option}: '{item}' is not NAME:DIMS (e.g. input:1x3x224x224)")
        if dims in ("", "scalar"):
            shapes[name] = ()
            continue
        try:
            shape = tuple(int(d) for d in dims.split("x"))
        except ValueError:
            raise UsageError(f"{option}: '{item}': dimensions must be integers joined by 'x'"
                             ) from None
        if any(d < 0 for d in shape):
            raise UsageError(f"{option}: '{item}': dimensions must be >= 0")
        shapes[name] = shape
    return shapes


def parse_mem_pool_size(spec: str) -> dict[str, int]:
    """``pool:size[unit]`` items; the size is in MiB unless it ends in B, K, M or G."""
    pools: dict[str, int] = {}
    for item in _items(spec):
        name, _, size = item.partition(":")
        if name not in MEMORY_POOLS:
            raise UsageError(f"--memPoolSize: unknown pool '{name}'; pools: "
                             f"{', '.join(MEMORY_POOLS)}")
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([BKMG]?)", size)
        if match is None:
            raise UsageError(f"--memPoolSize: '{item}': expected POOL:SIZE with an optional "
                             f"unit B, K, M or G (default M)")
        pools[name] = int(float(match.group(1)) * _UNITS[match.group(2) or "M"])
    return pools


def parse_tactic_sources(spec: str, current: int) -> int:
    """Apply ``+SOURCE`` / ``-SOURCE`` items (trtexec's syntax) to the bit mask ``current``."""
    mask = current
    for item in _items(spec):
        sign, name = item[:1], item[1:].upper()
        if sign not in "+-" or not sign or name not in TacticSource.__members__:
            raise UsageError(f"--tacticSources: '{item}': expected +NAME or -NAME with NAME one "
                             f"of {', '.join(TacticSource.__members__)}")
        bit = 1 << int(TacticSource[name])
        mask = mask | bit if sign == "+" else mask & ~bit
    return mask


@dataclass(frozen=True)
class DeviceChoice:
    """The target of a run: ``cpu``, or ``gpu`` with an optional device index."""

    kind: str
    index: int | None = None


def parse_device(spec: str) -> DeviceChoice:
    """``cpu``, ``gpu``, ``gpu:N`` or ``N`` (trtexec's GPU index)."""
    text = spec.strip().lower()
    if text in ("cpu", "gpu"):
        return DeviceChoice(text)
    match = re.fullmatch(r"(?:gpu:)?(\d+)", text)
    if match is None:
        raise UsageError(f"--device: '{spec}': expected cpu, gpu, gpu:N or a GPU index N")
    return DeviceChoice("gpu", int(match.group(1)))


def parse_load_inputs(spec: str) -> dict[str, Path]:
    """``name:file[,name2:file2]``: a ``.npy`` file, or raw bytes in the input's layout."""
    files: dict[str, Path] = {}
    for item in _items(spec):
        name, sep, path = item.partition(":")
        if not sep or not name or not path:
            raise UsageError(f"--loadInputs: '{item}' is not NAME:FILE")
        if not Path(path).is_file():
            raise UsageError(f"--loadInputs: input '{name}': no such file {path}")
        files[name.strip("'\"")] = Path(path)
    return files


def read_input_file(name: str, path: Path, shape: tuple[int, ...], dtype: np.dtype
                    ) -> np.ndarray:
    """The values of input ``name`` from ``path`` (``.npy`` without pickle, or raw bytes)."""
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise UsageError(f"--loadInputs: input '{name}': {path}: {exc}") from None
        if array.shape != shape:
            raise UsageError(f"--loadInputs: input '{name}': {path} has shape "
                             f"{array.shape}, the run uses {shape} (set it with --shapes)")
        return np.ascontiguousarray(array.astype(dtype, copy=False))
    raw = path.read_bytes()
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise UsageError(f"--loadInputs: input '{name}': {path} has {len(raw)} bytes, shape "
                         f"{shape} of {dtype} needs {expected}")
    return np.frombuffer(raw, dtype).reshape(shape).copy()


def _items(spec: str) -> list[str]:
    return [item.strip() for item in spec.split(",") if item.strip()]
