"""``OnnxParserRefitter``: refit an engine built from an ONNX model with the weights of another
ONNX model of the same architecture (TensorRT's ``nvonnxparser::IParserRefitter``).

The new model is parsed the way the engine's model was; every refittable weight of the engine
is then taken from the weights of the same name in the parsed network: the ONNX initializer's
name, or for weights an importer computed (not an initializer or a reshaped view of one), the
layer's name, which is the same for models of the same architecture. The weights are handed to the
``Refitter``; ``refitter.refit_cuda_engine()`` applies them.

>>> import engine as trt
>>> trt.OnnxParserRefitter.__name__
'OnnxParserRefitter'
"""

from __future__ import annotations

from engine.logger import ILogger, Severity, log
from engine.network.weight_names import weights_of_layers
from engine.onnx.errors import ErrorCode, ParserError
from engine.onnx.parser import OnnxParser
from engine.runtime.refit import Refitter


class OnnxParserRefitter:
    """Gives a ``Refitter`` the weights of an ONNX model."""

    def __init__(self, refitter: Refitter, logger: ILogger | None) -> None:
        self.refitter = refitter
        self.logger = logger
        self._errors: list[ParserError] = []

    # -- errors -------------------------------------------------------------------------------
    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> ParserError | None:
        return self._errors[index] if 0 <= index < len(self._errors) else None

    def clear_errors(self) -> None:
        self._errors.clear()

    def _record(self, code: ErrorCode, desc: str, tensor: str | None = None) -> None:
        error = ParserError(code, desc, func="refit_from_bytes", tensor=tensor)
        self._errors.append(error)
        log(self.logger, Severity.ERROR, f"ONNX refitter: {error}")

    # -- refitting ----------------------------------------------------------------------------
    def refit_from_file(self, path: str) -> bool:
        """Give the refitter the weights of the ONNX model at ``path``."""
        self._errors.clear()
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            self._record(ErrorCode.MODEL_DESERIALIZE_FAILED, f"cannot read '{path}': {exc}")
            return False
        return self._refit(data, path)

    def refit_from_bytes(self, model: bytes, path: str | None = None) -> bool:
        """Give the refitter the weights of serialized ONNX ``model``; False when the model
        does not parse or its weights do not match the engine's (reasons in ``get_error``).
        ``path`` locates external weight files."""
        self._errors.clear()
        return self._refit(model, path)

    def _refit(self, model: bytes, path: str | None) -> bool:
        from engine.network.definition import INetworkDefinition

        engine_network = self.refitter._engine._network
        network = INetworkDefinition(engine_network.flags)
        parser = OnnxParser(network, None)
        if not parser.parse(model, path):
            for index in range(parser.num_errors):
                error = parser.get_error(index)
                if error is not None:
                    self._errors.append(error)
            return False
        found, aliases = weights_of_layers(network._layers)
        for name in self.refitter.get_all_weights():
            sources = found.get(name) or found.get(aliases.get(name, ""))
            if not sources:
                self._record(ErrorCode.REFIT_FAILED, f"the model has no weights '{name}' (is "
                             f"it the engine's architecture?)", tensor=name)
                continue
            layer, attribute = sources[0]
            if not self.refitter.set_named_weights(name, getattr(layer, attribute)):
                self._record(ErrorCode.REFIT_FAILED, f"weights '{name}' do not match the "
                             f"engine's (type or count)", tensor=name)
        return not self._errors
