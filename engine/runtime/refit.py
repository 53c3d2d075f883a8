"""``Refitter``: replace the weights of an engine built with ``BuilderFlag.REFIT``, in place,
without rebuilding it.

Weights are named as TensorRT names them: by the name given with
``INetworkDefinition.set_weights_name`` (the ONNX parser names every initializer it uses as
weights after it: ``"conv.weight"``, also where a layer holds a reshaped view of it), else a
constant layer's weights by its output tensor's name, any other layer's weights by
``"<layer name>.<attribute>"`` (``"conv1.kernel"``); those last names, and a constant's layer
name, stay accepted as aliases, as is ``set_weights(layer_name, WeightsRole.KERNEL, weights)``.
Weights an importer computed from initializers (a transposed or scaled copy) are new weights,
listed under their layer's name. A refittable build keeps every
weight where the network put it (no constant folding or fusion), so each can be replaced and
``get_missing_weights`` has nothing to report beyond weights it was never given.

>>> import engine as trt
>>> trt.WeightsRole.KERNEL.value
0
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

from engine.error_recorder import ErrorCodeTRT, record_error
from engine.errors import EngineError
from engine.logger import ILogger, Severity, log
from engine.network.inference import infer_all
from engine.network.layer import LayerType, TensorInfo
from engine.network.serialize import encode_network
from engine.network.weight_names import Targets, weights_of_layers
from engine.plan.format import read_plan, write_plan
from engine.runtime.engine import ICudaEngine
from engine.types import TensorLocation, Weights


class WeightsRole(enum.IntEnum):
    """Which weights of a layer (TensorRT's members and values)."""

    KERNEL = 0
    BIAS = 1
    SHIFT = 2
    SCALE = 3
    CONSTANT = 4
    ANY = 5


_ROLE_ATTRIBUTES = {WeightsRole.KERNEL: "kernel", WeightsRole.BIAS: "bias",
                    WeightsRole.SHIFT: "shift", WeightsRole.SCALE: "scale",
                    WeightsRole.CONSTANT: "weights"}


def refittable_weights(engine: ICudaEngine) -> tuple[dict[str, Targets], dict[str, str]]:
    """The weights of ``engine`` a refit may replace, by name (see ``weights_of_layers``):
    all, or those the network marked under ``BuilderFlag.REFIT_INDIVIDUAL``."""
    found, aliases = weights_of_layers(layer for layer, _ in engine._steps)
    allowed = engine._refittable_names
    if allowed is None:
        return found, aliases
    found = {name: targets for name, targets in found.items() if name in allowed}
    return found, {alias: name for alias, name in aliases.items() if name in found}


class Refitter:
    """Updates the weights of a refittable engine (TensorRT's ``Refitter``)."""

    def __init__(self, engine: ICudaEngine, logger: ILogger) -> None:
        if not engine.refittable:
            raise EngineError("the engine is not refittable: build it with "
                              "config.set_flag(BuilderFlag.REFIT)")
        self._engine = engine
        self.logger = logger
        self._weights, self._aliases = refittable_weights(engine)
        self._pending: dict[str, Weights] = {}
        self.error_recorder: Any = getattr(engine, "error_recorder", None)
        self.weights_validation = True
        self.max_threads = 1

    def _fail(self, message: str) -> bool:
        log(self.logger, Severity.ERROR, f"Refitter: {message}")
        record_error(self.error_recorder, ErrorCodeTRT.INVALID_ARGUMENT, f"Refitter: {message}")
        return False

    def _resolve(self, name: str) -> str | None:
        if name in self._weights:
            return name
        return self._aliases.get(name)

    def set_named_weights(self, name: str, weights: Any,
                          location: TensorLocation = TensorLocation.HOST) -> bool:
        """Give new values for weights ``name``; False (error logged) when the engine has no
        weights of that name or their type or count differ."""
        key = self._resolve(name)
        if key is None:
            return self._fail(f"no refittable weights named '{name}'; names: "
                              f"{sorted(self._weights)}")
        layer, attribute = self._weights[key][0]
        old: Weights = getattr(layer, attribute)
        new = weights if isinstance(weights, Weights) else Weights(np.asarray(weights))
        if new.dtype != old.dtype or new.size != old.size:
            return self._fail(f"weights '{name}': {new.size} values of {new.dtype.name}, the "
                              f"engine has {old.size} of {old.dtype.name}")
        if self.weights_validation and new.dtype.is_float and \
                not np.isfinite(new.numpy().astype(np.float32)).all():
            return self._fail(f"weights '{name}' hold NaN or infinite values")
        self._pending[key] = Weights(np.array(new.numpy()).reshape(old.numpy().shape),
                                     dtype=new.dtype, name=old.name)
        return True

    def set_weights(self, layer_name: str, role: WeightsRole, weights: Any) -> bool:
        """Give new weights of ``role`` for layer ``layer_name``."""
        attribute = _ROLE_ATTRIBUTES.get(WeightsRole(role))
        layer = next((lay for lay, _ in self._engine._steps if lay.name == layer_name), None)
        if layer is None or attribute is None:
            return self._fail(f"no layer '{layer_name}' with {WeightsRole(role).name} weights")
        value = getattr(layer, attribute, None)
        if layer.layer_type == LayerType.CONSTANT:
            name = layer._outputs[0].name
        elif isinstance(value, Weights) and value.name is not None:
            name = value.name
        else:
            name = f"{layer_name}.{attribute}"
        return self.set_named_weights(name, weights)

    def get_named_weights(self, name: str) -> Weights | None:
        key = self._resolve(name)
        if key is None:
            return None
        if key in self._pending:
            return self._pending[key]
        layer, attribute = self._weights[key][0]
        return getattr(layer, attribute)  # type: ignore[no-any-return]

    def get_all_weights(self) -> list[str]:
        return sorted(self._weights)

    def get_missing_weights(self) -> list[str]:
        """Weights that must still be given before ``refit_cuda_engine``: those a
        weight-stripped plan left out and not given yet (weights of refittable engines are
        never combined, so no other weights depend on one that changes)."""
        return sorted(set(self._engine._stripped) - set(self._pending))

    def refit_cuda_engine(self) -> bool:
        """Apply the new weights to the engine (its serialized plan included); False (error
        logged) while weights a stripped plan left out are still missing."""
        engine = self._engine
        missing = self.get_missing_weights()
        if missing:
            return self._fail(f"{len(missing)} weights left out of the plan are not given yet: "
                              f"{missing[:10]}{' ...' if len(missing) > 10 else ''}")
        for key, weights in self._pending.items():
            for layer, attribute in self._weights[key]:
                shape = getattr(layer, attribute).numpy().shape
                setattr(layer, attribute, Weights(weights.numpy().reshape(shape),
                                                  dtype=weights.dtype, name=weights.name))
        self._pending.clear()
        order = [layer for layer, _ in engine._steps]
        contents = read_plan(engine._plan)
        record, arrays = encode_network(engine._network, order)
        header = {k: v for k, v in contents.header.items() if k != "arrays"}
        header["network"] = record
        engine._plan = write_plan(header, [np.asarray(a) for a in arrays])
        engine._declared = infer_all(order, {t: TensorInfo(tuple(t.shape), t.dtype)
                                             for t in engine._network._inputs})
        engine._stripped = set()
        if engine._backend == "gpu":
            from engine.runtime.device_gpu import upload_engine_weights

            engine._device_weight_bytes = upload_engine_weights(engine)  # a new generation
        else:  # contexts resolve shapes and small constant values again
            engine._weights_generation = getattr(engine, "_weights_generation", 0) + 1
        return True

    def refit_cuda_engine_async(self, stream_handle: int) -> bool:
        return self.refit_cuda_engine()

    def __enter__(self) -> Refitter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
