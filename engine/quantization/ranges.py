"""From observed values to a tensor's range (``amax``: values in [-amax, amax] map onto the
INT8 codes [-127, 127], scale = amax / 127), one function per calibration algorithm.

``TensorRanges`` gathers what they need over the calibration batches: the largest magnitude,
then (for the entropy and quantile methods) a histogram of magnitudes on [0, amax].
"""

from __future__ import annotations

import numpy as np

HISTOGRAM_BINS = 2048
QUANTIZED_BINS = 128  # the INT8 magnitudes 0..127


def entropy_amax(histogram: np.ndarray, amax: float) -> float:
    """The clipping threshold whose 128-level quantization of the magnitude histogram loses
    the least information: the smallest KL divergence between the clipped reference P (values
    beyond the threshold folded into its last bin) and its quantized expansion Q."""
    hist = np.asarray(histogram, np.float64)
    bins = hist.size
    if amax <= 0 or hist.sum() == 0:
        return float(amax)
    width = amax / bins
    best, best_kl = bins, np.inf
    for i in range(QUANTIZED_BINS, bins + 1):
        sliced = hist[:i]
        p = sliced.copy()
        p[-1] += hist[i:].sum()
        chunk = np.arange(i) * QUANTIZED_BINS // i  # which quantized level each bin joins
        nonzero = sliced != 0
        sums = np.bincount(chunk, weights=sliced, minlength=QUANTIZED_BINS)
        counts = np.bincount(chunk, weights=nonzero, minlength=QUANTIZED_BINS)
        q = np.where(nonzero, sums[chunk] / np.maximum(counts[chunk], 1), 0.0)
        kl = _kl_divergence(p, q)
        if kl < best_kl:
            best, best_kl = i, kl
    return float(best * width)


def _kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-4) -> float:
    """KL(P || Q) of two unnormalized histograms; empty Q bins under a non-empty P bin are
    smoothed to ``eps`` (relative to Q's mass) instead of making the divergence infinite."""
    p = p / p.sum()
    q_total = q.sum()
    if q_total == 0:
        return np.inf
    q = q / q_total
    mask = p > 0
    q = np.where(mask & (q == 0), eps, q)
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def quantile_amax(histogram: np.ndarray, amax: float, quantile: float) -> float:
    """The magnitude below which a ``quantile`` fraction of the values lie."""
    hist = np.asarray(histogram, np.float64)
    total = hist.sum()
    if amax <= 0 or total == 0:
        return float(amax)
    cdf = np.cumsum(hist) / total
    index = int(np.searchsorted(cdf, min(max(quantile, 0.0), 1.0)))
    return float(min(index + 1, hist.size) * amax / hist.size)


class TensorRanges:
    """Magnitude statistics of named tensors over calibration batches (two passes)."""

    def __init__(self) -> None:
        self.amax: dict[str, float] = {}
        self.histograms: dict[str, np.ndarray] = {}

    def observe_amax(self, name: str, values: np.ndarray) -> None:
        magnitude = float(np.max(np.abs(values))) if values.size else 0.0
        if np.isfinite(magnitude):
            self.amax[name] = max(self.amax.get(name, 0.0), magnitude)

    def observe_histogram(self, name: str, values: np.ndarray) -> None:
        amax = self.amax.get(name, 0.0)
        if amax <= 0 or not values.size:
            return
        counts, _ = np.histogram(np.abs(values.astype(np.float32)), bins=HISTOGRAM_BINS,
                                 range=(0.0, amax))
        if name in self.histograms:
            self.histograms[name] += counts
        else:
            self.histograms[name] = counts.astype(np.int64)
