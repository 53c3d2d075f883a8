"""The calibration cache in TensorRT's text format: a header line naming the library version
and the algorithm, then one ``tensor_name: scale`` line per tensor, the scale (range / 127) as
the 8 hex digits of its IEEE-754 float32 bits::

    TRT-0100-EntropyCalibration2
    input: 3c010204
    conv1_output: 3d8f5c29

>>> text = write_calibration_cache(CalibrationAlgoType.MINMAX_CALIBRATION, {"x": 0.5})
>>> text.splitlines()[1]
b'x: 3f000000'
>>> read_calibration_cache(text)
(<CalibrationAlgoType.MINMAX_CALIBRATION: 3>, {'x': 0.5})
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from engine.errors import BuildError
from engine.quantization.calibrator import CalibrationAlgoType
from engine.version import __version__

ALGORITHM_NAMES = {
    CalibrationAlgoType.LEGACY_CALIBRATION: "LegacyCalibration",
    CalibrationAlgoType.ENTROPY_CALIBRATION: "EntropyCalibration",
    CalibrationAlgoType.ENTROPY_CALIBRATION_2: "EntropyCalibration2",
    CalibrationAlgoType.MINMAX_CALIBRATION: "MinMaxCalibration",
}
_BY_NAME = {name: algo for algo, name in ALGORITHM_NAMES.items()}


def _version_digits() -> str:
    major, minor, *_ = (__version__.split(".") + ["0", "0"])
    return f"{int(major):02d}{int(minor):02d}"


def write_calibration_cache(algorithm: CalibrationAlgoType, scales: Mapping[str, float]
                            ) -> bytes:
    """The cache text (bytes) of per-tensor ``scales``."""
    lines = [f"TRT-{_version_digits()}-{ALGORITHM_NAMES[CalibrationAlgoType(algorithm)]}"]
    for name, scale in scales.items():
        bits = struct.unpack(">I", struct.pack(">f", float(scale)))[0]
        lines.append(f"{name}: {bits:08x}")
    return ("\n".join(lines) + "\n").encode()


def read_calibration_cache(data: bytes | bytearray | memoryview
                           ) -> tuple[CalibrationAlgoType, dict[str, float]]:
    """The algorithm and the per-tensor scales of a cache; ``BuildError`` saying what is
    malformed otherwise. Tensor names may contain ': ' (the last one separates the scale)."""
    try:
        text = bytes(data).decode()
    except UnicodeDecodeError as exc:
        raise BuildError(f"calibration cache is not text: {exc}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("TRT-"):
        raise BuildError("calibration cache has no 'TRT-<version>-<algorithm>' header line")
    algorithm_name = lines[0].rsplit("-", 1)[-1]
    if algorithm_name not in _BY_NAME:
        raise BuildError(f"calibration cache header {lines[0]!r} names an unknown algorithm; "
                         f"known: {sorted(_BY_NAME)}")
    scales: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        name, sep, digits = line.rpartition(": ")
        if not sep or len(digits.strip()) != 8:
            raise BuildError(f"calibration cache line {number} is not 'name: 8 hex digits': "
                             f"{line!r}")
        try:
            bits = int(digits.strip(), 16)
        except ValueError:
            raise BuildError(f"calibration cache line {number}: {digits!r} is not "
                             f"hexadecimal") from None
        scales[name] = struct.unpack(">f", struct.pack(">I", bits))[0]
    return _BY_NAME[algorithm_name], scales
