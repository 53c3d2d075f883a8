"""The ONNX parser: ``OnnxParser`` turns an ONNX model into a network definition.

Importers live in ``engine/onnx/importers/``, one module per op family, each registered where
it is defined with ``@importer("Conv", since=11)``.
"""

from engine.onnx.errors import ErrorCode, OnnxParserFlag, ParserError
from engine.onnx.parser import OnnxParser
from engine.onnx.refitter import OnnxParserRefitter

__all__ = ["ErrorCode", "OnnxParser", "OnnxParserFlag", "OnnxParserRefitter", "ParserError"]
