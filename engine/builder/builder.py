"""``Builder``: creates networks, configurations and profiles, and builds plans.

>>> import engine as trt
>>> builder = trt.Builder(trt.Logger())
>>> network = builder.create_network(0)
>>> x = network.add_input("x", trt.float32, (1, 4))
>>> network.mark_output(network.add_identity(x).get_output(0))
>>> plan = builder.build_serialized_network(network, builder.create_builder_config())
>>> plan.nbytes > 0
True
"""

from __future__ import annotations

import mmap
import os
from typing import Any

from engine.builder.build import build_plan
from engine.builder.config import IBuilderConfig
from engine.builder.profile import IOptimizationProfile
from engine.error_recorder import ErrorCodeTRT, record_error
from engine.errors import BuildError, NetworkError, UnsupportedError
from engine.kernels.backends import gpu_available
from engine.logger import ILogger, Severity, log
from engine.network.definition import INetworkDefinition
from engine.types import DataType


class IHostMemory(mmap.mmap):
    """Memory owned by the library (a serialized plan); supports the buffer protocol
    (``memoryview(plan)``, ``bytes(plan)``, ``f.write(plan)``).

    ``IHostMemory(size)`` is ``size`` zero bytes; ``IHostMemory(data)`` a copy of ``data``.
    The memory is an anonymous mapping that asks for huge pages: the builder writes plans of
    a hundred megabytes into it, and 4 KiB pages cost that write tens of thousands of page
    faults (as long as the copy itself).
    """

    def __new__(cls, data: Any) -> IHostMemory:
        view = None if isinstance(data, int) else memoryview(data).cast("B")
        size = len(view) if view is not None else data
        if hasattr(mmap, "MAP_PRIVATE"):
            memory = super().__new__(cls, -1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        else:  # Windows: no flags; an anonymous map is private there
            memory = super().__new__(cls, -1, size)
        if hasattr(mmap, "MADV_HUGEPAGE"):
            memory.madvise(mmap.MADV_HUGEPAGE)
        if view is not None:
            memory[:] = view
        return memory

    @property
    def nbytes(self) -> int:
        return len(self)

    @property
    def dtype(self) -> DataType:
        return DataType.UINT8

    def __eq__(self, other: object) -> bool:
        try:
            return memoryview(self) == memoryview(other)  # type: ignore[arg-type]
        except TypeError:
            return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class Builder:
    """Builds optimized plans from network definitions."""

    def __init__(self, logger: ILogger) -> None:
        self.logger = logger
        self.max_threads = os.cpu_count() or 1
        self.error_recorder: Any = None  # an IErrorRecorder; its networks inherit it

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        """A new, empty network; ``flags`` is a bit mask of NetworkDefinitionCreationFlag."""
        network = INetworkDefinition(flags)
        network.error_recorder = self.error_recorder
        return network

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_serialized_network(
        self, network: INetworkDefinition, config: IBuilderConfig
    ) -> IHostMemory | None:
        """Build a plan; None when the build fails, with the reason logged as an ERROR."""
        try:
            return build_plan(network, config, self.logger, IHostMemory)  # type: ignore[no-any-return]
        except (BuildError, NetworkError, UnsupportedError) as exc:
            log(self.logger, Severity.ERROR, f"build failed: {exc}")
            code = ErrorCodeTRT.INVALID_ARGUMENT if isinstance(exc, NetworkError) else \
                ErrorCodeTRT.UNSUPPORTED_STATE if isinstance(exc, UnsupportedError) else \
                ErrorCodeTRT.INVALID_CONFIG
            record_error(self.error_recorder, code, f"build failed: {exc}")
            return None

    def build_engine_with_config(self, network: INetworkDefinition, config: IBuilderConfig
                                 ) -> Any:
        """Build and deserialize in one call: the engine, or None when the build fails (the
        reason logged as an ERROR)."""
        from engine.runtime.runtime import Runtime

        plan = self.build_serialized_network(network, config)
        return None if plan is None else Runtime(self.logger).deserialize_cuda_engine(plan)

    def get_plugin_registry(self) -> Any:
        """The plugin registry builds consult (the process-wide one)."""
        from engine.plugins.registry import get_plugin_registry

        return get_plugin_registry()

    def reset(self) -> None:
        """TensorRT's ``reset``: the builder keeps no state between builds here."""

    def is_network_supported(self, network: INetworkDefinition, config: IBuilderConfig) -> bool:
        """Whether ``build_serialized_network`` would succeed (it builds, and discards)."""
        try:
            build_plan(network, config, None)
        except (BuildError, NetworkError, UnsupportedError):
            return False
        return True

    @property
    def platform_has_fast_fp16(self) -> bool:
        return gpu_available()

    @property
    def platform_has_fast_int8(self) -> bool:
        return gpu_available()

    @property
    def platform_has_tf32(self) -> bool:
        return gpu_available()

    @property
    def num_DLA_cores(self) -> int:  # noqa: N802 - TensorRT's name
        return 0

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
