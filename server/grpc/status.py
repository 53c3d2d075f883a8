"""The one place where core errors become gRPC status codes.

Most errors follow the HTTP status the core gives them; two are more precise in gRPC's
vocabulary: a body over the size limit and a full queue are both RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

from http import HTTPStatus

import grpc

from server.core.errors import PayloadTooLarge, ServerBusy, ServerError

_BY_CLASS: dict[type[ServerError], grpc.StatusCode] = {
    PayloadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ServerBusy: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

_BY_HTTP: dict[HTTPStatus, grpc.StatusCode] = {
    HTTPStatus.BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    HTTPStatus.UNAUTHORIZED: grpc.StatusCode.UNAUTHENTICATED,
    HTTPStatus.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    HTTPStatus.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    HTTPStatus.CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    HTTPStatus.TOO_MANY_REQUESTS: grpc.StatusCode.RESOURCE_EXHAUSTED,
    HTTPStatus.SERVICE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    HTTPStatus.NOT_IMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    HTTPStatus.GATEWAY_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_code_of(error: ServerError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in _BY_CLASS:
            return _BY_CLASS[cls]
    return _BY_HTTP.get(HTTPStatus(error.status), grpc.StatusCode.INTERNAL)
