"""Engines from model files: a plan is deserialized; an ONNX model is parsed and built into a
plan with the settings of its configuration, and the plan is cached on disk, keyed by the
model file's hash, the settings, the target and the library version. Each device a model's
instances are placed on gets its own engine copy.

Everything here blocks; the repository calls it from a worker thread, off the request path.

A build for a GPU runs in a child process of its own (``isolate``: "gpu" by default, or
"always" / "never"; the child is spawned, never forked, since the server holds a CUDA
context): what timing tactics leaves on the device (a
ResNet-50 FP16 build left 10 GB in the building process, see docs/gpu-target.md), and any
crash of a native library while building, go with the child; only bytes cross, through
pipes: the build request (the configuration in Triton's JSON form and the model) and the plan
(nothing of the model or its configuration is pickled).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import engine as trt
from server.core.config import PLATFORMS, ModelConfig, TensorConfig, config_from_json
from server.core.datatypes import datatype_of_engine
from server.core.devices import Device
from server.core.errors import InvalidArgument, Unavailable

MODEL_FILES = {filename: platform for platform, filename in PLATFORMS.items()}
DEFAULT_MAX_BATCH_SIZE = 4  # Triton's default when it completes a configuration
# Where ONNX models are built: "gpu" (GPU builds in a child process, CPU builds here),
# "always" (every build in a child) or "never" (every build in the server's process).
BUILD_ISOLATION = ("gpu", "always", "never")


def device_type_for(kind: str, device: str) -> trt.DeviceType:
    """The build target of an instance group ``kind`` under the server's ``--device``."""
    if kind == "KIND_CPU" or (kind == "KIND_AUTO" and device == "cpu"):
        return trt.DeviceType.CPU
    if kind == "KIND_GPU" or device == "gpu":
        return trt.DeviceType.GPU
    from engine.builder.config import default_device_type

    return default_device_type()


def model_file(version_dir: Path, config: ModelConfig) -> Path:
    """The one model file of a version directory (``model.plan`` or ``model.onnx``)."""
    if config.platform:
        path = version_dir / PLATFORMS[config.platform]
        if not path.is_file():
            raise InvalidArgument(f"{path.name} not found in {version_dir.name}/ (platform "
                                  f"{config.platform})")
        return path
    found = [version_dir / f for f in MODEL_FILES if (version_dir / f).is_file()]
    if len(found) != 1:
        raise InvalidArgument(f"version directory {version_dir.name}/ must hold exactly one of "
                              f"{sorted(MODEL_FILES)}; found {[p.name for p in found]}")
    return found[0]


def engines_for(path: Path, config: ModelConfig, devices: Sequence[Device],
                cache_dir: Path | None, autocomplete: bool, isolate: str = "gpu"
                ) -> tuple[dict[Device, trt.ICudaEngine], str]:
    """One engine copy of the model file at ``path`` per device, each deserialized with its
    device current, and the model's platform. An ONNX model is built once per target (CPU,
    GPU). ``InvalidArgument`` or ``Unavailable`` with the reason when it cannot be done."""
    data = path.read_bytes()
    platform = MODEL_FILES[path.name]
    plans: dict[trt.DeviceType, bytes] = {}
    engines = {}
    for device in devices:
        if platform == "tensorrt_plan":
            engine = _engine_from_plan(data, path.name, device)
        elif device.target in plans:
            engine = _engine_from_plan(plans[device.target], "built plan", device)
        else:
            plans[device.target], engine = _engine_from_onnx(data, config, device, cache_dir,
                                                             autocomplete, isolate)
        backend = engine.target.get("backend")
        if backend != device.kind:
            raise InvalidArgument(f"{path.name} targets the {backend}; it cannot run on "
                                  f"{device.name}")
        engines[device] = engine
    return engines, platform


def _engine_from_plan(data: bytes, what: str, device: Device) -> trt.ICudaEngine:
    try:
        with device.placed():
            return trt.engine_from_plan(data)
    except trt.PlanError as exc:
        raise InvalidArgument(f"{what}: {exc}") from None


def batch_capacity(engine: trt.ICudaEngine) -> int:
    """The largest batch the engine takes when every I/O tensor has a leading dynamic batch
    dimension that profile 0 lets go down to 1; otherwise 0 (Triton's "no batching")."""
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    if not names or any(len(engine.get_tensor_shape(n)) == 0 or engine.get_tensor_shape(n)[0] != -1
                        for n in names):
        return 0
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    capacities = []
    for name in inputs:
        low, _, high = engine.get_tensor_profile_shape(name, 0)
        if low[0] > 1:
            return 0
        capacities.append(high[0])
    return min(capacities) if capacities else 0


def _settings_key(config: ModelConfig, target: trt.DeviceType, autocomplete: bool) -> str:
    settings = {"precision": config.precision, "workspace": config.workspace_bytes,
                "profiles": {k: v for k, v in config.parameters.items()
                             if k.startswith("profile.")},
                "max_batch_size": config.max_batch_size, "autocomplete": autocomplete,
                "target": target.name, "library": trt.__version__}
    return json.dumps(settings, sort_keys=True)


def _engine_from_onnx(data: bytes, config: ModelConfig, device: Device,
                      cache_dir: Path | None, autocomplete: bool, isolate: str
                      ) -> tuple[bytes, trt.ICudaEngine]:
    """The plan built for ``device``'s target (from the cache when it is there and sound)
    and its engine on ``device``."""
    target = device.target
    digest = hashlib.sha256(data)
    digest.update(_settings_key(config, target, autocomplete).encode())
    cached = cache_dir / f"{digest.hexdigest()}.plan" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        plan = cached.read_bytes()
        try:
            with device.placed():
                return plan, trt.engine_from_plan(plan)
        except trt.PlanError:
            cached.unlink(missing_ok=True)  # stale or damaged: rebuild below
    request = _build_request(data, config, target, autocomplete, device)
    if isolate == "always" or (isolate == "gpu" and device.kind == "gpu"):
        plan = run_isolated(_plan_for_request, request)
    else:
        plan = _plan_for_request(request)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(plan)
        os.replace(tmp, cached)
    return plan, _engine_from_plan(plan, "built plan", device)


class _ErrorLogger(trt.ILogger):
    def __init__(self) -> None:
        trt.ILogger.__init__(self)
        self.errors: list[str] = []

    def log(self, severity: trt.Logger.Severity, msg: str) -> None:
        if severity <= trt.Logger.ERROR:
            self.errors.append(msg)


_ERRORS: dict[bytes, type[Exception]] = {b"I": InvalidArgument, b"U": Unavailable}


def run_isolated(function: Callable[[bytes], bytes], request: bytes) -> bytes:
    """``function(request)`` in a spawned child process: the bytes it returns, or the
    ``InvalidArgument`` / ``Unavailable`` it raised, raised here with its message. A child
    that fails otherwise or dies (a crash in a native library) is an ``InvalidArgument``
    naming how; the server goes on. Only bytes cross in either direction, through pipes
    (``function`` is named by its module and name, the server's own code): nothing of the
    model or its configuration is pickled."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    requests, to_child = context.Pipe(duplex=False)
    child = context.Process(target=_isolated_child, args=(requests, send, function),
                            daemon=True, name="engine-build")
    child.start()
    send.close()  # the child holds the other ends; EOF here when it exits
    requests.close()
    try:
        to_child.send_bytes(request)
        to_child.close()
        message = receive.recv_bytes()
    except (EOFError, BrokenPipeError):
        message = None
    finally:
        receive.close()
        child.join()
    if message is None:
        raise InvalidArgument(f"the build process ended without a result (exit code "
                              f"{child.exitcode}): a crash while building")
    kind, body = message[:1], message[1:]
    if kind == b"P":
        return body
    error = _ERRORS.get(kind, InvalidArgument)
    raise error(body.decode("utf-8", "replace"))


def _isolated_child(requests: Any, send: Any, function: Callable[[bytes], bytes]) -> None:
    try:
        request = requests.recv_bytes()
        requests.close()
        result = b"P" + function(request)
    except (InvalidArgument, Unavailable) as exc:
        result = (b"I" if isinstance(exc, InvalidArgument) else b"U") + str(exc).encode()
    except Exception as exc:  # noqa: BLE001 - reported to the server, which goes on
        result = b"E" + f"the build failed: {type(exc).__name__}: {exc}".encode()
    send.send_bytes(result)
    send.close()


def _build_request(data: bytes, config: ModelConfig, target: trt.DeviceType,
                   autocomplete: bool, device: Device) -> bytes:
    """What a build needs, as bytes: a JSON header (the configuration in Triton's JSON form,
    the target, the device) and the model."""
    header = json.dumps({"config": config.to_json(), "target": target.name,
                         "autocomplete": autocomplete, "device": [device.kind, device.index]})
    return len(header.encode()).to_bytes(8, "little") + header.encode() + data


def _read_request(request: bytes) -> tuple[bytes, ModelConfig, trt.DeviceType, bool, Device]:
    size = int.from_bytes(request[:8], "little")
    header = json.loads(request[8:8 + size])
    config = config_from_json(header["config"], header["config"]["name"])
    kind, index = header["device"]
    return (request[8 + size:], config, trt.DeviceType[header["target"]],
            bool(header["autocomplete"]), Device(kind, index))


def _plan_for_request(request: bytes) -> bytes:
    """The plan of the ONNX model in a build request, built with the request's device
    current (tactics are timed on the device the engine will run on)."""
    data, config, target, autocomplete, device = _read_request(request)
    with device.placed():
        return _plan_from_onnx(data, config, target, autocomplete)


def _plan_from_onnx(data: bytes, config: ModelConfig, target: trt.DeviceType,
                    autocomplete: bool) -> bytes:
    try:
        from engine.onnx import OnnxParser
    except ImportError as exc:
        raise Unavailable(f"ONNX models need the ONNX parser (engine.onnx), which this build "
                          f"lacks: {exc}") from None
    logger = _ErrorLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = OnnxParser(network, logger)
    if not parser.parse(data):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise InvalidArgument(f"model.onnx could not be parsed: {'; '.join(errors) or 'unknown'}")
    builder_config = builder.create_builder_config()
    builder_config.default_device_type = target
    if config.precision == "fp16":
        builder_config.set_flag(trt.BuilderFlag.FP16)
    elif config.precision == "bf16":
        builder_config.set_flag(trt.BuilderFlag.BF16)
    if config.workspace_bytes is not None:
        builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace_bytes)
    profile = builder.create_optimization_profile()
    dynamic = False
    max_batch = config.max_batch_size or (DEFAULT_MAX_BATCH_SIZE if autocomplete else 0)
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        assert tensor is not None  # index < num_inputs
        shape = tuple(tensor.shape)
        if all(d >= 0 for d in shape):
            continue
        dynamic = True
        given = config.profile(tensor.name)
        if given is not None:
            profile.set_shape(tensor.name, *given)
        elif shape[0] == -1 and all(d >= 0 for d in shape[1:]) and max_batch > 0:
            rest = shape[1:]
            profile.set_shape(tensor.name, (1, *rest), (max_batch, *rest), (max_batch, *rest))
        else:
            raise InvalidArgument(
                f"input '{tensor.name}' has dynamic dimensions {list(shape)}; give its shapes "
                f"with parameter profile.{tensor.name} = 'min:opt:max' (e.g. 1x3:4x3:8x3)")
    if dynamic and builder_config.add_optimization_profile(profile) < 0:
        raise InvalidArgument("the optimization profile derived from the configuration is "
                              "invalid (min <= opt <= max must hold for every dimension)")
    plan = builder.build_serialized_network(network, builder_config)
    if plan is None:
        raise InvalidArgument(f"building the plan failed: {'; '.join(logger.errors)}")
    return bytes(plan)


def complete_config(config: ModelConfig, engine: trt.ICudaEngine, capacity: int,
                    platform: str) -> ModelConfig:
    """The configuration with its I/O and batch size filled in from the engine, or checked
    against it where the configuration gives them."""
    if config.max_batch_size > capacity:
        raise InvalidArgument(f"max_batch_size {config.max_batch_size} exceeds what the "
                              f"engine accepts ({capacity}: "
                              f"{'no batch dimension' if capacity == 0 else 'its profile max'})")
    declared = bool(config.inputs or config.outputs)
    mbs = config.max_batch_size if declared or config.max_batch_size else capacity
    inputs: list[TensorConfig] = []
    outputs: list[TensorConfig] = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        shape = tuple(engine.get_tensor_shape(name))
        tensor = TensorConfig(name, datatype_of_engine(engine.get_tensor_dtype(name)),
                              shape[1:] if mbs > 0 else shape)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        (inputs if is_input else outputs).append(tensor)
    if declared:
        for kind, mine, theirs in (("input", config.inputs, inputs),
                                   ("output", config.outputs, outputs)):
            engine_by_name = {t.name: t for t in theirs}
            if sorted(engine_by_name) != sorted(t.name for t in mine):
                raise InvalidArgument(f"configuration {kind}s {sorted(t.name for t in mine)} "
                                      f"differ from the engine's {sorted(engine_by_name)}")
            for t in mine:
                e = engine_by_name[t.name]
                if t.datatype != e.datatype:
                    raise InvalidArgument(f"{kind} '{t.name}': configuration says "
                                          f"{t.datatype}, the engine has {e.datatype}")
                if len(t.dims) != len(e.dims) or any(
                        d != -1 and c != -1 and d != c or d == -1 and c != -1
                        for c, d in zip(t.dims, e.dims)):
                    raise InvalidArgument(f"{kind} '{t.name}': configuration dims "
                                          f"{list(t.dims)} do not fit the engine's "
                                          f"{list(e.dims)}")
        inputs, outputs = list(config.inputs), list(config.outputs)
    return config.with_io(tuple(inputs), tuple(outputs), mbs, platform)
