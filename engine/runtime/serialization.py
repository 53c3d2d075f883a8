"""``ISerializationConfig``: how ``ICudaEngine.serialize_with_config`` writes a plan
(TensorRT 10's serialization flags).

- ``EXCLUDE_WEIGHTS``: leave the refittable weights out (a weight-stripped plan, as
  ``BuilderFlag.STRIP_PLAN`` builds one): the engine loaded from it runs once a refit has
  given every weight back (``Refitter.get_missing_weights`` lists them;
  ``OnnxParserRefitter.refit_from_file`` gives them from the model).
- ``INCLUDE_REFIT``: the plan stays refittable (set by default for a refittable engine);
  cleared, the plan loads as a non-refittable engine.
- ``EXCLUDE_LEAN_RUNTIME``: accepted; plans never embed a runtime here.

>>> import engine as trt
>>> trt.SerializationFlag.EXCLUDE_WEIGHTS.value
0
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.error_recorder import ErrorCodeTRT, record_error
from engine.logger import Severity, log
from engine.network.serialize import encode_network
from engine.network.weight_names import strip_predicate
from engine.plan.format import read_plan, write_plan

if TYPE_CHECKING:
    from engine.runtime.engine import ICudaEngine


class SerializationFlag(enum.IntEnum):
    """TensorRT's members and values."""

    EXCLUDE_WEIGHTS = 0
    EXCLUDE_LEAN_RUNTIME = 1
    INCLUDE_REFIT = 2


class ISerializationConfig:
    """Flags for ``serialize_with_config``; make one with
    ``engine.create_serialization_config()``."""

    def __init__(self) -> None:
        self.flags = 0

    def set_flag(self, flag: SerializationFlag) -> bool:
        self.flags |= 1 << int(SerializationFlag(flag))
        return True

    def clear_flag(self, flag: SerializationFlag) -> bool:
        self.flags &= ~(1 << int(SerializationFlag(flag)))
        return True

    def get_flag(self, flag: SerializationFlag) -> bool:
        return bool(self.flags >> int(SerializationFlag(flag)) & 1)


def serialize_with_config(engine: ICudaEngine, config: ISerializationConfig) -> Any:
    from engine.builder.builder import IHostMemory

    exclude = config.get_flag(SerializationFlag.EXCLUDE_WEIGHTS)
    keep_refit = config.get_flag(SerializationFlag.INCLUDE_REFIT)
    if exclude and not (engine.refittable and keep_refit):
        why = "the engine is not refittable (build it with BuilderFlag.REFIT or " \
              "REFIT_IDENTICAL)" if not engine.refittable else "INCLUDE_REFIT is cleared"
        message = f"serialize_with_config: EXCLUDE_WEIGHTS leaves weights that only a refit " \
                  f"can give back, but {why}"
        log(engine._logger, Severity.ERROR, message)
        record_error(engine.error_recorder, ErrorCodeTRT.INVALID_CONFIG, message)
        return None
    contents = read_plan(engine._plan)
    header = {k: v for k, v in contents.header.items() if k != "arrays"}
    if exclude:
        order = [layer for layer, _ in engine._steps]
        header["network"], arrays = encode_network(
            engine._network, order, strip_weights=strip_predicate(order,
                                                                  engine._refittable_names))
    else:
        arrays = [np.asarray(a) for a in contents.arrays]
    if engine.refittable and not keep_refit:
        header["compatibility"] = dict(header.get("compatibility") or {}, refittable=False)
    return IHostMemory(memoryview(write_plan(header, arrays)).cast("B"))
