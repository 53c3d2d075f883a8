"""Quantization: TensorRT's INT8 calibrators, the calibration that runs them, and the
calibration cache. The Q/DQ fusion passes live with the other passes in
``engine/builder/passes/quantize_*.py``."""

from __future__ import annotations

from engine.quantization.cache import read_calibration_cache, write_calibration_cache
from engine.quantization.calibration import calibrate
from engine.quantization.calibrator import (
    CalibrationAlgoType,
    IInt8Calibrator,
    IInt8EntropyCalibrator,
    IInt8EntropyCalibrator2,
    IInt8LegacyCalibrator,
    IInt8MinMaxCalibrator,
)

__all__ = [
    "CalibrationAlgoType", "IInt8Calibrator", "IInt8EntropyCalibrator",
    "IInt8EntropyCalibrator2", "IInt8LegacyCalibrator", "IInt8MinMaxCalibrator", "calibrate",
    "read_calibration_cache", "write_calibration_cache",
]
