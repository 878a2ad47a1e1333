"""Activation statistics and the ranges (amax) they give: entropy (KL), percentile, minmax. NumPy only.

One `TensorStats` per tensor holds the absolute maximum seen and a histogram of |x| over
[0, absmax] in NUM_BINS bins. Collection runs in two passes over the calibration frames (absmax
first, then histograms over the final range), so histograms never need re-binning.

Entropy follows TensorRT's IInt8EntropyCalibrator2 (the algorithm of Migacz, "8-bit Inference with
TensorRT", GTC 2017): for every candidate threshold bin i in [128, 2048], the reference
distribution P is the histogram clipped at i (the outliers added to its last bin), the candidate Q
is P's first i bins merged into 128 levels and expanded back over the non-empty bins; the threshold
with the smallest KL(P || Q) wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NUM_BINS = 2048
NUM_QUANT_LEVELS = 128  # int8 symmetric: |q| <= 127, 128 levels of magnitude
DEFAULT_PERCENTILE = 99.999  # 99.99 lost 3.0 points of synthetic end-to-end on the stage-6 model, this 1.0
METHODS = ("entropy", "percentile", "minmax")


@dataclass
class TensorStats:
    """|x| statistics of one tensor over the calibration set."""

    absmax: float = 0.0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(NUM_BINS, dtype=np.int64))
    count: int = 0  # values seen in the histogram pass

    def update_absmax(self, x: np.ndarray) -> None:
        if x.size:
            m = float(np.max(np.abs(x)))
            if np.isfinite(m):
                self.absmax = max(self.absmax, m)

    def update_hist(self, x: np.ndarray) -> None:
        a = np.abs(np.asarray(x, dtype=np.float32)).ravel()
        a = a[np.isfinite(a)]
        if not a.size:
            return
        top = self.absmax if self.absmax > 0 else 1.0
        h, _ = np.histogram(np.minimum(a, top), bins=NUM_BINS, range=(0.0, top))
        self.hist += h
        self.count += a.size

    def to_json(self) -> dict:
        return {"absmax": self.absmax, "count": self.count, "hist": self.hist.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "TensorStats":
        hist = np.asarray(d["hist"], dtype=np.int64)
        if hist.shape != (NUM_BINS,):
            raise ValueError(f"histogram of {hist.shape[0] if hist.ndim == 1 else hist.shape} bins, expected {NUM_BINS}")
        return cls(absmax=float(d["absmax"]), hist=hist, count=int(d["count"]))


def _smooth(counts: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Move `eps` of mass into every empty bin (taken evenly from the others), so KL stays finite
    where a candidate leaves a bin empty that the reference fills (MXNet's and ONNX Runtime's smoothing)."""
    zeros = counts == 0
    n_zero = int(zeros.sum())
    n_nonzero = counts.size - n_zero
    if n_nonzero == 0:
        return counts.astype(np.float64)
    return counts + np.where(zeros, eps, -eps * n_zero / n_nonzero)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) of two histograms of counts (smoothed, then normalized here)."""
    p, q = _smooth(p), _smooth(q)
    if np.any(p <= 0) or np.any(q <= 0):
        return float("inf")
    p = p / p.sum()
    q = q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def entropy_threshold_bin(hist: np.ndarray, levels: int = NUM_QUANT_LEVELS) -> int:
    """The bin index i (levels <= i <= len(hist)) whose edge minimizes KL(P_i || Q_i), TensorRT-style."""
    hist = np.asarray(hist, dtype=np.float64)
    n = hist.size
    if n <= levels or hist.sum() == 0:
        return n
    best_i, best_kl = n, float("inf")
    total_tail = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # total_tail[i] = sum(hist[i:])
    for i in range(levels, n + 1):
        p = hist[:i].copy()
        p[i - 1] += total_tail[i]
        if p.sum() == 0:
            continue
        ref = hist[:i]
        nonzero = p != 0
        # Merge the i bins into `levels` groups, then spread each group's mass evenly over its
        # non-empty bins (empty bins stay empty: they had no values to quantize).
        edges = (np.arange(levels + 1) * i) // levels
        group = np.repeat(np.arange(levels), np.diff(edges))
        sums = np.add.reduceat(ref, edges[:-1])
        counts = np.add.reduceat(nonzero.astype(np.float64), edges[:-1])
        q = np.where(nonzero, sums[group] / np.maximum(counts[group], 1.0), 0.0)
        kl = _kl(p, q) if q.sum() > 0 else float("inf")
        if kl < best_kl:
            best_kl, best_i = kl, i
    return best_i


def amax_from_stats(stats: TensorStats, method: str, percentile: float = DEFAULT_PERCENTILE) -> float:
    """The clipping range |x| <= amax of one tensor for `method` (entropy, percentile or minmax)."""
    if method not in METHODS:
        raise ValueError(f"calibration method {method!r}: not known, expected one of {', '.join(METHODS)}")
    if stats.absmax <= 0 or method == "minmax" or stats.hist.sum() == 0:
        return float(stats.absmax)
    width = stats.absmax / NUM_BINS
    if method == "percentile":
        cdf = np.cumsum(stats.hist) / stats.hist.sum()
        i = int(np.searchsorted(cdf, percentile / 100.0)) + 1
        return float(min(i, NUM_BINS) * width)
    return float(entropy_threshold_bin(stats.hist) * width)
