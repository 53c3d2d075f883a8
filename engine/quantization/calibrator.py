"""TensorRT's INT8 calibrator interfaces: subclass one, hand it to ``config.int8_calibrator``
with ``BuilderFlag.INT8`` set, and the builder runs the network in FP32 over its batches to
choose a scale for every tensor (implicit quantization).

>>> import numpy as np, engine as trt
>>> class Calibrator(trt.IInt8EntropyCalibrator2):
...     def __init__(self, batches):
...         trt.IInt8EntropyCalibrator2.__init__(self)
...         self.batches = iter(batches)
...         self.current = None
...     def get_batch_size(self):
...         return 8
...     def get_batch(self, names):
...         self.current = next(self.batches, None)  # keep the array alive
...         return None if self.current is None else [self.current.ctypes.data]
>>> calibrator = Calibrator([np.ones((8, 4), np.float32)])
>>> calibrator.get_algorithm()
<CalibrationAlgoType.ENTROPY_CALIBRATION_2: 2>

``get_batch(names)`` returns one host pointer per name (``numpy_array.ctypes.data``; a NumPy
array itself is accepted too), or None when the batches are exhausted. The caller keeps the
memory alive until the next call, as in TensorRT.
"""

from __future__ import annotations

import enum
from typing import Any


class CalibrationAlgoType(enum.IntEnum):
    """How a calibrator turns observed values into a tensor's range (TensorRT's values)."""

    LEGACY_CALIBRATION = 0
    ENTROPY_CALIBRATION = 1
    ENTROPY_CALIBRATION_2 = 2
    MINMAX_CALIBRATION = 3


class IInt8Calibrator:
    """Base of the calibrators: batches in, a calibration cache out (and back in)."""

    def __init__(self) -> None:
        pass

    def get_batch_size(self) -> int:
        """The batch size of the calibration batches."""
        raise NotImplementedError("calibrators implement get_batch_size()")

    def get_batch(self, names: list[str]) -> list[Any] | None:
        """Host pointers (or arrays) of the next batch, one per input name; None at the end."""
        raise NotImplementedError("calibrators implement get_batch(names)")

    def get_algorithm(self) -> CalibrationAlgoType:
        raise NotImplementedError("use one of the calibrator classes, e.g. "
                                  "IInt8EntropyCalibrator2")

    def read_calibration_cache(self) -> bytes | None:
        """A cache written by ``write_calibration_cache`` earlier, or None to calibrate."""
        return None

    def write_calibration_cache(self, cache: memoryview) -> None:
        """Save the calibration cache (TensorRT's text format) for later builds."""


class IInt8EntropyCalibrator2(IInt8Calibrator):
    """Ranges that minimize the KL divergence between the FP32 and INT8 distributions."""

    def get_algorithm(self) -> CalibrationAlgoType:
        return CalibrationAlgoType.ENTROPY_CALIBRATION_2


class IInt8EntropyCalibrator(IInt8Calibrator):
    """The original entropy calibrator; here it shares IInt8EntropyCalibrator2's KL search
    (only the cache header tells them apart)."""

    def get_algorithm(self) -> CalibrationAlgoType:
        return CalibrationAlgoType.ENTROPY_CALIBRATION


class IInt8MinMaxCalibrator(IInt8Calibrator):
    """Ranges that cover every observed value (the largest magnitude)."""

    def get_algorithm(self) -> CalibrationAlgoType:
        return CalibrationAlgoType.MINMAX_CALIBRATION


class IInt8LegacyCalibrator(IInt8Calibrator):
    """Ranges at the ``quantile`` of the observed magnitudes (TensorRT 2's calibrator).

    Only the quantile method is implemented: ``regression_cutoff`` is kept for the interface
    and not used.
    """

    def __init__(self) -> None:
        super().__init__()
        self.quantile = 0.9999
        self.regression_cutoff = 1.0

    def get_algorithm(self) -> CalibrationAlgoType:
        return CalibrationAlgoType.LEGACY_CALIBRATION

    def get_quantile(self) -> float:
        return float(self.quantile)

    def get_regression_cutoff(self) -> float:
        return float(self.regression_cutoff)
