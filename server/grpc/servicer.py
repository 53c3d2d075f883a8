"""``inference.GRPCInferenceService``: each rpc decodes its message, makes one ``DataPlane``
call, and encodes the answer. Errors, deadlines and the auth token are handled once, by
``rpc``; protobuf knowledge lives in ``converters``.
"""

# The rpc methods carry the service's names, as the generated base class requires.
# ruff: noqa: N802

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from server.core.dataplane import DataPlane
from server.core.errors import PayloadTooLarge, ServerError
from server.grpc import converters
from server.grpc._generated import grpc_service_pb2 as pb
from server.grpc._generated import grpc_service_pb2_grpc as pb_grpc
from server.grpc.status import status_code_of

log = logging.getLogger("server.grpc")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
Request = TypeVar("Request")
Reply = TypeVar("Reply")
Handler = Callable[[Any, Request, grpc.aio.ServicerContext], Awaitable[Reply]]


def rpc(method: Handler[Request, Reply]) -> Handler[Request, Reply]:
    """Run ``method`` within the call's deadline; answer core errors with their status."""

    @functools.wraps(method)
    async def handler(self: Any, request: Request, context: grpc.aio.ServicerContext) -> Reply:
        try:
            return await asyncio.wait_for(method(self, request, context),
                                          context.time_remaining())
        except ServerError as error:
            await context.abort(status_code_of(error), str(error))
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                f"{method.__name__}: the deadline passed before it finished")
        except Exception as error:  # a bug of ours: say so, keep serving
            log.exception("%s failed", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL,
                                f"{method.__name__}: internal error: {type(error).__name__}: "
                                f"{error}")
        raise AssertionError("context.abort returned")  # it raises; this satisfies mypy

    return handler


def token_of(context: grpc.aio.ServicerContext) -> str | None:
    """The ``authorization`` metadata (``Bearer <token>``), as REST reads its header."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode()
    return None


def version_of(version: str) -> str | None:
    return version or None


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    # -- health -------------------------------------------------------------------------------
    @rpc
    async def ServerLive(self, request: pb.ServerLiveRequest,
                         context: grpc.aio.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self.plane.live())

    @rpc
    async def ServerReady(self, request: pb.ServerReadyRequest,
                          context: grpc.aio.ServicerContext) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.plane.ready())

    @rpc
    async def ModelReady(self, request: pb.ModelReadyRequest,
                         context: grpc.aio.ServicerContext) -> pb.ModelReadyResponse:
        ready = self.plane.model_ready(request.name, version_of(request.version))
        return pb.ModelReadyResponse(ready=ready)

    # -- metadata -----------------------------------------------------------------------------
    @rpc
    async def ServerMetadata(self, request: pb.ServerMetadataRequest,
                             context: grpc.aio.ServicerContext) -> pb.ServerMetadataResponse:
        return converters.server_metadata_to_proto(self.plane.server_metadata())

    @rpc
    async def ModelMetadata(self, request: pb.ModelMetadataRequest,
                            context: grpc.aio.ServicerContext) -> pb.ModelMetadataResponse:
        metadata = self.plane.model_metadata(request.name, version_of(request.version))
        return converters.model_metadata_to_proto(metadata)

    @rpc
    async def ModelConfig(self, request: pb.ModelConfigRequest,
                          context: grpc.aio.ServicerContext) -> pb.ModelConfigResponse:
        config = self.plane.model_config(request.name, version_of(request.version))
        return converters.model_config_to_proto(config)

    # -- inference ------------------------------------------------------------------------------
    @rpc
    async def ModelInfer(self, request: pb.ModelInferRequest,
                         context: grpc.aio.ServicerContext) -> pb.ModelInferResponse:
        return await self._infer(request)

    async def ModelStreamInfer(self, requests: AsyncIterator[pb.ModelInferRequest],
                               context: grpc.aio.ServicerContext
                               ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        """Answers each request in order; a failed request is answered with its error and
        the stream goes on (Triton's behaviour)."""
        async for request in requests:
            try:
                yield converters.stream_response_to_proto(await self._infer(request))
            except ServerError as error:
                yield converters.stream_error_to_proto(str(error))

    async def _infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        limit = self.plane.settings.max_request_bytes
        if request.ByteSize() > limit:
            raise PayloadTooLarge(f"inference request of {request.ByteSize()} bytes exceeds "
                                  f"the limit of {limit} bytes")
        decoded = converters.infer_request_from_proto(request)
        response = await self.plane.infer(request.model_name,
                                          version_of(request.model_version), decoded)
        return converters.infer_response_to_proto(response)

    # -- statistics -----------------------------------------------------------------------------
    @rpc
    async def ModelStatistics(self, request: pb.ModelStatisticsRequest,
                              context: grpc.aio.ServicerContext) -> pb.ModelStatisticsResponse:
        stats = self.plane.statistics(request.name or None, version_of(request.version))
        return converters.statistics_to_proto(stats["model_stats"])

    # -- model repository ---------------------------------------------------------------------
    @rpc
    async def RepositoryIndex(self, request: pb.RepositoryIndexRequest,
                              context: grpc.aio.ServicerContext) -> pb.RepositoryIndexResponse:
        return converters.repository_index_to_proto(self.plane.repository_index(request.ready))

    @rpc
    async def RepositoryModelLoad(self, request: pb.RepositoryModelLoadRequest,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.RepositoryModelLoadResponse:
        self.plane.check_token(token_of(context))
        parameters = converters.load_parameters_from_proto(request.parameters)
        await self.plane.load(request.model_name, parameters or None)
        return pb.RepositoryModelLoadResponse()

    @rpc
    async def RepositoryModelUnload(self, request: pb.RepositoryModelUnloadRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> pb.RepositoryModelUnloadResponse:
        self.plane.check_token(token_of(context))
        await self.plane.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse()

    # -- shared memory ------------------------------------------------------------------------
    @rpc
    async def SystemSharedMemoryStatus(self, request: pb.SystemSharedMemoryStatusRequest,
                                       context: grpc.aio.ServicerContext
                                       ) -> pb.SystemSharedMemoryStatusResponse:
        regions = self.plane.system_shared_memory_status(request.name)
        return converters.system_shared_memory_status_to_proto(regions)

    @rpc
    async def SystemSharedMemoryRegister(self, request: pb.SystemSharedMemoryRegisterRequest,
                                         context: grpc.aio.ServicerContext
                                         ) -> pb.SystemSharedMemoryRegisterResponse:
        self.plane.register_system_shared_memory(request.name, request.key, request.offset,
                                                 request.byte_size)
        return pb.SystemSharedMemoryRegisterResponse()

    @rpc
    async def SystemSharedMemoryUnregister(self,
                                           request: pb.SystemSharedMemoryUnregisterRequest,
                                           context: grpc.aio.ServicerContext
                                           ) -> pb.SystemSharedMemoryUnregisterResponse:
        self.plane.unregister_system_shared_memory(request.name)
        return pb.SystemSharedMemoryUnregisterResponse()

    @rpc
    async def CudaSharedMemoryStatus(self, request: pb.CudaSharedMemoryStatusRequest,
                                     context: grpc.aio.ServicerContext
                                     ) -> pb.CudaSharedMemoryStatusResponse:
        regions = self.plane.cuda_shared_memory_status(request.name)
        return converters.cuda_shared_memory_status_to_proto(regions)

    @rpc
    async def CudaSharedMemoryRegister(self, request: pb.CudaSharedMemoryRegisterRequest,
                                       context: grpc.aio.ServicerContext
                                       ) -> pb.CudaSharedMemoryRegisterResponse:
        self.plane.register_cuda_shared_memory(request.name, request.raw_handle,
                                               request.device_id, request.byte_size)
        return pb.CudaSharedMemoryRegisterResponse()

    @rpc
    async def CudaSharedMemoryUnregister(self, request: pb.CudaSharedMemoryUnregisterRequest,
                                         context: grpc.aio.ServicerContext
                                         ) -> pb.CudaSharedMemoryUnregisterResponse:
        self.plane.unregister_cuda_shared_memory(request.name)
        return pb.CudaSharedMemoryUnregisterResponse()


class ReadinessHealthServicer(HealthServicer):
    """``grpc.health.v1.Health`` whose answer for the server ("") and for
    ``inference.GRPCInferenceService`` follows the data plane's readiness."""

    def __init__(self, plane: DataPlane) -> None:
        super().__init__()
        self.plane = plane

    async def Check(self, request: health_pb2.HealthCheckRequest,
                    context: grpc.aio.ServicerContext) -> health_pb2.HealthCheckResponse:
        if request.service in ("", SERVICE_NAME) and not self._gracefully_shutting_down:
            serving = self.plane.ready()
            return health_pb2.HealthCheckResponse(
                status=health_pb2.HealthCheckResponse.SERVING if serving
                else health_pb2.HealthCheckResponse.NOT_SERVING)
        return await super().Check(request, context)
