"""The ONNX node test cases through parser, builder and CPU runtime: the pass rate may only go
up. ``python -m engine.onnx.conformance`` runs the same cases and writes
docs/onnx-support.md; raise FLOOR when it reports more."""

from __future__ import annotations

import numpy as np
import pytest

from engine.onnx import conformance

# Passing cases of the 1,884 (see docs/onnx-support.md), recorded after the last full run.
FLOOR = 1210


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
    (case,) = conformance.collect_cases("^test_cast_FLOAT_to_DOUBLE$")
    result = conformance.run_case(case)
    assert not result.passed and "DOUBLE" in result.reason


def test_compare_is_strict_about_dtype_and_shape():
    a = np.zeros((2, 3), np.float32)
    assert conformance.compare(a, a) == ""
    assert "dtype" in conformance.compare(a, a.astype(np.float16))
    assert "shape" in conformance.compare(a, a.reshape(3, 2))
    assert "differ" in conformance.compare(a + 1e-2, a)
    assert conformance.compare(np.array([np.nan]), np.array([np.nan])) == ""
