"""Functions the isolated-build tests run in a spawned child (importable there by name); each
takes the request bytes, as the build does."""

from __future__ import annotations

import os

from server.core.errors import InvalidArgument, Unavailable


def own_pid(request: bytes) -> bytes:
    return str(os.getpid()).encode()


def echo(request: bytes) -> bytes:
    return request[::-1]


def crash(request: bytes) -> bytes:
    os._exit(int(request))  # as a native library's crash would end it: no result, no cleanup


def fail(request: bytes) -> bytes:
    kind, message = request.decode().split(":", 1)
    errors = {"invalid": InvalidArgument, "unavailable": Unavailable, "other": RuntimeError}
    raise errors[kind](message)
