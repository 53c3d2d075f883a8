"""The model repository's layout on disk (Triton's): safe model names and load-with-files
paths, version directories, configuration files, and what poll mode compares."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from server.core.build import MODEL_FILES
from server.core.config import config_from_pbtxt
from server.core.errors import InvalidArgument

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


def is_model_name(name: str) -> bool:
    """Whether ``name`` may name a model directory (what ``check_model_name`` accepts)."""
    return bool(_MODEL_NAME.fullmatch(name)) and ".." not in name


def check_model_name(name: str) -> str:
    """``name`` if it is a safe directory name (no separators, no leading dot)."""
    if not is_model_name(name):
        raise InvalidArgument(f"invalid model name {name!r}: use letters, digits, '_', '-' "
                              f"and '.', starting with a letter or digit")
    return name


def check_model_file_path(path: str) -> tuple[int, str]:
    """A load-with-files path, ``<version>/model.onnx`` or ``<version>/model.plan``."""
    parts = path.split("/")
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in MODEL_FILES \
            or len(parts[0]) > 18:
        raise InvalidArgument(f"invalid model file path {path!r}: expected "
                              f"'<version>/model.onnx' or '<version>/model.plan'")
    return int(parts[0]), parts[1]


def repository_signature(model_dir: Path) -> tuple[Any, ...]:
    """What poll mode compares to notice a change: every file's path, size and mtime."""
    if not model_dir.is_dir():
        return ()
    return tuple(sorted((str(p.relative_to(model_dir)), p.stat().st_size, p.stat().st_mtime_ns)
                        for p in model_dir.rglob("*") if p.is_file()))


def version_numbers(model_dir: Path) -> list[int]:
    """The version directories' numbers, in order."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir()
                  if p.is_dir() and p.name.isdigit() and len(p.name) <= 18)


def read_config_text(model_dir: Path) -> str | None:
    """An existing model's configuration as JSON text (None when it has none)."""
    if (model_dir / "config.json").is_file():
        return (model_dir / "config.json").read_text()
    if (model_dir / "config.pbtxt").is_file():
        return json.dumps(config_from_pbtxt((model_dir / "config.pbtxt").read_text(),
                                            model_dir.name).to_json())
    return None


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a temporary file renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
