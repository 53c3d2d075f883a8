"""The KServe v2 REST face (FastAPI): decode, one core call, encode."""

from server.rest.app import create_app

__all__ = ["create_app"]
