"""From an ONNX file and trtexec-style build options to plan bytes.

>>> options = BuildOptions(onnx=Path("model.onnx"), fp16=True)   # doctest: +SKIP
>>> plan = build_from_onnx(options, ToolLogger())                # doctest: +SKIP
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import engine as trt
from engine.builder.config import IBuilderConfig
from engine.errors import UnsupportedError
from engine.tools.errors import ToolError, UsageError
from engine.tools.options import MEMORY_POOLS, DeviceChoice
from engine.tools.progress import BuildProgress
from engine.tools.tool_logger import ToolLogger

Shapes = dict[str, tuple[int, ...]]

# trtexec flag -> builder flag, for the precision switches.
PRECISION_FLAGS = {
    "fp16": trt.BuilderFlag.FP16,
    "bf16": trt.BuilderFlag.BF16,
    "int8": trt.BuilderFlag.INT8,
    "fp8": trt.BuilderFlag.FP8,
}


@dataclass
class BuildOptions:
    onnx: Path
    precisions: list[str] = field(default_factory=list)  # keys of PRECISION_FLAGS
    calib: Path | None = None
    strongly_typed: bool = False
    min_shapes: Shapes = field(default_factory=dict)
    opt_shapes: Shapes = field(default_factory=dict)
    max_shapes: Shapes = field(default_factory=dict)
    shapes: Shapes = field(default_factory=dict)  # --shapes: min = opt = max when building
    mem_pool_sizes: dict[str, int] = field(default_factory=dict)
    optimization_level: int | None = None
    timing_cache_file: Path | None = None
    tactic_sources: str | None = None
    device: DeviceChoice | None = None


def make_config(builder: trt.Builder, options: BuildOptions) -> IBuilderConfig:
    """A builder config with the options' flags, pools, level, sources and target. Refused
    features raise ``ToolError`` before anything is parsed or built."""
    from engine.tools.options import parse_tactic_sources

    config = builder.create_builder_config()
    for name in options.precisions:
        try:
            config.set_flag(PRECISION_FLAGS[name])
        except UnsupportedError as exc:
            raise ToolError(f"--{name}: {exc}") from None
    if options.calib is not None:
        if "int8" not in options.precisions:
            raise UsageError("--calib needs --int8")
        if not options.calib.is_file():
            raise UsageError(f"--calib: no such file {options.calib}")
        config.int8_calibrator = cache_calibrator(options.calib.read_bytes())
    for pool, size in options.mem_pool_sizes.items():
        config.set_memory_pool_limit(MEMORY_POOLS[pool], size)
    if options.optimization_level is not None:
        if not 0 <= options.optimization_level <= 5:
            raise UsageError(f"--builderOptimizationLevel: {options.optimization_level} is not "
                             f"in 0..5")
        config.builder_optimization_level = options.optimization_level
    if options.tactic_sources is not None:
        config.set_tactic_sources(parse_tactic_sources(options.tactic_sources,
                                                       config.get_tactic_sources()))
    if options.device is not None:
        config.default_device_type = target_device_type(options.device)
    return config


def cache_calibrator(cache: bytes) -> object:
    """A calibrator that only hands the builder a calibration cache (trtexec's --calib)."""
    try:
        from engine.quantization.calibrator import IInt8EntropyCalibrator2
    except ImportError:
        raise ToolError("--calib: this library has no INT8 calibrators yet") from None

    class CacheCalibrator(IInt8EntropyCalibrator2):
        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> None:
            return None  # no batches: the ranges come from the cache

        def read_calibration_cache(self) -> bytes:
            return cache

    return CacheCalibrator()


def target_device_type(device: DeviceChoice) -> trt.DeviceType:
    if device.kind == "cpu":
        return trt.DeviceType.CPU
    from engine.kernels.backends import gpu_available

    if not gpu_available():
        raise ToolError("--device=gpu: no CUDA device with CuPy is usable here; use --device=cpu")
    return trt.DeviceType.GPU


def build_from_onnx(options: BuildOptions, logger: ToolLogger) -> bytes:
    """Parse, configure and build; returns the plan. Raises ``ToolError`` with the reason."""
    if not options.onnx.is_file():
        raise UsageError(f"--onnx: no such file {options.onnx}")
    builder = trt.Builder(logger)
    config = make_config(builder, options)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) \
        if options.strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(options.onnx)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ToolError(f"failed to parse {options.onnx}: " + "; ".join(errors))
    profile = optimization_profile(builder, network, options, logger)
    if profile is not None:
        config.add_optimization_profile(profile)
    cache = None
    if options.timing_cache_file is not None:
        data = options.timing_cache_file.read_bytes() \
            if options.timing_cache_file.is_file() else b""
        try:
            cache = config.create_timing_cache(data)
        except trt.BuildError as exc:
            raise ToolError(f"--timingCacheFile {options.timing_cache_file}: {exc}") from None
        if not config.set_timing_cache(cache, ignore_mismatch=False):
            raise ToolError(f"--timingCacheFile {options.timing_cache_file}: the cache was made "
                            f"on another device")
    progress = BuildProgress(logger, sys.stderr)
    if hasattr(config, "progress_monitor"):  # the library's IProgressMonitor, when it has one
        config.progress_monitor = progress
    builder.logger = progress
    plan = builder.build_serialized_network(network, config)
    progress.finish()
    if plan is None:
        raise ToolError(f"build failed: {logger.last_error or 'no reason logged'}")
    if cache is not None and options.timing_cache_file is not None:
        options.timing_cache_file.write_bytes(cache.serialize())
        logger.info(f"Saved timing cache to {options.timing_cache_file} ({len(cache)} entries)")
    return bytes(plan)


def optimization_profile(builder: trt.Builder, network: trt.INetworkDefinition,
                         options: BuildOptions, logger: ToolLogger
                         ) -> trt.IOptimizationProfile | None:
    """The profile for the network's dynamic inputs (trtexec's rules): ``--optShapes`` or
    ``--shapes`` give opt, min and max default to opt, unset dynamic dimensions become 1."""
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    names = [t.name for t in inputs if t is not None]
    for option, shapes in (("--minShapes", options.min_shapes), ("--optShapes", options.opt_shapes),
                           ("--maxShapes", options.max_shapes), ("--shapes", options.shapes)):
        unknown = sorted(set(shapes) - set(names))
        if unknown:
            raise UsageError(f"{option}: {unknown} are not inputs of the network; inputs: "
                             f"{names}")
    profile = builder.create_optimization_profile()
    dynamic = False
    for tensor in inputs:
        assert tensor is not None  # indices below num_inputs
        declared = tuple(tensor.shape)
        if all(d >= 0 for d in declared):
            continue
        dynamic = True
        name = tensor.name
        opt = (options.opt_shapes.get(name) or options.shapes.get(name)
               or options.max_shapes.get(name) or options.min_shapes.get(name))
        if opt is None:
            opt = tuple(1 if d < 0 else d for d in declared)
            logger.warning(f"Dynamic dimensions required for input: {name}, but no shapes were "
                           f"provided. Automatically overriding shape to: "
                           f"{'x'.join(map(str, opt))}")
        lo = options.min_shapes.get(name, opt)
        hi = options.max_shapes.get(name, opt)
        try:
            profile.set_shape(name, lo, opt, hi)
        except ValueError as exc:
            raise UsageError(f"shapes of input '{name}': {exc}") from None
    return profile if dynamic else None
