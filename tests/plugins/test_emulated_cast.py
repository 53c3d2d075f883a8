"""``EmulatedCast_TRT``: rounding to types TensorRT lacks, carried widened."""

import ml_dtypes
import numpy as np
import pytest

import engine as trt
from tests.plugins.test_library import make_plugin, run_plugin


def test_float8_e5m2_saturates_or_overflows_to_infinity():
    x = np.array([1.1, 70000.0, -1e6, np.inf, np.nan, 3e-6], np.float32)
    (sat,) = run_plugin("EmulatedCast_TRT", {"x": x}, to=19, saturate=1)
    (raw,) = run_plugin("EmulatedCast_TRT", {"x": x}, to=19, saturate=0)
    assert sat.dtype == np.float32
    np.testing.assert_array_equal(sat[:4], [1.0, 57344.0, -57344.0, 57344.0])
    np.testing.assert_array_equal(raw[:4], [1.0, np.inf, -np.inf, np.inf])
    assert np.isnan(sat[4]) and np.isnan(raw[4])
    assert sat[5] == float(np.float32(3e-6).astype(ml_dtypes.float8_e5m2))


def test_uint4_wraps_like_onnx_cast_and_is_carried_in_int8():
    x = np.array([3.0, 17.0, -1.0, 15.0], np.float32)
    (out,) = run_plugin("EmulatedCast_TRT", {"x": x}, to=21, saturate=1)
    assert out.dtype == np.int8
    assert list(out) == [3, 1, 15, 15]


def test_unknown_target_is_refused():
    with pytest.raises(ValueError, match="'to' must be one of"):
        make_plugin("EmulatedCast_TRT", to=int(trt.DataType.FLOAT) + 100)
