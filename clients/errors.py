"""The client's one error: what the server (or the connection) answered, with its status.

    InferenceServerError     status: HTTP code ("404") or gRPC code name ("NOT_FOUND")
"""

from __future__ import annotations


class InferenceServerError(Exception):
    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"[{self.status}] {self.message}"
