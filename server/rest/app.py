"""KServe v2 REST endpoints with Triton's extensions. Each endpoint decodes the HTTP request,
makes one ``DataPlane`` call and encodes the answer; errors become ``{"error": "..."}``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.core.codec import (
    HEADER_LENGTH,
    parse_header_length,
    request_from_body,
    response_to_body,
)
from server.core.dataplane import DataPlane
from server.core.errors import InvalidArgument, PayloadTooLarge, ServerError
from server.core.shared_memory import cuda_handle_from_json


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of "
                              f"{limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    body = await read_body(request, limit)
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"malformed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidArgument("expected a JSON object")
    return value


def status_response(ok: bool) -> Response:
    return Response(status_code=200 if ok else 503)


def create_app(plane: DataPlane) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await plane.start()
        yield
        await plane.stop()

    app = FastAPI(title="pytrt-server", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    limit = plane.settings.max_request_bytes

    @app.exception_handler(ServerError)
    async def server_error(request: Request, exc: ServerError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"},
                            status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        return JSONResponse({"error": problems}, status_code=400)

    @app.get("/v2/health/live")
    async def live() -> Response:
        return status_response(plane.live())

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        return status_response(plane.ready())

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return plane.server_metadata()

    @app.get("/v2/models/stats")
    async def all_statistics() -> dict[str, Any]:
        return plane.statistics()

    @app.get("/v2/models/{model}")
    @app.get("/v2/models/{model}/versions/{version}")
    async def model_metadata(model: str, version: str | None = None) -> dict[str, Any]:
        return plane.model_metadata(model, version)

    @app.get("/v2/models/{model}/ready")
    @app.get("/v2/models/{model}/versions/{version}/ready")
    async def model_ready(model: str, version: str | None = None) -> Response:
        return status_response(plane.model_ready(model, version))

    @app.get("/v2/models/{model}/config")
    @app.get("/v2/models/{model}/versions/{version}/config")
    async def model_config(model: str, version: str | None = None) -> dict[str, Any]:
        return plane.model_config(model, version)

    @app.post("/v2/models/{model}/infer")
    @app.post("/v2/models/{model}/versions/{version}/infer")
    async def infer(model: str, request: Request, version: str | None = None) -> Response:
        body = await read_body(request, limit)
        decoded = request_from_body(body, parse_header_length(
            request.headers.get(HEADER_LENGTH), len(body)))
        answer, header_length = response_to_body(await plane.infer(model, version, decoded),
                                                 decoded)
        if header_length is None:
            return Response(answer, media_type="application/json")
        return Response(answer, media_type="application/octet-stream",
                        headers={HEADER_LENGTH: str(header_length)})

    @app.get("/v2/models/{model}/stats")
    @app.get("/v2/models/{model}/versions/{version}/stats")
    async def statistics(model: str, version: str | None = None) -> dict[str, Any]:
        return plane.statistics(model, version)

    @app.post("/v2/repository/index")
    async def repository_index(request: Request) -> list[dict[str, str]]:
        ready_only = (await read_json(request, limit)).get("ready", False)
        return plane.repository_index(ready_only is True)

    @app.post("/v2/repository/models/{model}/load")
    async def load(model: str, request: Request) -> Response:
        plane.check_token(request.headers.get("authorization"))
        body = await read_json(request, plane.settings.max_upload_bytes * 4 // 3 + 65536)
        await plane.load(model, body.get("parameters"))
        return Response(status_code=200)

    @app.post("/v2/repository/models/{model}/unload")
    async def unload(model: str, request: Request) -> Response:
        plane.check_token(request.headers.get("authorization"))
        await plane.unload(model)
        return Response(status_code=200)

    @app.post("/v2/repository/models/{model}/upload")
    async def upload(model: str, request: Request, filename: str,
                     config: str | None = None) -> dict[str, Any]:
        plane.check_token(request.headers.get("authorization"))
        body = await read_body(request, plane.settings.max_upload_bytes)
        return await plane.upload(model, filename, body, config)

    # -- shared memory (Triton's extension_shared_memory.md) ---------------------------------
    @app.get("/v2/systemsharedmemory/status")
    @app.get("/v2/systemsharedmemory/region/{name}/status")
    async def system_shared_memory_status(name: str = "") -> list[dict[str, Any]]:
        return plane.system_shared_memory_status(name)

    @app.post("/v2/systemsharedmemory/region/{name}/register")
    async def register_system_shared_memory(name: str, request: Request) -> Response:
        body = await read_json(request, limit)
        plane.register_system_shared_memory(name, body.get("key"), body.get("offset", 0),
                                            body.get("byte_size"))
        return Response(status_code=200)

    @app.post("/v2/systemsharedmemory/unregister")
    @app.post("/v2/systemsharedmemory/region/{name}/unregister")
    async def unregister_system_shared_memory(name: str = "") -> Response:
        plane.unregister_system_shared_memory(name)
        return Response(status_code=200)

    @app.get("/v2/cudasharedmemory/status")
    @app.get("/v2/cudasharedmemory/region/{name}/status")
    async def cuda_shared_memory_status(name: str = "") -> list[dict[str, Any]]:
        return plane.cuda_shared_memory_status(name)

    @app.post("/v2/cudasharedmemory/region/{name}/register")
    async def register_cuda_shared_memory(name: str, request: Request) -> Response:
        body = await read_json(request, limit)
        plane.register_cuda_shared_memory(name, cuda_handle_from_json(body.get("raw_handle")),
                                          body.get("device_id", 0), body.get("byte_size"))
        return Response(status_code=200)

    @app.post("/v2/cudasharedmemory/unregister")
    @app.post("/v2/cudasharedmemory/region/{name}/unregister")
    async def unregister_cuda_shared_memory(name: str = "") -> Response:
        plane.unregister_cuda_shared_memory(name)
        return Response(status_code=200)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(plane.metrics_text(), media_type=plane.metrics.content_type)

    return app


def create_metrics_app(plane: DataPlane) -> FastAPI:
    """``/metrics`` alone, for the metrics port."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(plane.metrics_text(), media_type=plane.metrics.content_type)

    return app
