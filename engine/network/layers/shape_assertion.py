"""``IAssertionLayer``: stops a run whose condition (a BOOL shape tensor) holds a false."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


class IAssertionLayer(ILayer):
    """Fails the build when ``condition`` is known to hold a false, else fails the run (an
    ``ExecutionError`` with ``message``) when it does. It has no outputs, and the builder keeps
    it although no network output depends on it."""

    type = LayerType.ASSERTION
    _attributes: ClassVar[tuple[str, ...]] = ("message",)
    # A known false condition is reported by infer, with the message, not by running it.
    _evaluable = False

    def __init__(self, network: INetworkDefinition, condition: ITensor, message: str
                 ) -> None:
        super().__init__(network, [condition], num_outputs=0)
        self.message = message

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, str(value) if key == "message" else value)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        (condition,) = self.require_inputs(inputs, 1)
        if condition.dtype != DataType.BOOL:
            self.fail(f"the condition must be BOOL, got {condition.dtype.name}")
        if condition.rank > 1:
            self.fail(f"the condition must be a scalar or 1-D, got shape {condition.shape}")
        if condition.value is not None and not condition.value.all():
            self.fail(f"assertion failed: {self.message}")
        return []
