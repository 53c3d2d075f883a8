"""The server's behaviour, shared by every front end: nothing here imports FastAPI or grpc."""

from server.core.dataplane import DataPlane, ServerSettings

__all__ = ["DataPlane", "ServerSettings"]
