"""What a pass may need to know besides the network: the target backend (a fusion fires only
where the backend has a tactic for the fused layer) and the builder configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import NetworkError
from engine.kernels.registry import tactics_for
from engine.network.layer import ILayer, LayerType


@dataclass
class PassContext:
    """The target backend (``"cpu"`` or ``"gpu"``), the builder config (None in unit tests)
    and the logger."""

    backend: str = "cpu"
    config: Any = None
    logger: Any = field(default=None, repr=False)

    def has_tactics(self, layer_type: LayerType) -> bool:
        return bool(tactics_for(self.backend, layer_type))

    def accepts(self, layer: ILayer) -> bool:
        """Whether some tactic of the backend accepts ``layer`` with its inputs as they are
        inferred now (``layer`` need not be in the network yet)."""
        network = layer._network
        try:
            infos = [None if t is None else network._info(t) for t in layer._inputs]
            layer.infer(infos)
        except NetworkError:
            return False
        return any(t.accepts(layer, infos) and self._enabled(t.source)
                   for t in tactics_for(self.backend, layer.layer_type))

    def _enabled(self, source: str | None) -> bool:
        """The config's tactic sources: a fusion only some disabled library runs is not made."""
        return self.config is None or bool(self.config.tactic_source_enabled(source))
