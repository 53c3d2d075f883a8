"""Functions the isolated-build tests run in a spawned child (importable there by name)."""

from __future__ import annotations

import os

from server.core.errors import InvalidArgument, Unavailable


def own_pid() -> bytes:
    return str(os.getpid()).encode()


def crash(code: int) -> bytes:
    os._exit(code)  # as a native library's crash would end it: no result, no cleanup


def fail(kind: str, message: str) -> bytes:
    errors = {"invalid": InvalidArgument, "unavailable": Unavailable, "other": RuntimeError}
    raise errors[kind](message)
