"""``ICudaEngine``: an immutable, shareable engine made from a plan.

The name is TensorRT's; the engine may target the GPU or the CPU (the plan says which).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import BuildError, ExecutionError, NetworkError, PlanError
from engine.kernels import choices
from engine.kernels.backends import gpu_available, load_backend
from engine.kernels.registry import KernelFn, get_tactic
from engine.network.inference import infer_all
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.serialize import StrippedWeights, decode_network
from engine.network.tensor import ITensor
from engine.network.weight_names import weights_of_layers
from engine.plan.compatibility import check_hardware_compatibility, check_library_version
from engine.plan.format import PlanContents
from engine.types import DataType, Dims, TensorFormat, TensorIOMode, TensorLocation, nptype


def _check_io_entry(entry: dict[str, Any]) -> None:
    """Every field of an I/O table entry that the engine's queries read (a KeyError, or a
    PlanError, for one that is missing or wrong: the header is malformed)."""
    TensorIOMode[entry["mode"]]
    DataType[entry["dtype"]]
    TensorLocation[entry["location"]]
    shape = entry["shape"]
    if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
        raise PlanError(f"malformed plan: I/O tensor '{entry['name']}' has shape {shape!r}")


# TensorRT's words for the element types in format descriptions.
_FORMAT_TYPES = {"FLOAT": "FP32", "HALF": "FP16", "BF16": "BF16", "INT8": "Int8",
                 "INT32": "Int32", "INT64": "Int64", "BOOL": "Bool", "UINT8": "UInt8",
                 "FP8": "FP8", "INT4": "Int4"}


def check_target(target: Any) -> str:
    """The backend a plan's target names, if this machine can run it; else ``PlanError``."""
    if not isinstance(target, dict) or target.get("backend") not in ("cpu", "gpu"):
        raise PlanError(f"malformed plan: unknown target {target!r}")
    if target["backend"] == "gpu":
        if not gpu_available():
            raise PlanError(f"plan was built for the GPU (compute capability "
                            f"{target.get('compute_capability')}, "
                            f"{target.get('device_name')}); no CUDA device is usable here")
        from engine.kernels.gpu.device import describe_device  # type: ignore[import-not-found]

        check_hardware_compatibility(target, describe_device())
    return str(target["backend"])


def stripped_weight_names(layers: Any) -> set[str]:
    """The refit names of the weights a plan left out (``StrippedWeights``)."""
    found, _ = weights_of_layers(layers)
    return {name for name, targets in found.items()
            if any(isinstance(getattr(layer, attribute), StrippedWeights)
                   for layer, attribute in targets)}


class ICudaEngine:
    """An engine: I/O tensor queries, profiles, and execution contexts."""

    def __init__(self, contents: PlanContents, plan: Any) -> None:
        header = contents.header
        try:
            self._backend = check_target(header.get("target"))
            load_backend(self._backend)
            check_library_version(str(header["library_version"]),
                                  dict(header.get("compatibility") or {}))
            network, _ = decode_network(header["network"], contents.arrays)
            for layer in network._layers:  # plugins come from registered creators only
                if layer.layer_type == LayerType.PLUGIN_V3:
                    layer.attach_runtime_plugin()  # type: ignore[attr-defined]
            tactic_names = list(header["tactics"])
            profile_tactics = [list(names) for names in header.get("profile_tactics") or []]
            if any(len(names) != len(network._layers) for names in profile_tactics):
                raise PlanError("malformed plan: a profile's tactic list does not match the "
                                "layers")
            if len(tactic_names) != len(network._layers):
                raise PlanError(f"malformed plan: {len(tactic_names)} tactics for "
                                f"{len(network._layers)} layers")
            try:
                kernels = [get_tactic(self._backend, layer.layer_type, str(name)).run
                           for layer, name in zip(network._layers, tactic_names)]
                self._profile_kernels = [
                    [get_tactic(self._backend, layer.layer_type, str(name)).run
                     for layer, name in zip(network._layers, names)]
                    for names in profile_tactics[1:]]
            except BuildError as exc:
                raise PlanError(f"plan names a tactic this library lacks: {exc}") from None
            self._io: list[dict[str, Any]] = list(header["io"])
            self._io_by_name = {str(e["name"]): e for e in self._io}
            names = [t.name for t in network._inputs + network._outputs]
            if sorted(self._io_by_name) != sorted(names) or len(names) != len(self._io):
                raise PlanError("malformed plan: the I/O table does not match the network")
            for entry in self._io:
                _check_io_entry(entry)
            self._profiles: list[dict[str, list[list[int]]]] = list(header["profiles"])
            self._profile_shape_values: list[dict[str, list[list[int]]]] = list(
                header.get("profile_shape_values") or [])
            self._compatibility = dict(header.get("compatibility") or {})
            refittable = self._compatibility.get("refittable_weights")
            if refittable is not None and not (isinstance(refittable, list) and
                                               all(isinstance(n, str) for n in refittable)):
                raise PlanError(f"malformed plan header: refittable_weights {refittable!r}")
            # REFIT_INDIVIDUAL: the weights a refit may replace; None: all of them
            self._refittable_names: set[str] | None = \
                None if refittable is None else set(refittable)
            self._arena_bytes = int(header["memory"]["arena_bytes"])
            self._library_version = str(header["library_version"])
            self._tactic_names = [str(n) for n in tactic_names]
            self._flags = int(header["builder"]["flags"])
            self._target = dict(header["target"])
            self._layer_records = list(header.get("layers", []))
            self._profiling_verbosity = str(header["builder"]["profiling_verbosity"])
            debug_names = [str(n) for n in header.get("debug_tensors", [])]
            choices.restore(header.get("kernel_choices") or {})
        except PlanError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanError(f"malformed plan header: {type(exc).__name__}: {exc}") from None
        self._network = network
        self._steps: list[tuple[ILayer, KernelFn]] = list(zip(network._layers, kernels))
        # Steps per optimization profile (each profile's tactics); profile 0's are _steps.
        self._profile_steps = [self._steps] + [list(zip(network._layers, k))
                                               for k in self._profile_kernels]
        self._tensors = {t.name: t for t in network._inputs + network._outputs}
        produced = {t.name: t for layer in network._layers for t in layer._outputs}
        missing = [n for n in debug_names if n not in produced]
        if missing:
            raise PlanError(f"malformed plan: debug tensors {missing} are not in the network")
        # mark_debug's tensors, by name: contexts hand them to their IDebugListener
        self._debug_tensors = {n: produced[n] for n in debug_names}
        try:
            self._declared = infer_all(network._layers, {
                t: TensorInfo(tuple(t.shape), t.dtype) for t in network._inputs})
        except NetworkError as exc:
            raise PlanError(f"malformed plan: {exc}") from None
        self._plan = plan
        self._logger: Any = None
        self.error_recorder: Any = None  # an IErrorRecorder; contexts and refitters inherit it
        self._device_weight_bytes = 0
        self._weights_generation = 0  # bumped when the weights change (an upload, a refit)
        # Weights left out of the plan (STRIP_PLAN, EXCLUDE_WEIGHTS), by refit name: the
        # engine runs once a refit has given them all (and uploads them then).
        self._stripped = stripped_weight_names(layer for layer, _ in self._steps)
        if self._backend == "gpu" and not self._stripped:
            from engine.runtime.device_gpu import upload_engine_weights

            self._device_weight_bytes = upload_engine_weights(self)
        self.name = network.name

    # -- I/O tensors ------------------------------------------------------------------------
    @property
    def num_io_tensors(self) -> int:
        return len(self._io)

    def get_tensor_name(self, index: int) -> str:
        if not 0 <= index < len(self._io):
            raise IndexError(f"I/O tensor index {index} out of range (0..{len(self._io) - 1})")
        return str(self._io[index]["name"])

    def _entry(self, name: str) -> dict[str, Any] | None:
        return self._io_by_name.get(name)

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        entry = self._entry(name)
        return TensorIOMode.NONE if entry is None else TensorIOMode[entry["mode"]]

    def get_tensor_shape(self, name: str) -> Dims:
        entry = self._entry(name)
        return Dims(()) if entry is None else Dims(entry["shape"])

    def get_tensor_dtype(self, name: str) -> DataType:
        entry = self._entry(name)
        return DataType.FLOAT if entry is None else DataType[entry["dtype"]]

    def get_tensor_location(self, name: str) -> TensorLocation:
        entry = self._entry(name)
        return TensorLocation.DEVICE if entry is None else TensorLocation[entry["location"]]

    def get_tensor_format(self, name: str) -> TensorFormat:
        return TensorFormat.LINEAR

    def get_tensor_format_desc(self, name: str) -> str:
        """The I/O tensor's layout in words, as TensorRT words it ("" for another name)."""
        entry = self._entry(name)
        if entry is None:
            return ""
        return f"Row major linear {_FORMAT_TYPES.get(entry['dtype'], entry['dtype'])} format " \
               f"(kLINEAR)"

    def get_tensor_bytes_per_component(self, name: str) -> int:
        """Bytes of one element of the I/O tensor (its formats are not vectorized); -1 for
        another name. INT4, two elements a byte, counts 1."""
        entry = self._entry(name)
        if entry is None:
            return -1
        return max(1, int(np.dtype(nptype(DataType[entry["dtype"]])).itemsize))

    def get_tensor_components_per_element(self, name: str) -> int:
        """1 (linear formats); -1 for a name that is no I/O tensor."""
        return -1 if self._entry(name) is None else 1

    def get_tensor_vectorized_dim(self, name: str) -> int:
        """-1: no I/O tensor format of this engine is vectorized."""
        return -1

    def is_shape_inference_io(self, name: str) -> bool:
        tensor = self._tensors.get(name)
        return tensor is not None and tensor.is_shape_tensor

    # -- profiles ---------------------------------------------------------------------------
    @property
    def num_optimization_profiles(self) -> int:
        return max(1, len(self._profiles))

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:
        """[min, opt, max] of input ``name`` in profile ``profile_index``."""
        if self.get_tensor_mode(name) != TensorIOMode.INPUT:
            raise ValueError(f"'{name}' is not an input tensor of this engine")
        if not 0 <= profile_index < self.num_optimization_profiles:
            raise IndexError(f"profile index {profile_index} out of range "
                             f"(engine has {self.num_optimization_profiles})")
        if not self._profiles:
            return [self.get_tensor_shape(name)] * 3
        return [Dims(s) for s in self._profiles[profile_index][name]]

    def get_tensor_profile_values(self, profile_index: Any, name: Any) -> list[list[int]]:
        """[min, opt, max] values of shape input ``name`` in profile ``profile_index``."""
        if isinstance(profile_index, str):  # accept (name, profile_index) too
            profile_index, name = name, profile_index
        if not 0 <= profile_index < self.num_optimization_profiles:
            raise IndexError(f"profile index {profile_index} out of range "
                             f"(engine has {self.num_optimization_profiles})")
        values = self._profile_shape_values[profile_index] if self._profile_shape_values else {}
        if name not in values:
            raise ValueError(f"'{name}' is not a shape input of this engine")
        return [list(v) for v in values[name]]

    # -- compatibility ------------------------------------------------------------------------
    @property
    def refittable(self) -> bool:
        return bool(self._compatibility.get("refittable"))

    @property
    def hardware_compatibility_level(self) -> Any:
        from engine.plan.compatibility import HardwareCompatibilityLevel

        return HardwareCompatibilityLevel[
            str(self._compatibility.get("hardware_compatibility_level", "NONE"))]

    # -- layers and memory ----------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self._steps)

    @property
    def device_memory_size_v2(self) -> int:
        """Bytes of activation memory one execution context needs (from the memory plan)."""
        return self._arena_bytes

    @property
    def device_memory_size(self) -> int:
        return self._arena_bytes

    def get_device_memory_size_for_profile(self, profile_index: int) -> int:
        """Activation bytes a context needs with profile ``profile_index`` (the memory plan
        is sized for every profile's largest shapes, so each profile needs the same)."""
        if not 0 <= profile_index < self.num_optimization_profiles:
            raise IndexError(f"profile index {profile_index} out of range "
                             f"(engine has {self.num_optimization_profiles})")
        return self._arena_bytes

    def get_device_memory_size_for_profile_v2(self, profile_index: int) -> int:
        return self.get_device_memory_size_for_profile(profile_index)

    @property
    def target(self) -> dict[str, Any]:
        """The target the plan was built for (an extension: backend, device or machine)."""
        return dict(self._target)

    @property
    def layer_tactics(self) -> list[tuple[str, str, str]]:
        """(layer name, layer type, tactic) for each layer, in execution order (extension)."""
        return [(layer.name, layer.layer_type.name, name)
                for (layer, _), name in zip(self._steps, self._tactic_names)]

    def serialize(self) -> Any:
        from engine.builder.builder import IHostMemory

        return IHostMemory(memoryview(self._plan).cast("B"))

    def create_serialization_config(self) -> Any:
        """An ``ISerializationConfig`` for ``serialize_with_config``: INCLUDE_REFIT set where
        the engine is refittable, EXCLUDE_WEIGHTS where its weights were stripped."""
        from engine.runtime.serialization import ISerializationConfig, SerializationFlag

        config = ISerializationConfig()
        if self.refittable:
            config.set_flag(SerializationFlag.INCLUDE_REFIT)
        if self._stripped:
            config.set_flag(SerializationFlag.EXCLUDE_WEIGHTS)
        return config

    def serialize_with_config(self, config: Any) -> Any:
        """The plan as ``config`` asks: without the refittable weights (EXCLUDE_WEIGHTS; the
        engine must be refittable and stay so, INCLUDE_REFIT), or not refittable any more
        (INCLUDE_REFIT cleared); None, with the reason logged, where that cannot be."""
        from engine.runtime.serialization import serialize_with_config

        return serialize_with_config(self, config)

    @property
    def _allows_tf32(self) -> bool:
        """Whether the plan was built with BuilderFlag.TF32 (its FP32 products may use TF32)."""
        from engine.builder.config import BuilderFlag

        return bool(self._flags >> BuilderFlag.TF32 & 1)

    def _require_weights(self) -> None:
        """Refuse to run while weights are missing from a weight-stripped plan."""
        if self._stripped:
            names = sorted(self._stripped)
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5
                                            else "")
            raise ExecutionError(
                f"the engine's plan has no weights (built with BuilderFlag.STRIP_PLAN or "
                f"serialized with SerializationFlag.EXCLUDE_WEIGHTS): refit them first "
                f"(Refitter.set_named_weights or OnnxParserRefitter.refit_from_file, then "
                f"refit_cuda_engine); missing: {shown}")

    def create_engine_inspector(self) -> Any:
        """An ``IEngineInspector`` showing what the plan says of each layer."""
        from engine.runtime.inspector import IEngineInspector

        return IEngineInspector(self)

    def create_execution_context(self, strategy: Any = None) -> Any:
        from engine.runtime.context import IExecutionContext

        return IExecutionContext(self)

    def __enter__(self) -> ICudaEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _input_tensors(self) -> list[ITensor]:
        return list(self._network._inputs)

    def _output_tensors(self) -> list[ITensor]:
        return list(self._network._outputs)
