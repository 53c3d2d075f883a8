"""``IBuilderConfig`` and its enums: how the builder should optimize a network.

>>> import engine as trt
>>> config = trt.Builder(trt.Logger()).create_builder_config()
>>> config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
>>> config.builder_optimization_level
3
"""

from __future__ import annotations

import enum
from typing import Any

from engine.builder.profile import IOptimizationProfile
from engine.builder.timing_cache import ITimingCache
from engine.errors import UnsupportedError
from engine.plan.compatibility import HardwareCompatibilityLevel


class BuilderFlag(enum.IntEnum):
    """Builder options, with TensorRT 10's values (bit positions of ``config.flags``)."""

    FP16 = 0
    INT8 = 1
    DEBUG = 2
    GPU_FALLBACK = 3
    REFIT = 4
    DISABLE_TIMING_CACHE = 5
    TF32 = 6
    SPARSE_WEIGHTS = 7
    SAFETY_SCOPE = 8
    OBEY_PRECISION_CONSTRAINTS = 9
    PREFER_PRECISION_CONSTRAINTS = 10
    DIRECT_IO = 11
    REJECT_EMPTY_ALGORITHMS = 12
    VERSION_COMPATIBLE = 13
    EXCLUDE_LEAN_RUNTIME = 14
    FP8 = 15
    ERROR_ON_TIMING_CACHE_MISS = 16
    BF16 = 17
    DISABLE_COMPILATION_CACHE = 18
    WEIGHTLESS = 19
    STRIP_PLAN = 20
    REFIT_IDENTICAL = 21
    WEIGHT_STREAMING = 22
    INT4 = 23
    REFIT_INDIVIDUAL = 24
    STRICT_NANS = 25
    MONITOR_MEMORY = 26
    FP4 = 27
    EDITABLE_TIMING_CACHE = 28
    DISTRIBUTIVE_INDEPENDENCE = 29


# Flags whose feature is not implemented: setting one raises instead of being ignored.
# Each entry says what is missing; entries leave this table as the features land.
UNIMPLEMENTED_FLAGS: dict[BuilderFlag, str] = {
    BuilderFlag.FP4: "FP4 quantization",
    BuilderFlag.GPU_FALLBACK: "DLA (this engine has no DLA target)",
    BuilderFlag.SPARSE_WEIGHTS: "structured-sparsity tactics",
    BuilderFlag.SAFETY_SCOPE: "the safety runtime",
    BuilderFlag.EDITABLE_TIMING_CACHE: "editable timing caches",
    BuilderFlag.DISABLE_COMPILATION_CACHE: "the compilation cache",
    BuilderFlag.WEIGHTLESS: "weight-stripped plans",
    BuilderFlag.WEIGHT_STREAMING: "weight streaming",
    BuilderFlag.MONITOR_MEMORY: "memory monitoring",
    BuilderFlag.DISTRIBUTIVE_INDEPENDENCE: "distributive-independence guarantees",
}


class EngineCapability(enum.IntEnum):
    """What runtime a plan targets (TensorRT's members and values); only STANDARD here."""

    STANDARD = 0
    SAFETY = 1
    DLA_STANDALONE = 2


class PreviewFeature(enum.IntEnum):
    """TensorRT's preview features (members and values)."""

    PROFILE_SHARING_0806 = 0
    ALIASED_PLUGIN_IO_10_03 = 1
    RUNTIME_ACTIVATION_RESIZE_10_10 = 2


class QuantizationFlag(enum.IntEnum):
    """Flags of INT8 calibration (TensorRT's members and values)."""

    CALIBRATE_BEFORE_FUSION = 0


class RuntimePlatform(enum.IntEnum):
    """The platform a plan runs on (TensorRT's members and values)."""

    SAME_AS_BUILD = 0
    WINDOWS_AMD64 = 1


# Preview features: those always on (and not to be turned off), and those not implemented
# (turning one on is refused rather than ignored).
_PREVIEW_ALWAYS_ON = {PreviewFeature.PROFILE_SHARING_0806}
_PREVIEW_UNIMPLEMENTED = {
    PreviewFeature.ALIASED_PLUGIN_IO_10_03: "aliased plugin I/O (IPluginV3OneBuildV2)",
    PreviewFeature.RUNTIME_ACTIVATION_RESIZE_10_10:
        "resizing activation memory for the shapes set (update_device_memory_size_for_shapes)",
}


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0
    DLA_MANAGED_SRAM = 1
    DLA_LOCAL_DRAM = 2
    DLA_GLOBAL_DRAM = 3
    TACTIC_DRAM = 4
    TACTIC_SHARED_MEMORY = 5


class ProfilingVerbosity(enum.IntEnum):
    LAYER_NAMES_ONLY = 0
    NONE = 1
    DETAILED = 2


class DeviceType(enum.IntEnum):
    """Where the engine runs. TensorRT's GPU and DLA, plus this engine's CPU target."""

    GPU = 0
    DLA = 1
    CPU = 2


class TacticSource(enum.IntEnum):
    """Libraries tactics may come from (bit positions of ``get_tactic_sources()``)."""

    CUBLAS = 0
    CUBLAS_LT = 1
    CUDNN = 2
    EDGE_MASK_CONVOLUTIONS = 3
    JIT_CONVOLUTIONS = 4


def default_device_type() -> DeviceType:
    """The GPU when a GPU backend is usable here, else the CPU."""
    from engine.kernels.backends import gpu_available

    return DeviceType.GPU if gpu_available() else DeviceType.CPU


class IBuilderConfig:
    """Builder settings; create with ``Builder.create_builder_config()``."""

    def __init__(self) -> None:
        self._flags = 1 << BuilderFlag.TF32  # TensorRT enables TF32 by default
        self._pool_limits: dict[MemoryPoolType, int] = {}
        self.avg_timing_iterations = 1
        self.builder_optimization_level = 3
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY
        self.default_device_type = default_device_type()
        self.DLA_core = -1
        self._profiles: list[IOptimizationProfile] = []
        # Every source on: each tactic has passed its GPU test and the builder times them
        # against each other (TensorRT 10 turns cuBLAS, cuBLASLt and cuDNN off by default).
        self._tactic_sources = sum(1 << s for s in TacticSource)
        self._timing_cache: ITimingCache | None = None
        self._timing_cache_ignore_mismatch = False
        # The IInt8Calibrator that implicit INT8 (BuilderFlag.INT8) calibrates with, or None.
        self.int8_calibrator: Any = None
        self.hardware_compatibility_level = HardwareCompatibilityLevel.NONE
        self.progress_monitor: Any = None  # an IProgressMonitor told of the build's phases
        self._engine_capability = EngineCapability.STANDARD
        self._runtime_platform = RuntimePlatform.SAME_AS_BUILD
        self._max_aux_streams = -1
        self._quantization_flags = 0

    # -- TensorRT settings with one meaning here ----------------------------------------------
    @property
    def engine_capability(self) -> EngineCapability:
        return self._engine_capability

    @engine_capability.setter
    def engine_capability(self, value: EngineCapability) -> None:
        value = EngineCapability(value)
        if value != EngineCapability.STANDARD:
            raise UnsupportedError(f"EngineCapability.{value.name} targets a runtime this "
                                   f"engine does not have (the safety runtime or DLA); only "
                                   f"STANDARD plans are built")
        self._engine_capability = value

    @property
    def runtime_platform(self) -> RuntimePlatform:
        return self._runtime_platform

    @runtime_platform.setter
    def runtime_platform(self, value: RuntimePlatform) -> None:
        value = RuntimePlatform(value)
        if value != RuntimePlatform.SAME_AS_BUILD:
            raise UnsupportedError(f"RuntimePlatform.{value.name}: plans run where they are "
                                   f"built (and on any platform with this library for the CPU "
                                   f"target)")
        self._runtime_platform = value

    @property
    def max_aux_streams(self) -> int:
        """Auxiliary streams the engine may use beside the caller's (-1: the builder
        decides). Engines here run every layer on the caller's stream (0 auxiliary), which
        any limit allows."""
        return self._max_aux_streams

    @max_aux_streams.setter
    def max_aux_streams(self, value: int) -> None:
        if int(value) < -1:
            raise ValueError(f"max_aux_streams must be -1 (the builder decides) or >= 0, "
                             f"got {value}")
        self._max_aux_streams = int(value)

    def set_preview_feature(self, feature: PreviewFeature, enable: bool) -> None:
        """Turn a preview feature on or off; turning on one not implemented, or off one
        always on, raises ``UnsupportedError``."""
        feature = PreviewFeature(feature)
        if enable and feature in _PREVIEW_UNIMPLEMENTED:
            raise UnsupportedError(f"PreviewFeature.{feature.name} is not implemented "
                                   f"({_PREVIEW_UNIMPLEMENTED[feature]})")
        if not enable and feature in _PREVIEW_ALWAYS_ON:
            raise UnsupportedError(f"PreviewFeature.{feature.name} is always on (as in "
                                   f"TensorRT 10): profiles are shared across contexts")

    def get_preview_feature(self, feature: PreviewFeature) -> bool:
        return PreviewFeature(feature) in _PREVIEW_ALWAYS_ON

    def set_quantization_flag(self, flag: QuantizationFlag) -> None:
        """CALIBRATE_BEFORE_FUSION: the calibration sees the network before any fusion,
        which is what implicit INT8 calibration does here whatever the flag."""
        self._quantization_flags |= 1 << int(QuantizationFlag(flag))

    def clear_quantization_flag(self, flag: QuantizationFlag) -> None:
        self._quantization_flags &= ~(1 << int(QuantizationFlag(flag)))

    def get_quantization_flag(self, flag: QuantizationFlag) -> bool:
        return bool(self._quantization_flags >> int(QuantizationFlag(flag)) & 1)

    @property
    def quantization_flags(self) -> int:
        return self._quantization_flags

    def can_run_on_DLA(self, layer: Any) -> bool:  # noqa: N802 - TensorRT's name
        """False: there is no DLA here."""
        return False

    # -- flags ------------------------------------------------------------------------------
    @property
    def flags(self) -> int:
        return self._flags

    @flags.setter
    def flags(self, value: int) -> None:
        for flag in BuilderFlag:
            if value >> flag & 1:
                self._refuse_unimplemented(flag)
        self._flags = int(value)

    def set_flag(self, flag: BuilderFlag) -> None:
        self._refuse_unimplemented(BuilderFlag(flag))
        self._flags |= 1 << int(flag)

    def clear_flag(self, flag: BuilderFlag) -> None:
        self._flags &= ~(1 << int(flag))

    def get_flag(self, flag: BuilderFlag) -> bool:
        return bool(self._flags >> int(flag) & 1)

    @staticmethod
    def _refuse_unimplemented(flag: BuilderFlag) -> None:
        if flag in UNIMPLEMENTED_FLAGS:
            raise UnsupportedError(
                f"BuilderFlag.{flag.name} is not implemented yet ({UNIMPLEMENTED_FLAGS[flag]}); "
                f"refusing it rather than building without it")

    # -- memory -----------------------------------------------------------------------------
    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:
        if pool_size < 0:
            raise ValueError(f"memory pool limit must be >= 0, got {pool_size}")
        self._pool_limits[MemoryPoolType(pool)] = int(pool_size)

    def get_memory_pool_limit(self, pool: MemoryPoolType) -> int:
        # Unset, the workspace may use all device memory, as in TensorRT.
        return self._pool_limits.get(MemoryPoolType(pool), 1 << 62)

    # -- optimization profiles ----------------------------------------------------------------
    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        """Add a profile; returns its index, or -1 when it is invalid (as TensorRT)."""
        if not profile.is_valid():
            return -1
        self._profiles.append(profile)
        return len(self._profiles) - 1

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._profiles)

    # -- tactic sources -------------------------------------------------------------------------
    def set_tactic_sources(self, tactic_sources: int) -> bool:
        if tactic_sources < 0 or tactic_sources >> len(TacticSource):
            return False
        self._tactic_sources = int(tactic_sources)
        return True

    def get_tactic_sources(self) -> int:
        return self._tactic_sources

    def tactic_source_enabled(self, source: str | None) -> bool:
        """Whether tactics of ``source`` (a ``TacticSource`` name; None: a tactic of no
        library) may be used (an extension: the builder and its passes ask it)."""
        if source is None or source not in TacticSource.__members__:
            return True
        return bool(self._tactic_sources >> int(TacticSource[source]) & 1)

    # -- timing cache -----------------------------------------------------------------------
    def create_timing_cache(self, serialized_timing_cache: bytes = b"") -> ITimingCache:
        """A timing cache, empty or restored from ``ITimingCache.serialize()`` bytes."""
        return ITimingCache(serialized_timing_cache)

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        """Use ``cache`` for the builds of this config; False when it was made on another
        device and ``ignore_mismatch`` is False."""
        from engine.builder.build import device_key

        if not cache._bind(device_key(self.default_device_type), ignore_mismatch):
            return False
        self._timing_cache = cache
        self._timing_cache_ignore_mismatch = bool(ignore_mismatch)
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self._timing_cache

    def __enter__(self) -> IBuilderConfig:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
