"""``IEngineInspector``: what the plan says of each layer of an engine (name, type, tactic,
precision, I/O formats and shapes), as TensorRT's inspector shows it, following the
``profiling_verbosity`` the engine was built with.

>>> inspector = engine.create_engine_inspector()  # doctest: +SKIP
>>> print(inspector.get_engine_information(trt.LayerInformationFormat.JSON))  # doctest: +SKIP
"""

from __future__ import annotations

import enum
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.runtime.engine import ICudaEngine

_FORMAT_NAMES = {"FLOAT": "FP32", "HALF": "FP16", "BF16": "BF16", "INT8": "Int8",
                 "INT32": "Int32", "INT64": "Int64", "BOOL": "Bool", "FP8": "FP8",
                 "UINT8": "UInt8", "INT4": "Int4"}


class LayerInformationFormat(enum.IntEnum):
    """How the inspector prints (TensorRT's values)."""

    ONELINE = 0
    JSON = 1


def _format(dtype: str) -> str:
    return f"Row major linear {_FORMAT_NAMES.get(dtype, dtype)}"


class IEngineInspector:
    """Create with ``engine.create_engine_inspector()``."""

    def __init__(self, engine: ICudaEngine) -> None:
        self._engine = engine
        self.execution_context: Any = None

    def _verbosity(self) -> str:
        return str(self._engine._profiling_verbosity)

    def _record(self, index: int) -> dict[str, Any]:
        records = self._engine._layer_records
        if not 0 <= index < len(records):
            raise IndexError(f"layer index {index} out of range (engine has "
                             f"{len(records)} layers)")
        return records[index]

    def _detailed(self, record: dict[str, Any]) -> dict[str, Any]:
        shapes = self._shapes()

        def tensor(t: dict[str, Any]) -> dict[str, Any]:
            dims = shapes.get(t["name"], t["shape"])
            return {"Name": t["name"], "Location": "Device", "Dimensions": list(dims),
                    "Format/Datatype": _format(t["dtype"])}

        return {"Name": record["name"], "LayerType": record["type"],
                "Inputs": [tensor(t) for t in record["inputs"]],
                "Outputs": [tensor(t) for t in record["outputs"]],
                "Precision": record["precision"], "TacticName": record["tactic"],
                "StreamId": 0, "Metadata": record.get("metadata", "")}

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes resolved by the execution context, when one is set and can resolve them."""
        context = self.execution_context
        if context is None or not context.all_binding_shapes_specified:
            return {}
        try:
            return {t.name: info.shape for t, info in context._resolve().items()}
        except Exception:  # noqa: BLE001 - unresolvable shapes: show the declared ones
            return {}

    def get_layer_information(self, layer_index: int, format: LayerInformationFormat) -> str:  # noqa: A002
        record = self._record(layer_index)
        verbosity = self._verbosity()
        if verbosity == "NONE":
            return ""
        if verbosity != "DETAILED":
            name = record["name"]
            return json.dumps(name) if format == LayerInformationFormat.JSON else name
        detailed = self._detailed(record)
        if format == LayerInformationFormat.JSON:
            return json.dumps(detailed)
        ins = ", ".join(f"{t['Name']}[{_dims(t)}]" for t in detailed["Inputs"])
        outs = ", ".join(f"{t['Name']}[{_dims(t)}]" for t in detailed["Outputs"])
        return (f"{detailed['Name']} ({detailed['LayerType']}, {detailed['Precision']}, "
                f"tactic {detailed['TacticName']}): {ins} -> {outs}")

    def get_engine_information(self, format: LayerInformationFormat) -> str:  # noqa: A002
        count = len(self._engine._layer_records)
        layers = [self.get_layer_information(i, format) for i in range(count)]
        bindings = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        if format == LayerInformationFormat.JSON:
            return json.dumps({"Layers": [json.loads(x) for x in layers if x],
                               "Bindings": bindings})
        return "\n".join(x for x in layers if x)


def _dims(tensor: dict[str, Any]) -> str:
    return ",".join(str(d) for d in tensor["Dimensions"]) + ":" + tensor["Format/Datatype"]
