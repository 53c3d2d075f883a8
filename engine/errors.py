"""Errors raised by the engine.

The tree::

    EngineError                      every error the engine raises on purpose
    ├── NetworkError (ValueError)    an invalid network: the layer's name and the reason
    ├── BuildError                   the builder could not make a plan
    ├── PlanError (ValueError)       a plan that is truncated, corrupted, foreign, of another
    │                                format version, or built for another target
    ├── ExecutionError               a context could not run (shapes, addresses)
    └── UnsupportedError             a feature that exists in TensorRT's API but is not
                                     implemented here; raised, never silently ignored

Internal invariants use ``assert``; anything a user can trigger raises one of these.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class NetworkError(EngineError, ValueError):
    """The network definition is invalid; the message names the layer and the reason."""


class BuildError(EngineError):
    """The builder could not produce a plan from the network and configuration."""


class PlanError(EngineError, ValueError):
    """A serialized plan was refused; the message says which check failed."""


class ExecutionError(EngineError):
    """An execution context could not run with the shapes or addresses it was given."""


class UnsupportedError(EngineError, NotImplementedError):
    """A TensorRT feature this engine does not implement (yet)."""
