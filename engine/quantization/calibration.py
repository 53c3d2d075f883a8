"""Calibration: run the network in FP32 over a calibrator's batches and choose a scale per
tensor with the calibrator's algorithm; read and write the calibration cache around it.

The network runs on the host with the CPU kernels, whatever the build's target: calibration
is a build-time measurement, and its batches are host memory.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from engine.errors import BuildError
from engine.kernels.cpu import evaluate
from engine.logger import ILogger, Severity, log
from engine.network.definition import INetworkDefinition
from engine.network.inference import topological_order
from engine.network.layer import LayerType
from engine.network.tensor import ITensor
from engine.quantization.cache import read_calibration_cache, write_calibration_cache
from engine.quantization.calibrator import CalibrationAlgoType, IInt8Calibrator
from engine.quantization.ranges import TensorRanges, entropy_amax, quantile_amax
from engine.types import DataType, nbytes_of, nptype

INT8_MAX = 127.0
_REAL = (DataType.FLOAT, DataType.HALF, DataType.BF16)


def read_batch(pointer: Any, shape: Sequence[int], dtype: DataType, name: str) -> np.ndarray:
    """A copy of one input's batch: from a host pointer (an int), or an array as given."""
    if isinstance(pointer, np.ndarray):
        if tuple(pointer.shape) != tuple(shape) and pointer.size != int(np.prod(shape)):
            raise BuildError(f"calibration batch for input '{name}' has shape "
                             f"{pointer.shape}, expected {tuple(shape)}")
        return np.array(pointer, dtype=nptype(dtype)).reshape(tuple(shape))
    if not isinstance(pointer, (int, np.integer)) or int(pointer) == 0:
        raise BuildError(f"calibrator's get_batch gave {pointer!r} for input '{name}'; expected "
                         f"a host pointer (numpy_array.ctypes.data) or an array")
    nbytes = nbytes_of(dtype, shape)
    raw = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(int(pointer)))
    return raw.view(nptype(dtype)).reshape(tuple(shape)).copy()


def collect_batches(calibrator: IInt8Calibrator, inputs: Sequence[ITensor],
                    shapes: Mapping[str, Sequence[int]]) -> list[dict[ITensor, np.ndarray]]:
    """Every batch the calibrator gives, copied (calibration reads them twice)."""
    names = [t.name for t in inputs]
    batches = []
    while True:
        pointers = calibrator.get_batch(names)
        if pointers is None or len(pointers) == 0:
            break
        if len(pointers) != len(names):
            raise BuildError(f"calibrator's get_batch({names}) returned {len(pointers)} "
                             f"pointers; expected one per input")
        batches.append({t: read_batch(p, shapes[t.name], t.dtype, t.name)
                        for t, p in zip(inputs, pointers)})
    if not batches:
        raise BuildError("the INT8 calibrator gave no batches (get_batch returned None at once)")
    return batches


def run_fp32(network: INetworkDefinition, feeds: Mapping[ITensor, np.ndarray],
             visit: Callable[[str, np.ndarray], None]) -> None:
    """Run ``network`` on the host and call ``visit(name, value)`` for each real-valued
    activation (network inputs and layer outputs that are not constants)."""
    env: dict[ITensor, np.ndarray] = dict(feeds)
    for tensor, value in feeds.items():
        if tensor.dtype in _REAL:
            visit(tensor.name, value)
    for layer in topological_order(network._layers):
        args = [None if t is None else env[t] for t in layer._inputs]
        outputs = evaluate(layer, args)
        for tensor, value in zip(layer._outputs, outputs):
            env[tensor] = value
            if layer.layer_type != LayerType.CONSTANT and tensor.dtype in _REAL:
                visit(tensor.name, np.asarray(value))


def calibrate(network: INetworkDefinition, calibrator: IInt8Calibrator,
              shapes: Mapping[str, Sequence[int]], logger: ILogger | None = None
              ) -> dict[str, float]:
    """Per-tensor INT8 scales (range / 127) of ``network``'s activations, from the
    calibrator's cache when it has one for its algorithm, else by running its batches."""
    algorithm = CalibrationAlgoType(calibrator.get_algorithm())
    cached = calibrator.read_calibration_cache()
    if cached:
        cached_algorithm, scales = read_calibration_cache(cached)
        if cached_algorithm == algorithm:
            log(logger, Severity.INFO, f"calibration: {len(scales)} scales read from the "
                                       f"calibration cache")
            return scales
        log(logger, Severity.WARNING, f"calibration cache was written by "
                                      f"{cached_algorithm.name}, the calibrator uses "
                                      f"{algorithm.name}: calibrating again")
    batches = collect_batches(calibrator, network._inputs, shapes)
    ranges = TensorRanges()
    for feeds in batches:
        run_fp32(network, feeds, ranges.observe_amax)
    if algorithm != CalibrationAlgoType.MINMAX_CALIBRATION:
        for feeds in batches:
            run_fp32(network, feeds, ranges.observe_histogram)
    scales = {}
    for name, amax in ranges.amax.items():
        histogram = ranges.histograms.get(name)
        if histogram is not None and algorithm in (CalibrationAlgoType.ENTROPY_CALIBRATION,
                                                   CalibrationAlgoType.ENTROPY_CALIBRATION_2):
            amax = entropy_amax(histogram, amax)
        elif histogram is not None and algorithm == CalibrationAlgoType.LEGACY_CALIBRATION:
            amax = quantile_amax(histogram, amax, calibrator.get_quantile())  # type: ignore[attr-defined]
        if amax > 0:
            scales[name] = amax / INT8_MAX
    log(logger, Severity.INFO, f"calibration ({algorithm.name}): {len(batches)} batches, "
                               f"{len(scales)} tensor scales")
    calibrator.write_calibration_cache(memoryview(write_calibration_cache(algorithm, scales)))
    return scales
