"""Quantiles from the engine's log-spaced latency histograms.

Bucket 0 holds values below 1 µs (reported as 0); bucket ``k >= 1`` holds
``[LH_MIN·r^(k-1), LH_MIN·r^k)`` with ``r = 1.01``. Within a bucket the CDF is
interpolated geometrically, so a quantile is within 0.5 % of the exact one.
"""

from __future__ import annotations

import math

import numpy as np

from devopsim.engine.request.layout import LH_MIN, LH_N, LH_RATIO

__all__ = ["QUANTILES", "latency_block", "lh_indices", "quantile"]

QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}
_EDGES = np.concatenate(([0.0], LH_MIN * LH_RATIO ** np.arange(LH_N - 1)))


def lh_indices(x: np.ndarray) -> np.ndarray:
    """Bucket of each value in the engine's log-spaced latency histogram (as the kernel files them)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        i = 1 + np.floor(np.log(np.maximum(x, LH_MIN) / LH_MIN) / math.log(LH_RATIO)).astype(np.int64)
    i = np.where(x < LH_MIN, 0, i)
    return np.clip(i, 0, LH_N - 1)


def quantile(hist: np.ndarray, q: float) -> float | None:
    """The ``q``-quantile of a histogram, or ``None`` when it is empty."""
    total = float(hist.sum())
    if total <= 0:
        return None
    target = q * total
    cum = np.cumsum(hist)
    k = int(np.searchsorted(cum, target, side="left"))
    k = min(k, LH_N - 1)
    if k == 0:
        return 0.0
    below = cum[k - 1]
    inside = hist[k]
    frac = (target - below) / inside if inside else 1.0
    lo = _EDGES[k]
    return float(lo * math.pow(LH_RATIO, min(max(frac, 0.0), 1.0)))


def latency_block(
    hist: np.ndarray, total: float, count: float, keys: tuple[str, ...] = tuple(QUANTILES)
) -> dict[str, float | None]:
    """``{"mean": ..., "p50": ..., ...}`` from a sum, a count and a histogram."""
    out: dict[str, float | None] = {"mean": (total / count) if count > 0 else None}
    for name in keys:
        v = quantile(hist, QUANTILES[name])
        out[name] = None if v is None else round(v, 9)
    if out["mean"] is not None:
        out["mean"] = round(float(out["mean"]), 9)
    return out
