"""The gRPC server: ``inference.GRPCInferenceService``, ``grpc.health.v1.Health`` and server
reflection on one port, in the data plane's event loop.

>>> plane = DataPlane(ServerSettings(model_repository=Path("examples/models")))  # doctest: +SKIP
>>> await plane.start()                                                          # doctest: +SKIP
>>> server = GrpcServer(plane, port=8001)                                        # doctest: +SKIP
>>> await server.start()                                                         # doctest: +SKIP

The data plane's life cycle (``start`` / ``stop``) belongs to whoever created it: the REST
app's lifespan when both faces run in one process.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.core.dataplane import DataPlane
from server.grpc._generated import grpc_service_pb2_grpc as pb_grpc
from server.grpc.servicer import SERVICE_NAME, InferenceServicer, ReadinessHealthServicer

# Room for protobuf framing around the largest payload a request may carry.
FRAMING_BYTES = 1 << 20


class GrpcServer:
    def __init__(self, plane: DataPlane, host: str = "0.0.0.0", port: int = 8001,
                 max_receive_message_bytes: int | None = None,
                 max_send_message_bytes: int | None = None) -> None:
        """``max_receive_message_bytes`` defaults to what the largest legitimate message
        needs (an inference request or a model upload, by the plane's settings); a larger
        message is refused by gRPC with RESOURCE_EXHAUSTED before it is decoded."""
        settings = plane.settings
        largest = max(settings.max_request_bytes, settings.max_upload_bytes * 4 // 3)
        self.max_receive_message_bytes = max_receive_message_bytes or largest + FRAMING_BYTES
        self.max_send_message_bytes = max_send_message_bytes or self.max_receive_message_bytes
        self.plane = plane
        self.host = host
        self.port = port
        self.health = ReadinessHealthServicer(plane)
        self._server: grpc.aio.Server | None = None

    async def start(self) -> int:
        """Start serving; returns the port bound (useful with ``port=0``)."""
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", self.max_receive_message_bytes),
            ("grpc.max_send_message_length", self.max_send_message_bytes),
        ])
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(self.plane), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME], server)
        self.port = server.add_insecure_port(f"{self.host}:{self.port}")
        await server.start()
        self._server = server
        return self.port

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def stop(self, grace: float | None = 5.0) -> None:
        """Answer health checks NOT_SERVING, let calls in flight finish within ``grace``
        seconds."""
        await self.health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
