"""Errors of the server core, each with the HTTP status it maps to.

The tree::

    ServerError                  every error the core raises on purpose (500)
    ├── InvalidArgument          a malformed or inconsistent request (400)
    │   └── PayloadTooLarge      a body over the configured limit (413)
    ├── Unauthorized             a management call without the right token (401)
    ├── NotFound                 an unknown model, version or endpoint (404)
    ├── Unavailable              a model that exists but cannot serve (503)
    │   └── ServerBusy           the model's queue is full (503)
    └── Unsupported              a call this server does not allow in its mode (501)

Front ends map ``status`` to their own codes (gRPC does so in one place); the message is the
whole answer the client sees, so it names the model, tensor or file at fault.
"""

from __future__ import annotations

from http import HTTPStatus


class ServerError(Exception):
    """Base class; ``status`` is the HTTP status the error maps to."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR


class InvalidArgument(ServerError):  # noqa: N818 - named for its status
    status = HTTPStatus.BAD_REQUEST


class PayloadTooLarge(InvalidArgument):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class Unauthorized(ServerError):  # noqa: N818 - named for its status
    status = HTTPStatus.UNAUTHORIZED


class NotFound(ServerError):  # noqa: N818 - named for its status
    status = HTTPStatus.NOT_FOUND


class Unavailable(ServerError):  # noqa: N818 - named for its status
    status = HTTPStatus.SERVICE_UNAVAILABLE


class ServerBusy(Unavailable):
    status = HTTPStatus.SERVICE_UNAVAILABLE


class Unsupported(ServerError):  # noqa: N818 - named for its status
    status = HTTPStatus.NOT_IMPLEMENTED
