"""Time series for plots, computed from a run's metric store the way PromQL would.

A report plots a few thousand points per line at most, so every series is
put on a *grid*: every ``k``-th scrape time, with ``k`` chosen so that a run
has at most :data:`MAX_POINTS` grid points. On that grid

* a counter becomes ``sum by (...) (increase(x[step])) / step`` (a rate per
  second over the grid step; a series that appears mid-run counts from 0, as a
  new pod's counters do, and a counter that goes down was reset);
* a gauge becomes ``sum by (...) (x)`` at each grid time (what a range query
  with that step would show);
* a histogram becomes ``histogram_quantile(q, sum by (le, ...) (increase(x_bucket[step])))``
  with Prometheus' own interpolation rules (:func:`histogram_quantile`).

Samples are read straight from the store's columns in scrape order, one time
slice at a time, so memory grows with the number of series, not of samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from devopsim.observe.store import MetricStore

__all__ = ["MAX_POINTS", "Grid", "histogram_quantile"]

MAX_POINTS = 1500


def histogram_quantile(q: float, upper: Sequence[float], cumulative: np.ndarray) -> np.ndarray:
    """Prometheus' ``histogram_quantile`` over rows of cumulative bucket counts.

    Args:
        q: the quantile (0 to 1; below 0 gives -Inf, above 1 +Inf, as Prometheus does).
        upper: the buckets' upper bounds (``le``), ascending, the last one ``+Inf``.
        cumulative: counts per bucket, shape ``(rows, buckets)`` or ``(buckets,)``;
            each row's counts are cumulative (``le`` semantics).

    Returns:
        One value per row: linear interpolation inside the bucket that holds the
        rank, the first bucket starting at 0, the upper bound of the last finite
        bucket when the rank falls in the ``+Inf`` bucket, NaN for an empty row.

    Raises:
        ValueError: the bounds are not ascending or do not end with ``+Inf``.
    """
    ub = np.asarray(upper, dtype=np.float64)
    counts = np.atleast_2d(np.asarray(cumulative, dtype=np.float64))
    rows = counts.shape[0]
    if ub.ndim != 1 or ub.size != counts.shape[1]:
        raise ValueError("one upper bound per bucket column is needed")
    if ub.size and (not math.isinf(ub[-1]) or np.any(np.diff(ub) <= 0)):
        raise ValueError("bucket bounds must be ascending and end with +Inf")
    if math.isnan(q):
        return np.full(rows, np.nan)
    if q < 0:
        return np.full(rows, -np.inf)
    if q > 1:
        return np.full(rows, np.inf)
    out = np.full(rows, np.nan)
    if ub.size < 2:
        return out
    # Prometheus repairs non-monotonic buckets (float precision) by carrying the maximum forward.
    counts = np.maximum.accumulate(np.nan_to_num(counts, nan=0.0), axis=1)
    total = counts[:, -1]
    ok = total > 0
    if not np.any(ok):
        return out
    c = counts[ok]
    rank = q * total[ok]
    # first bucket whose cumulative count reaches the rank
    b = np.argmax(c >= rank[:, None], axis=1)
    n = ub.size
    idx = np.arange(c.shape[0])
    below = np.where(b > 0, c[idx, np.maximum(b - 1, 0)], 0.0)
    start = np.where(b > 0, ub[np.maximum(b - 1, 0)], 0.0)
    end = ub[b]
    inside = c[idx, b] - below
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(inside > 0, (rank - below) / inside, 1.0)
        val = start + (end - start) * frac
    val = np.where(b == n - 1, ub[n - 2], val)
    val = np.where((b == 0) & (ub[0] <= 0), ub[0], val)
    out[ok] = val
    return out


class Grid:
    """The plotting grid of one run's store, and PromQL-style aggregations on it."""

    def __init__(self, store: MetricStore, max_points: int = MAX_POINTS) -> None:
        t, ids, v = store.columns()
        if t.size > 1 and np.any(np.diff(t) < 0):
            order = np.argsort(t, kind="stable")
            t, ids, v = t[order], ids[order], v[order]
        self.store = store
        self._t, self._ids, self._v = t, ids, v
        self._mids = np.asarray(store.series_metric, dtype=np.int64)[ids] if ids.size else ids
        scrapes = np.unique(t)
        k = max(1, math.ceil(scrapes.size / max(1, max_points)))
        grid = scrapes[::k]
        if scrapes.size and grid[-1] != scrapes[-1]:
            grid = np.append(grid, scrapes[-1])
        self.times: np.ndarray = grid
        """Grid times, seconds of simulated time."""
        self.step: float = float(np.median(np.diff(grid))) if grid.size > 1 else 0.0
        """Typical grid step, seconds."""
        lo = np.searchsorted(t, grid, side="left")
        hi = np.searchsorted(t, grid, side="right")
        # Only samples at grid times matter; group them by metric, keeping time order within a metric.
        counts = hi - lo
        rows = np.repeat(hi - np.cumsum(counts), counts) + np.arange(int(counts.sum()))
        gi = np.repeat(np.arange(grid.size), counts)
        mids = self._mids[rows] if rows.size else rows
        order = np.argsort(mids, kind="stable")
        self._rows, self._gi, mids_sorted = rows[order], gi[order], mids[order]
        self._block = np.searchsorted(mids_sorted, np.arange(len(store.metric_names) + 1))

    def has(self, metric: str) -> bool:
        """Whether the run has any sample of ``metric``."""
        return bool(self.store.series_of(metric))

    def _groups(
        self, metric: str, by: Sequence[str], keep: Callable[[dict[str, str]], bool] | None
    ) -> tuple[list[tuple[str, ...]], np.ndarray]:
        """Group index of every series of ``metric`` (-1: filtered out) and the group keys."""
        sids = self.store.series_of(metric)
        size = len(self.store.series_metric)
        gidx = np.full(size, -1, dtype=np.int64)
        keys: dict[tuple[str, ...], int] = {}
        for sid in sids:
            labels = self.store.labels_of(sid)
            if keep is not None and not keep(labels):
                continue
            key = tuple(str(labels.get(name, "")) for name in by)
            gidx[sid] = keys.setdefault(key, len(keys))
        return list(keys), gidx

    def _samples(
        self, metric: str, gidx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(grid index, series id, group, value)`` of the metric's samples at grid times, in time order."""
        mid = self.store.metric_names.index(metric)
        a, b = int(self._block[mid]), int(self._block[mid + 1])
        rows = self._rows[a:b]
        sids = self._ids[rows]
        g = gidx[sids]
        m = g >= 0
        return self._gi[a:b][m], sids[m], g[m], self._v[rows][m]

    def gauge(
        self,
        metric: str,
        by: Sequence[str],
        keep: Callable[[dict[str, str]], bool] | None = None,
    ) -> dict[tuple[str, ...], np.ndarray]:
        """``sum by (by) (metric)`` at every grid time (NaN where no series of a group exists)."""
        if not self.has(metric):
            return {}
        keys, gidx = self._groups(metric, by, keep)
        gi, _, g, v = self._samples(metric, gidx)
        n, k = self.times.size, len(keys)
        cell = gi * k + g
        sums = np.bincount(cell, weights=v, minlength=n * k).reshape(n, k)
        present = np.bincount(cell, minlength=n * k).reshape(n, k) > 0
        out = np.where(present, sums, np.nan)
        return {key: out[:, j] for j, key in enumerate(keys)}

    def increase(
        self,
        metric: str,
        by: Sequence[str],
        keep: Callable[[dict[str, str]], bool] | None = None,
    ) -> dict[tuple[str, ...], np.ndarray]:
        """``sum by (by) (increase(metric[step]))`` ending at every grid time.

        NaN at the first grid time and where no series of a group was scraped.
        """
        if not self.has(metric):
            return {}
        keys, gidx = self._groups(metric, by, keep)
        gi, sids, g, v = self._samples(metric, gidx)
        # each sample minus the same series' previous one on the grid (a series starts from 0)
        order = np.argsort(sids, kind="stable")
        gi, sids, g, v = gi[order], sids[order], g[order], v[order]
        prev = np.empty_like(v)
        if v.size:
            prev[0] = 0.0
            prev[1:] = np.where(sids[1:] == sids[:-1], v[:-1], 0.0)
        inc = np.where(v < prev, v, v - prev)  # a drop is a counter reset
        n, k = self.times.size, len(keys)
        cell = gi * k + g
        out = np.bincount(cell, weights=inc, minlength=n * k).reshape(n, k)
        out[np.bincount(cell, minlength=n * k).reshape(n, k) == 0] = np.nan  # no sample: no data
        out[0] = np.nan
        return {key: out[:, j] for j, key in enumerate(keys)}

    def rate(
        self,
        metric: str,
        by: Sequence[str],
        keep: Callable[[dict[str, str]], bool] | None = None,
    ) -> dict[tuple[str, ...], np.ndarray]:
        """``sum by (by) (rate(metric[step]))``: increase per second over each grid step."""
        inc = self.increase(metric, by, keep)
        dt = np.diff(self.times, prepend=np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return {k: v / dt for k, v in inc.items()}

    def quantiles(
        self,
        metric: str,
        qs: Sequence[float],
        by: Sequence[str],
        keep: Callable[[dict[str, str]], bool] | None = None,
    ) -> dict[tuple[str, ...], dict[float, np.ndarray]]:
        """``histogram_quantile(q, sum by (le, by) (increase(metric_bucket[step])))`` for each ``q``.

        ``metric`` is the bucket series' name (``..._bucket``).
        """
        inc = self.increase(metric, (*by, "le"), keep)
        groups: dict[tuple[str, ...], dict[float, np.ndarray]] = {}
        for key in {k[:-1] for k in inc}:
            les = [k[-1] for k in inc if k[:-1] == key]
            bounds = sorted(les, key=lambda s: math.inf if s == "+Inf" else float(s))
            ub = [math.inf if s == "+Inf" else float(s) for s in bounds]
            if not ub or not math.isinf(ub[-1]):
                continue
            mat = np.column_stack([inc[(*key, le)] for le in bounds])
            first_missing = np.isnan(mat).all(axis=1)
            groups[key] = {}
            for q in qs:
                val = histogram_quantile(q, ub, np.nan_to_num(mat, nan=0.0))
                val[first_missing] = np.nan
                groups[key][q] = val
        return dict(sorted(groups.items()))
