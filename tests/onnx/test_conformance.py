"""The ONNX node test cases through parser, builder and CPU runtime: the pass rate may only go
up. ``python -m engine.onnx.conformance`` runs the same cases and writes
docs/onnx-support.md; raise FLOOR when it reports more."""

from __future__ import annotations

import numpy as np
import pytest

from engine.onnx import conformance

# Passing cases of the 1,884 (see docs/onnx-support.md), recorded after the last full run.
FLOOR = 1754


@pytest.mark.slow
def test_pass_rate_does_not_drop():
    results = conformance.run_all(jobs=2)
    passed = [r for r in results if r.passed]
    assert len(results) >= 1800
    failures = sorted(f"{r.name}: {r.stage}: {r.reason}" for r in results if not r.passed)
    assert len(passed) >= FLOOR, (f"{len(passed)} of {len(results)} cases pass, below the floor "
                                  f"of {FLOOR}; failures:\n" + "\n".join(failures[:80]))


@pytest.mark.parametrize("name", ["test_relu", "test_conv_with_strides_padding",
                                  "test_gemm_all_attributes", "test_reshape_negative_dim",
                                  "test_softmax_axis_1", "test_slice", "test_concat_3d_axis_1",
                                  "test_batchnorm_example", "test_resize_upsample_scales_nearest",
                                  "test_maxpool_2d_ceil"])
def test_representative_cases_pass(name):
    (case,) = conformance.collect_cases(f"^{name}$")
    result = conformance.run_case(case)
    assert result.passed, f"{result.stage}: {result.reason}"


def test_a_case_that_cannot_pass_reports_why():
    (case,) = conformance.collect_cases("^test_equal_string$")
    result = conformance.run_case(case)
    assert not result.passed and "STRING" in result.reason


def test_double_cases_pass_narrowed_to_float():
    (case,) = conformance.collect_cases("^test_cast_FLOAT_to_DOUBLE$")
    result = conformance.run_case(case)
    assert result.passed and result.narrowed, f"{result.stage}: {result.reason}"
    (plain,) = conformance.collect_cases("^test_relu$")
    assert not conformance.run_case(plain).narrowed


def test_compare_accepts_narrowed_types_only_when_asked():
    want = np.array([1.0, 2.0 + 1e-9], np.float64)
    assert "dtype" in conformance.compare(want.astype(np.float32), want)
    assert conformance.compare(want.astype(np.float32), want, allow_narrowed=True) == ""
    assert "differ" in conformance.compare(np.array([1.0, 2.1], np.float32), want,
                                           allow_narrowed=True)
    ints = np.array([-3, 70], np.int16)
    assert conformance.compare(ints.astype(np.int32), ints, allow_narrowed=True) == ""
    assert "dtype" in conformance.compare(ints.astype(np.int64), ints, allow_narrowed=True)


def test_compare_is_strict_about_dtype_and_shape():
    a = np.zeros((2, 3), np.float32)
    assert conformance.compare(a, a) == ""
    assert "dtype" in conformance.compare(a, a.astype(np.float16))
    assert "shape" in conformance.compare(a, a.reshape(3, 2))
    assert "differ" in conformance.compare(a + 1e-2, a)
    assert conformance.compare(np.array([np.nan]), np.array([np.nan])) == ""


def test_widened_and_emulated_cases_are_labelled():
    (widened,) = conformance.collect_cases("^test_cast_FLOAT8E5M2_to_FLOAT$")
    result = conformance.run_case(widened)
    assert result.passed and result.widened and not result.emulated, result.reason
    (emulated,) = conformance.collect_cases("^test_cast_FLOAT_to_FLOAT8E5M2$")
    result = conformance.run_case(emulated)
    assert result.passed and result.emulated, result.reason


def test_compare_widens_only_the_narrow_expected_types():
    import ml_dtypes

    want = np.array([1.5, -448.0, np.nan], np.float32).astype(ml_dtypes.float8_e5m2)
    assert conformance.compare(want.astype(np.float32), want, allow_narrowed=True) == ""
    assert "dtype" in conformance.compare(want.astype(np.float32), want)
    assert "differ" in conformance.compare(np.array([1.75, -448.0, np.nan], np.float32), want,
                                           allow_narrowed=True)
