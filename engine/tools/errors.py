"""Errors of the command-line tools.

The tree::

    ToolError          a user error: bad option, missing file, refused feature; the tool prints
                       its message as one line and exits with ``exit_code``

Errors of the library itself (``engine.EngineError``) are caught by each tool's ``main`` and
reported the same way.
"""

from __future__ import annotations

# Exit codes shared by the tools: 1 when the run failed, 2 when the command line is wrong.
EXIT_FAILURE = 1
EXIT_USAGE = 2


class ToolError(Exception):
    """A problem the user can fix; ``str(error)`` is the one line the tool prints."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(ToolError):
    """A malformed or contradictory command line."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)
