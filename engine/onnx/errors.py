"""Parser errors: TensorRT's ``ErrorCode`` and ``ParserError``, and the exception importers
raise.

The tree::

    ImportFailure (Exception)       raised inside the parser by an importer or a graph check;
                                    carries an ErrorCode and becomes one ParserError

``OnnxParser.parse`` never lets an exception escape for a bad model: each failure becomes a
``ParserError`` (``parser.get_error(i)``) naming the node, and ``parse`` returns False.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.IntEnum):
    """What went wrong (TensorRT's ``nvonnxparser::ErrorCode``, same members and values)."""

    SUCCESS = 0
    INTERNAL_ERROR = 1
    MEM_ALLOC_FAILED = 2
    MODEL_DESERIALIZE_FAILED = 3
    INVALID_VALUE = 4
    INVALID_GRAPH = 5
    INVALID_NODE = 6
    UNSUPPORTED_GRAPH = 7
    UNSUPPORTED_NODE = 8
    UNSUPPORTED_NODE_ATTR = 9
    UNSUPPORTED_NODE_INPUT = 10
    UNSUPPORTED_NODE_DATATYPE = 11
    UNSUPPORTED_NODE_DYNAMIC = 12
    UNSUPPORTED_NODE_SHAPE = 13
    REFIT_FAILED = 14


class OnnxParserFlag(enum.IntEnum):
    """Parser flags (TensorRT's ``OnnxParserFlag``), bit positions in ``parser.flags``.

    NATIVE_INSTANCENORM: import InstanceNormalization as a normalization layer (the only way
    this parser imports it; the flag is kept for TensorRT's API and is on by default, as in
    TensorRT 10).
    """

    NATIVE_INSTANCENORM = 0


class ImportFailure(Exception):  # noqa: N818 - caught inside the parser, never raised out
    """An importer or a graph check refusing something; becomes one ``ParserError``.

    ``tensor`` names an ONNX tensor whose value had to be known at build time, when that was
    the reason (callers may then supply it as an initializer).
    """

    def __init__(self, code: ErrorCode, message: str, *, tensor: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.tensor = tensor


class ParserError:
    """One error of the last ``parse`` (TensorRT's ``IParserError``).

    ``node()`` is the index of the failing node in the graph (-1 for graph-level errors);
    ``file()``, ``line()`` and ``func()`` say where in the parser the error was raised.
    """

    def __init__(self, code: ErrorCode, desc: str, *, node: int = -1, node_name: str = "",
                 node_operator: str = "", file: str = "", line: int = 0, func: str = "",
                 tensor: str | None = None) -> None:
        self._code = ErrorCode(code)
        self._desc = desc
        self._node = node
        self._node_name = node_name
        self._node_operator = node_operator
        self._file = file
        self._line = line
        self._func = func
        self.tensor = tensor

    def code(self) -> ErrorCode:
        return self._code

    def desc(self) -> str:
        return self._desc

    def node(self) -> int:
        return self._node

    def node_name(self) -> str:
        return self._node_name

    def node_operator(self) -> str:
        return self._node_operator

    def file(self) -> str:
        return self._file

    def line(self) -> int:
        return self._line

    def func(self) -> str:
        return self._func

    def local_function_stack(self) -> list[str]:
        return []

    def local_function_stack_size(self) -> int:
        return 0

    def __str__(self) -> str:
        where = f"node {self._node} ('{self._node_name}', {self._node_operator}): " \
            if self._node >= 0 else ""
        return f"{self._code.name}: {where}{self._desc}"

    def __repr__(self) -> str:
        return f"<ParserError {self}>"
