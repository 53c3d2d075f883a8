"""Element-wise comparison of two runners' outputs, as Polygraphy's default compare function:
an element mismatches when its absolute error exceeds ``atol`` *and* its relative error
(against the reference) exceeds ``rtol``; NaN mismatches unless both sides are NaN.

>>> import numpy as np
>>> result = compare_output("y", np.array([1.0, 2.0]), np.array([1.0, 2.1]), 1e-5, 1e-5)
>>> result.passed, result.mismatches
(False, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OutputComparison:
    name: str
    passed: bool
    shape_mismatch: str | None  # why the shapes disagree, or None
    max_abs: float
    mean_abs: float
    max_rel: float
    mean_rel: float
    mismatches: int
    count: int
    worst_index: tuple[int, ...]  # where the absolute error is largest

    def lines(self, atol: float, rtol: float) -> list[str]:
        verdict = "PASSED" if self.passed else "FAILED"
        if self.shape_mismatch is not None:
            return [f"{verdict} | Output: '{self.name}' | {self.shape_mismatch}"]
        return [
            f"Error Metrics: {self.name}",
            f"    Minimum Required Tolerance: elemwise error | [abs={self.max_abs:.5g}] OR "
            f"[rel={self.max_rel:.5g}] (requirements may be lower if both abs/rel tolerances "
            f"are set)",
            f"    Absolute Difference | max={self.max_abs:.5g} at {self.worst_index}, "
            f"mean={self.mean_abs:.5g}",
            f"    Relative Difference | max={self.max_rel:.5g}, mean={self.mean_rel:.5g}",
            f"    Mismatched elements: {self.mismatches} / {self.count}",
            f"{verdict} | Output: '{self.name}' | Difference is "
            f"{'within' if self.passed else 'NOT within'} tolerance (rel={rtol:g}, abs={atol:g})",
        ]


def compare_output(name: str, actual: np.ndarray, reference: np.ndarray, atol: float,
                   rtol: float) -> OutputComparison:
    """Compare ``actual`` (this engine) with ``reference`` (e.g. onnxruntime)."""
    if actual.shape != reference.shape:
        return OutputComparison(name, False, f"shape {actual.shape} differs from the "
                                f"reference's {reference.shape}", np.inf, np.inf, np.inf,
                                np.inf, int(reference.size), int(reference.size), ())
    if actual.dtype == np.bool_ or reference.dtype == np.bool_ or actual.dtype.kind in "iu":
        a = actual.astype(np.float64)
        r = reference.astype(np.float64)
    else:
        a = actual.astype(np.float64, copy=False)
        r = reference.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        both_nan = np.isnan(a) & np.isnan(r)
        same_inf = np.isinf(a) & (a == r)
        absdiff = np.where(both_nan | same_inf, 0.0, np.abs(a - r))
        absdiff = np.where(np.isnan(absdiff), np.inf, absdiff)
        magnitude = np.abs(r)
        reldiff = np.where(absdiff == 0, 0.0,
                           np.divide(absdiff, magnitude, out=np.full_like(absdiff, np.inf),
                                     where=magnitude > 0))
    mismatched = (absdiff > atol) & (reldiff > rtol)
    count = int(absdiff.size)
    if count == 0:
        return OutputComparison(name, True, None, 0.0, 0.0, 0.0, 0.0, 0, 0, ())
    worst = np.unravel_index(int(np.argmax(absdiff)), absdiff.shape)
    return OutputComparison(
        name=name, passed=not bool(mismatched.any()), shape_mismatch=None,
        max_abs=float(absdiff.max()), mean_abs=float(absdiff.mean()),
        max_rel=float(reldiff.max()), mean_rel=float(reldiff.mean()),
        mismatches=int(mismatched.sum()), count=count,
        worst_index=tuple(int(i) for i in worst))
