"""Model configurations: Triton's ``config.pbtxt`` / ``config.json`` subset, validated once.

Both files are read into Triton's JSON shape, then into a frozen ``ModelConfig``. Builder
settings for ONNX models ride in ``parameters`` (Triton's own escape hatch), so a config stays
readable by Triton's tools::

    parameters { key: "precision" value { string_value: "fp16" } }
    parameters { key: "workspace_bytes" value { string_value: "1073741824" } }
    parameters { key: "profile.x" value { string_value: "1x3:4x3:8x3" } }   # min:opt:max

An ensemble (``platform: "ensemble"``) declares its inputs and outputs and an
``ensemble_scheduling`` of steps (``server.core.ensemble_graph``); it has no model file and no
instance groups of its own.

``model_warmup`` samples (``server.core.warmup``) run on every execution context when a model
loads; ``response_cache { enable: true }`` lets the model's responses be kept in the server's
response cache (``server.core.response_cache``) when the server has one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from server.core.datatypes import datatype_from_config, datatype_to_config
from server.core.ensemble_graph import EnsembleScheduling, EnsembleStep, check_data_flow
from server.core.errors import InvalidArgument
from server.core.pbtxt import MapOf, Schema, read_pbtxt
from server.core.warmup import (
    SOURCES,
    WARMUP_INPUT_SCHEMA,
    WarmupInput,
    WarmupSample,
    check_data_file,
    check_warmup,
)

_TENSOR: Schema = {"name": str, "data_type": "enum", "dims": [int]}
SCHEMA: Schema = {
    "name": str,
    "platform": str,
    "backend": str,
    "max_batch_size": int,
    "version_policy": {"latest": {"num_versions": int}, "all": {},
                       "specific": {"versions": [int]}},
    "input": [_TENSOR],
    "output": [_TENSOR],
    "instance_group": [{"name": str, "kind": "enum", "count": int, "gpus": [int]}],
    "dynamic_batching": {"preferred_batch_size": [int], "max_queue_delay_microseconds": int,
                         "preserve_ordering": bool,
                         "default_queue_policy": {"max_queue_size": int}},
    "parameters": "map",
    "ensemble_scheduling": {"step": [{"model_name": str, "model_version": int,
                                      "input_map": "str_map", "output_map": "str_map"}]},
    "model_warmup": [{"name": str, "batch_size": int, "count": int,
                      "inputs": MapOf(WARMUP_INPUT_SCHEMA)}],
    "response_cache": {"enable": bool},
}

PLATFORMS = {"onnxruntime_onnx": "model.onnx", "tensorrt_plan": "model.plan"}
BACKENDS = {"onnxruntime": "onnxruntime_onnx", "tensorrt": "tensorrt_plan"}
ENSEMBLE = "ensemble"  # the platform of a model made of other models' steps
KINDS = ("KIND_AUTO", "KIND_CPU", "KIND_GPU")
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class TensorConfig:
    name: str
    datatype: str  # KServe name: FP32, BYTES, ...
    dims: tuple[int, ...]  # without the batch dimension when max_batch_size > 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "data_type": datatype_to_config(self.datatype),
                "dims": list(self.dims)}


@dataclass(frozen=True)
class InstanceGroup:
    name: str
    kind: str = "KIND_AUTO"
    count: int = 1
    gpus: tuple[int, ...] = ()


@dataclass(frozen=True)
class DynamicBatching:
    preferred_batch_size: tuple[int, ...] = ()
    max_queue_delay_microseconds: int = 0


@dataclass(frozen=True)
class VersionPolicy:
    """``latest`` (the newest ``num_versions``), ``all``, or ``specific`` (``versions``)."""

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int]) -> list[int]:
        ordered = sorted(available)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[-self.num_versions:]

    def to_json(self) -> dict[str, Any]:
        if self.kind == "all":
            return {"all": {}}
        if self.kind == "specific":
            return {"specific": {"versions": list(self.versions)}}
        return {"latest": {"num_versions": self.num_versions}}


@dataclass(frozen=True)
class ModelConfig:
    name: str
    platform: str = ""
    max_batch_size: int = 0
    inputs: tuple[TensorConfig, ...] = ()
    outputs: tuple[TensorConfig, ...] = ()
    instance_groups: tuple[InstanceGroup, ...] = ()
    dynamic_batching: DynamicBatching | None = None
    max_queue_size: int = 0  # 0: the server's default
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    parameters: dict[str, str] = field(default_factory=dict)
    ensemble_scheduling: EnsembleScheduling | None = None  # set iff platform is "ensemble"
    model_warmup: tuple[WarmupSample, ...] = ()
    response_cache: bool = False  # response_cache { enable: true }

    # -- builder settings, read from parameters ----------------------------------------------
    @property
    def precision(self) -> str:
        return self.parameters.get("precision", "fp32")

    @property
    def workspace_bytes(self) -> int | None:
        value = self.parameters.get("workspace_bytes")
        return None if value is None else int(value)

    def profile(self, tensor: str) -> tuple[tuple[int, ...], ...] | None:
        """The (min, opt, max) shapes given for input ``tensor``, or None."""
        text = self.parameters.get(f"profile.{tensor}")
        if text is None:
            return None
        return tuple(tuple(int(d) for d in part.split("x")) for part in text.split(":"))

    def with_io(self, inputs: tuple[TensorConfig, ...], outputs: tuple[TensorConfig, ...],
                max_batch_size: int, platform: str) -> ModelConfig:
        return replace(self, inputs=inputs, outputs=outputs, max_batch_size=max_batch_size,
                       platform=platform)

    def to_json(self) -> dict[str, Any]:
        """Triton's JSON form of the configuration (what ``/config`` returns)."""
        out: dict[str, Any] = {
            "name": self.name, "max_batch_size": self.max_batch_size,
            "version_policy": self.version_policy.to_json(),
            "input": [t.to_json() for t in self.inputs],
            "output": [t.to_json() for t in self.outputs],
            "instance_group": [{"name": g.name, "kind": g.kind, "count": g.count,
                                "gpus": list(g.gpus)} for g in self.instance_groups],
            "parameters": {k: {"string_value": v} for k, v in self.parameters.items()},
        }
        if self.platform:
            out["platform"] = self.platform
        if self.platform in PLATFORMS:
            out["backend"] = {p: b for b, p in BACKENDS.items()}[self.platform]
        if self.ensemble_scheduling is not None:
            out["ensemble_scheduling"] = self.ensemble_scheduling.to_json()
        if self.model_warmup:
            out["model_warmup"] = [sample.to_json() for sample in self.model_warmup]
        if self.response_cache:
            out["response_cache"] = {"enable": True}
        if self.dynamic_batching is not None:
            out["dynamic_batching"] = {
                "preferred_batch_size": list(self.dynamic_batching.preferred_batch_size),
                "max_queue_delay_microseconds":
                    self.dynamic_batching.max_queue_delay_microseconds,
                "default_queue_policy": {"max_queue_size": self.max_queue_size}}
        return out


def config_from_pbtxt(text: str, model: str) -> ModelConfig:
    return config_from_json(read_pbtxt(text, SCHEMA), model)


def config_from_json_text(text: str | bytes, model: str) -> ModelConfig:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"model '{model}': configuration is not valid JSON: {exc}") from None
    return config_from_json(data, model)


def config_from_json(data: Any, model: str) -> ModelConfig:
    """Validate Triton's JSON configuration shape; ``model`` is the directory's name."""
    where = f"model '{model}' configuration"
    _check_fields(data, SCHEMA, where)
    name = data.get("name") or model
    if name != model:
        raise InvalidArgument(f"{where}: name {name!r} differs from the model's directory "
                              f"name {model!r}")
    platform = data.get("platform", "")
    if "backend" in data:
        backend = data["backend"]
        if backend not in BACKENDS:
            raise InvalidArgument(f"{where}: backend {backend!r}; expected one of "
                                  f"{sorted(BACKENDS)}")
        platform = platform or BACKENDS[backend]
    if platform and platform not in PLATFORMS and platform != ENSEMBLE:
        raise InvalidArgument(f"{where}: platform {platform!r}; expected one of "
                              f"{sorted([*PLATFORMS, ENSEMBLE])}")
    max_batch_size = _int(data.get("max_batch_size", 0), f"{where}: max_batch_size")
    if max_batch_size < 0:
        raise InvalidArgument(f"{where}: max_batch_size must be >= 0, got {max_batch_size}")
    groups = []
    for index, g in enumerate(data.get("instance_group", [])):
        kind = g.get("kind", "KIND_AUTO")
        if kind not in KINDS:
            raise InvalidArgument(f"{where}: instance_group kind {kind!r}; expected one of "
                                  f"{list(KINDS)}")
        count = _int(g.get("count", 1), f"{where}: instance_group count")
        if not 1 <= count <= 64:
            raise InvalidArgument(f"{where}: instance_group count must be 1..64, got {count}")
        groups.append(InstanceGroup(g.get("name") or f"{name}_{index}", kind, count,
                                    tuple(_int(x, "gpus") for x in g.get("gpus", []))))
    batching, queue_size = None, 0
    if "dynamic_batching" in data:
        db = data["dynamic_batching"]
        preferred = tuple(_int(x, f"{where}: preferred_batch_size")
                          for x in db.get("preferred_batch_size", []))
        if any(not 1 <= p <= max(max_batch_size, 1) for p in preferred):
            raise InvalidArgument(f"{where}: preferred_batch_size {list(preferred)} must lie "
                                  f"in 1..max_batch_size ({max_batch_size})")
        delay = _int(db.get("max_queue_delay_microseconds", 0), f"{where}: max_queue_delay")
        if delay < 0:
            raise InvalidArgument(f"{where}: max_queue_delay_microseconds must be >= 0")
        batching = DynamicBatching(preferred, delay)
        queue_size = _int(db.get("default_queue_policy", {}).get("max_queue_size", 0),
                          f"{where}: max_queue_size")
    policy = VersionPolicy()
    vp = data.get("version_policy", {})
    if len(vp) > 1:
        raise InvalidArgument(f"{where}: version_policy takes one of latest, all, specific")
    if "all" in vp:
        policy = VersionPolicy("all")
    elif "specific" in vp:
        versions = tuple(_int(v, "versions") for v in vp["specific"].get("versions", []))
        policy = VersionPolicy("specific", versions=versions)
    elif "latest" in vp:
        n = _int(vp["latest"].get("num_versions", 1), f"{where}: num_versions")
        if n < 1:
            raise InvalidArgument(f"{where}: latest num_versions must be >= 1")
        policy = VersionPolicy("latest", n)
    parameters = {}
    for key, value in data.get("parameters", {}).items():
        if not isinstance(value, dict) or not isinstance(value.get("string_value"), str):
            raise InvalidArgument(f"{where}: parameter {key!r} must be "
                                  f"{{\"string_value\": \"...\"}}")
        parameters[key] = value["string_value"]
    config = ModelConfig(
        name=name, platform=platform, max_batch_size=max_batch_size,
        inputs=tuple(_tensor(t, where) for t in data.get("input", [])),
        outputs=tuple(_tensor(t, where) for t in data.get("output", [])),
        instance_groups=tuple(groups), dynamic_batching=batching, max_queue_size=queue_size,
        version_policy=policy, parameters=parameters,
        ensemble_scheduling=_ensemble_scheduling(data, platform, where),
        model_warmup=_model_warmup(data.get("model_warmup", []), where),
        response_cache=data.get("response_cache", {}).get("enable", False))
    _check_builder_settings(config, where)
    if config.ensemble_scheduling is not None:
        _check_ensemble(config, data, where)
    elif config.inputs:
        check_warmup(config, where)  # else once the engine has completed the configuration
    return config


def _model_warmup(samples: list[dict[str, Any]], where: str) -> tuple[WarmupSample, ...]:
    """The samples as written; ``check_warmup`` checks them against the model's inputs."""
    out = []
    for index, data in enumerate(samples):
        name = data.get("name") or f"sample {index}"
        at = f"{where}: model_warmup sample '{name}'"
        batch_size = _int(data.get("batch_size", 1), f"{at}: batch_size")
        count = _int(data.get("count", 0), f"{at}: count")
        if batch_size < 1 or count < 0:
            raise InvalidArgument(f"{at}: batch_size must be >= 1 and count >= 0, got "
                                  f"{batch_size} and {count}")
        inputs = []
        for input_name, spec in data.get("inputs", {}).items():
            there = f"{at} input '{input_name}'"
            sources = [s for s in SOURCES if s in spec]
            if len(sources) != 1 or spec.get(sources[0]) is False:
                raise InvalidArgument(f"{there}: give exactly one data source: zero_data: "
                                      f"true, random_data: true or input_data_file "
                                      f"(given: {sources or 'none'})")
            if "data_type" not in spec:
                raise InvalidArgument(f"{there}: needs a data_type")
            try:
                datatype = datatype_from_config(spec["data_type"])
            except InvalidArgument as exc:
                raise InvalidArgument(f"{there}: {exc}") from None
            dims = tuple(_int(d, f"{there}: dims") for d in spec.get("dims", []))
            if any(d < 0 for d in dims):
                raise InvalidArgument(f"{there}: dims {list(dims)} must be sizes (>= 0); a "
                                      f"sample has no variable dimensions")
            data_file = spec.get("input_data_file", "")
            if sources[0] == "input_data_file":
                check_data_file(data_file, there)
            inputs.append((input_name, WarmupInput(datatype, dims, sources[0], data_file)))
        out.append(WarmupSample(name, batch_size, tuple(inputs), count))
    return tuple(out)


def _ensemble_scheduling(data: dict[str, Any], platform: str,
                         where: str) -> EnsembleScheduling | None:
    if "ensemble_scheduling" not in data:
        if platform == ENSEMBLE:
            raise InvalidArgument(f"{where}: platform 'ensemble' needs ensemble_scheduling")
        return None
    if platform != ENSEMBLE:
        raise InvalidArgument(f"{where}: ensemble_scheduling is set but the platform is "
                              f"{platform or 'not set'}; an ensemble's platform is 'ensemble'")
    steps = []
    for index, step in enumerate(data["ensemble_scheduling"].get("step", [])):
        version = _int(step.get("model_version", -1), f"{where}: step {index} model_version")
        steps.append(EnsembleStep(step.get("model_name", ""), version,
                                  tuple(step.get("input_map", {}).items()),
                                  tuple(step.get("output_map", {}).items())))
    return EnsembleScheduling(tuple(steps))


def _check_ensemble(config: ModelConfig, data: dict[str, Any], where: str) -> None:
    """What an ensemble may not have (Triton's rules), then its data flow."""
    assert config.ensemble_scheduling is not None
    if data.get("instance_group"):
        raise InvalidArgument(f"{where}: an ensemble takes no instance_group (its steps' "
                              f"models have theirs)")
    if "dynamic_batching" in data:
        raise InvalidArgument(f"{where}: an ensemble takes no dynamic_batching (its steps' "
                              f"models batch)")
    if data.get("model_warmup"):
        raise InvalidArgument(f"{where}: an ensemble takes no model_warmup (its steps' models "
                              f"warm up)")
    if not config.inputs or not config.outputs:
        raise InvalidArgument(f"{where}: an ensemble must declare its inputs and outputs")
    check_data_flow(config.ensemble_scheduling, [t.name for t in config.inputs],
                    [t.name for t in config.outputs], where)


def _check_builder_settings(config: ModelConfig, where: str) -> None:
    if config.precision not in PRECISIONS:
        raise InvalidArgument(f"{where}: parameter precision {config.precision!r}; expected "
                              f"one of {list(PRECISIONS)}")
    try:
        workspace = config.workspace_bytes
        profiles = [config.profile(k[len("profile."):]) for k in config.parameters
                    if k.startswith("profile.")]
    except ValueError:
        raise InvalidArgument(f"{where}: workspace_bytes must be an integer and profile.* "
                              f"parameters read 'MINxDIMS:OPTxDIMS:MAXxDIMS'") from None
    if workspace is not None and workspace < 0:
        raise InvalidArgument(f"{where}: workspace_bytes must be >= 0")
    for profile in profiles:
        if profile is None or len(profile) != 3 or len({len(s) for s in profile}) != 1:
            raise InvalidArgument(f"{where}: a profile.* parameter reads 'min:opt:max', "
                                  f"each shape like 1x3x224x224")


def _tensor(data: dict[str, Any], where: str) -> TensorConfig:
    name = data.get("name")
    if not name:
        raise InvalidArgument(f"{where}: every input and output needs a name")
    if "data_type" not in data:
        raise InvalidArgument(f"{where}: tensor '{name}' needs a data_type")
    dims = tuple(_int(d, f"{where}: tensor '{name}' dims") for d in data.get("dims", []))
    if any(d < -1 for d in dims):
        raise InvalidArgument(f"{where}: tensor '{name}' dims {list(dims)}: -1 marks a "
                              f"variable dimension; other values must be >= 0")
    return TensorConfig(name, datatype_from_config(data["data_type"]), dims)


def _int(value: Any, what: str) -> int:
    # Triton's JSON writes int64 fields as strings (protobuf's JSON mapping); accept both.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidArgument(f"{what}: expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"{what}: expected an integer, got {value!r}") from None


def _check_fields(data: Any, schema: Schema, where: str) -> None:
    """Refuse unknown fields and wrong JSON shapes, naming the field."""
    if not isinstance(data, dict):
        raise InvalidArgument(f"{where}: expected an object, got {type(data).__name__}")
    for key, value in data.items():
        if key not in schema:
            raise InvalidArgument(f"{where}: unknown field {key!r}; known: {sorted(schema)}")
        kind = schema[key]
        if isinstance(kind, MapOf):
            if not isinstance(value, dict):
                raise InvalidArgument(f"{where}: {key} must be an object")
            for name, item in value.items():
                _check_fields(item, kind.value, f"{where}: {key} '{name}'")
        elif kind in ("map", "str_map"):
            if not isinstance(value, dict):
                raise InvalidArgument(f"{where}: {key} must be an object")
            if kind == "str_map" and any(not isinstance(v, str) for v in value.values()):
                raise InvalidArgument(f"{where}: {key} must map names to names (strings)")
        elif isinstance(kind, list):
            if not isinstance(value, list):
                raise InvalidArgument(f"{where}: {key} must be a list")
            if isinstance(kind[0], dict):
                for item in value:
                    _check_fields(item, kind[0], f"{where}: {key}")
        elif isinstance(kind, dict):
            _check_fields(value, kind, f"{where}: {key}")
        elif kind in (str, "enum") and not isinstance(value, str):
            raise InvalidArgument(f"{where}: {key} must be a string")
        elif kind is bool and not isinstance(value, bool):
            raise InvalidArgument(f"{where}: {key} must be true or false")
