"""Functions over range vectors, vectorised over every series of a window.

Each follows Prometheus' ``promql/functions.go``: ``rate``/``increase``/
``delta`` with its extrapolation (to the window edges when the first and last
samples lie within 1.1 average sample intervals of them, else half an interval;
never extrapolating a counter below zero), counter-reset correction, ``irate``
and ``idelta`` from the last two samples, least-squares ``deriv`` and
``predict_linear``, and the ``*_over_time`` family (NaN ignored by min/max
unless every sample is NaN).
"""

from __future__ import annotations

import math

import numpy as np

from devopsim.observe.promql._extrapolate import extrapolate
from devopsim.observe.promql.blocks import Window

__all__ = ["apply_range_function"]


def _segsum(x: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sum of ``x[start[k]:end[k]]`` per segment (empty segments give 0)."""
    if start.size == 0:
        return np.zeros(0)
    c = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    out: np.ndarray = c[end] - c[start]
    return out


def _segreduce(ufunc: np.ufunc, x: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``ufunc.reduce`` over non-empty, ordered, non-overlapping segments, sequentially."""
    if start.size == 0:
        return np.zeros(0)
    padded = np.append(x, 0.0)
    idx = np.empty(start.size * 2, dtype=np.int64)
    idx[0::2] = start
    idx[1::2] = end
    res: np.ndarray = ufunc.reduceat(padded, idx)[0::2]
    return res


def _kahan(x: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-segment Kahan-Neumaier sums ``(sum, compensation)``, as Prometheus' ``kahansum.Inc``.

    Sequential within a segment, vectorised across segments (one pass per sample position).
    """
    total = np.zeros(start.size)
    comp = np.zeros(start.size)
    n = end - start
    longest = int(n.max()) if n.size else 0
    with np.errstate(all="ignore"):
        for j in range(longest):
            act = np.flatnonzero(n > j)
            inc = x[start[act] + j]
            cur = total[act]
            t = cur + inc
            big = np.abs(cur) >= np.abs(inc)
            delta = np.where(big, (cur - t) + inc, (inc - t) + cur)
            comp[act] = np.where(np.isinf(t), 0.0, comp[act] + delta)
            total[act] = t
    return total, comp


def _exact_sum(x: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Per-segment sums with Kahan compensation, as Prometheus computes them."""
    total, comp = _kahan(x, start, end)
    with np.errstate(all="ignore"):
        out: np.ndarray = np.where(np.isinf(total), total, total + comp)
    return out


def _extrapolated(
    w: Window, range_ms: int, counter: bool, is_rate: bool, v2: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``rate``/``increase``/``delta`` of every window with two samples or more: compiled
    (:func:`extrapolate`) when times are integer milliseconds, as blocks keep them, else
    :func:`_extrapolated_numpy`, its reference."""
    ts = w.ts
    ints = isinstance(ts, (int, np.integer)) or (isinstance(ts, np.ndarray) and ts.dtype == np.int64)
    if not (ints and w.t.dtype == np.int64 and w.v.dtype == np.float64 and isinstance(range_ms, int)):
        return _extrapolated_numpy(w, range_ms, counter, is_rate, v2)
    keep = (w.end - w.start) >= 2
    s = np.ascontiguousarray(w.start[keep], dtype=np.int64)
    e = np.ascontiguousarray(w.end[keep], dtype=np.int64)
    if isinstance(ts, np.ndarray):
        at = ts[keep] if ts.ndim else np.broadcast_to(ts, s.shape)
    else:
        at = np.broadcast_to(np.int64(ts), s.shape)
    out = np.empty(s.size)
    t, v = np.ascontiguousarray(w.t), np.ascontiguousarray(w.v)
    extrapolate(t, v, s, e, at, range_ms, counter, is_rate, v2, out)
    return w.lids[keep], out


def _extrapolated_numpy(
    w: Window, range_ms: int, counter: bool, is_rate: bool, v2: bool
) -> tuple[np.ndarray, np.ndarray]:
    t, v, s, e = w.t, w.v, w.start, w.end
    keep = (e - s) >= 2
    s, e = s[keep], e[keep]
    first_v, last_v = v[s], v[e - 1]
    result = last_v - first_v
    if counter:
        result = _add_resets(result, v, s + 1, e)
    ts = w.ts if np.ndim(w.ts) == 0 else np.asarray(w.ts)[keep]
    range_start = ts - range_ms
    first_t, last_t = t[s], t[e - 1]
    to_start = (first_t - range_start) / 1000.0
    to_end = (ts - last_t) / 1000.0
    sampled = (last_t - first_t) / 1000.0
    avg = sampled / (e - s - 1)
    threshold = avg * 1.1
    with np.errstate(all="ignore"):
        if v2:
            if counter:
                zero = sampled * (first_v / result)
                cap = (result > 0) & (first_v >= 0) & (zero < to_start)
                to_start = np.where(cap, zero, to_start)
            ext = sampled + np.where(to_start < threshold, to_start, avg / 2)
            ext += np.where(to_end < threshold, to_end, avg / 2)
        else:
            to_start = np.where(to_start >= threshold, avg / 2, to_start)
            if counter:
                zero = sampled * (first_v / result)
                cap = (result > 0) & (first_v >= 0) & (zero < to_start)
                to_start = np.where(cap, zero, to_start)
            to_end = np.where(to_end >= threshold, avg / 2, to_end)
            ext = sampled + to_start + to_end
        factor = ext / sampled
        if is_rate:
            factor = factor / (range_ms / 1000.0)
        out = result * factor
    return w.lids[keep], out


def _kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    t = total + inc
    if math.isinf(t):
        return t, 0.0
    if abs(total) >= abs(inc):
        return t, c + ((total - t) + inc)
    return t, c + ((inc - t) + total)


def _incremental_mean(values: list[float]) -> float:
    """Prometheus' mean: a Kahan sum, switching to an incremental mean if the sum overflows."""
    total, count, mean, c = values[0], 1.0, 0.0, 0.0
    incremental = False
    for i, x in enumerate(values[1:]):
        count = float(i + 2)
        if not incremental:
            new_sum, new_c = _kahan_inc(x, total, c)
            if not math.isinf(new_sum):
                total, c = new_sum, new_c
                continue
            incremental = True
            mean = total / (count - 1)
            c /= count - 1
        q = (count - 1) / count
        mean, c = _kahan_inc(x / count, q * mean, q * c)
    if incremental:
        return mean + c
    return total / count + c / count


def _sequential_add(init: np.ndarray, x: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``init[k] + x[start[k]] + ... + x[end[k]-1]`` added left to right (plain floats, as Go does)."""
    acc = init.astype(np.float64, copy=True)
    n = end - start
    hits = np.flatnonzero(_segsum((x != 0).astype(np.float64), start, end) > 0)
    longest = int(n[hits].max()) if hits.size else 0
    for j in range(longest):
        act = hits[n[hits] > j]
        acc[act] = acc[act] + x[start[act] + j]
    return acc


def _reset_drops(v: np.ndarray) -> np.ndarray:
    """Per sample, what a counter reset there lost (the previous value), else 0: the terms a
    counter's increase adds back (``v[0]``'s, never read, is 0)."""
    prev = np.empty_like(v)
    prev[1:] = v[:-1]
    prev[:1] = 0.0
    drops: np.ndarray = np.where(v < prev, prev, 0.0)
    return drops


def _add_resets(init: np.ndarray, v: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``_sequential_add(init, _reset_drops(v), start, end)`` for ``start >= 1``, without the
    dense pass over every sample: resets are rare, so the segments holding one are found from
    the reset positions alone, and only theirs are added up (every term, zeros included, in
    order, as the reference does: ``-0.0 + 0.0`` is ``+0.0``)."""
    acc = init.astype(np.float64, copy=True)
    if v.size < 2 or not start.size:
        return acc
    before = v[:-1]
    at = np.flatnonzero(v[1:] < before)
    at = at[before[at] != 0] + 1  # a term is added where the reference's is nonzero
    if not at.size:
        return acc
    hits = np.flatnonzero(np.searchsorted(at, end) > np.searchsorted(at, start))
    n = end - start
    longest = int(n[hits].max()) if hits.size else 0
    for j in range(longest):
        act = hits[n[hits] > j]
        p = start[act] + j
        cur, prev = v[p], v[p - 1]
        acc[act] = acc[act] + np.where(cur < prev, prev, 0.0)
    return acc


def _instant(w: Window, is_rate: bool) -> tuple[np.ndarray, np.ndarray]:
    keep = (w.end - w.start) >= 2
    e = w.end[keep]
    last, prev = w.v[e - 1], w.v[e - 2]
    dt = w.t[e - 1] - w.t[e - 2]
    ok = dt != 0
    with np.errstate(all="ignore"):
        res = np.where(is_rate & (last < prev), last, last - prev)
        if is_rate:
            res = res / (dt / 1000.0)
    return w.lids[keep][ok], res[ok]


def _regression(w: Window, intercept_at: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keep = (w.end - w.start) >= 2
    s, e = w.start[keep], w.end[keep]
    n = (e - s).astype(np.float64)
    seg = np.repeat(np.arange(s.size), e - s)
    idx = (
        np.concatenate([np.arange(a, b) for a, b in zip(s.tolist(), e.tolist(), strict=True)])
        if s.size
        else s
    )
    y = w.v[idx]
    origin = w.t[s] if intercept_at is None else intercept_at[keep]
    x = (w.t[idx] - origin[seg]) / 1000.0
    starts = np.concatenate([[0], np.cumsum(e - s)[:-1]]).astype(np.int64) if s.size else s
    ends = starts + (e - s)
    sx = _exact_sum(x, starts, ends)
    sy = _exact_sum(y, starts, ends)
    sxy = _exact_sum(x * y, starts, ends)
    sx2 = _exact_sum(x * x, starts, ends)
    first = w.v[s]
    const = _segsum((y != first[seg]).astype(np.float64), starts, ends) == 0
    with np.errstate(all="ignore"):
        cov = sxy - sx * sy / n
        var = sx2 - sx * sx / n
        slope = cov / var
        intercept = sy / n - slope * sx / n
    inf_first = np.isinf(first)
    slope = np.where(const, np.where(inf_first, np.nan, 0.0), slope)
    intercept = np.where(const, np.where(inf_first, np.nan, first), intercept)
    return w.lids[keep], slope, intercept


def _quantile_sorted(q: float, vals: np.ndarray) -> float:
    n = vals.size
    if n == 0 or np.isnan(q):
        return float("nan")
    if q < 0:
        return float("-inf")
    if q > 1:
        return float("inf")
    nan = np.isnan(vals)
    ordered = np.concatenate([vals[nan], np.sort(vals[~nan])])  # Go sorts NaN first
    rank = q * (n - 1)
    lo = max(0, int(np.floor(rank)))
    hi = min(n - 1, lo + 1)
    weight = rank - np.floor(rank)
    return float(ordered[lo] * (1 - weight) + ordered[hi] * weight)


def quantile(q: float, vals: np.ndarray) -> float:
    """Prometheus' ``quantile``: linear interpolation between closest ranks, NaN sorted first."""
    return _quantile_sorted(q, vals)


def apply_range_function(
    name: str, w: Window, range_ms: int, param: float, v2: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate range function ``name`` on window ``w``: ``(label ids, values)`` (names kept)."""
    s, e, v = w.start, w.end, w.v
    n = e - s
    if w.lids.size == 0:
        return w.lids, np.zeros(0)
    with np.errstate(all="ignore"):
        if name in ("rate", "increase", "delta"):
            return _extrapolated(w, range_ms, name != "delta", name == "rate", v2)
        if name in ("irate", "idelta"):
            return _instant(w, name == "irate")
        if name == "deriv":
            lids, slope, _ = _regression(w, None)
            return lids, slope
        if name == "predict_linear":
            at = np.broadcast_to(np.asarray(w.ts, dtype=np.int64), w.lids.shape)
            lids, slope, icpt = _regression(w, at)
            return lids, slope * param + icpt
        if name in ("changes", "resets"):
            prev = np.empty_like(v)
            prev[1:] = v[:-1]
            prev[:1] = v[:1]
            flag = ~((v == prev) | (np.isnan(v) & np.isnan(prev))) if name == "changes" else v < prev
            return w.lids, _segsum(flag.astype(np.float64), s + 1, e)
        if name == "count_over_time":
            return w.lids, n.astype(np.float64)
        if name == "present_over_time":
            return w.lids, np.ones(w.lids.size)
        if name == "last_over_time":
            return w.lids, v[e - 1]
        if name == "sum_over_time":
            return w.lids, _exact_sum(v, s, e)
        if name == "avg_over_time":
            total, comp = _kahan(v, s, e)
            out = np.where(np.isinf(total), total / n, total / n + comp / n)
            for k in np.flatnonzero(np.isinf(total)).tolist():
                out[k] = _incremental_mean(v[s[k] : e[k]].tolist())
            return w.lids, out
        if name == "min_over_time":
            return w.lids, _segreduce(np.fmin, v, s, e)
        if name == "max_over_time":
            return w.lids, _segreduce(np.fmax, v, s, e)
        if name in ("stddev_over_time", "stdvar_over_time"):
            mean = _exact_sum(v, s, e) / n
            seg = np.repeat(np.arange(s.size), n)
            idx = np.concatenate([np.arange(a, b) for a, b in zip(s.tolist(), e.tolist(), strict=True)])
            dev = (v[idx] - mean[seg]) ** 2
            starts = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)
            var = _exact_sum(dev, starts, starts + n) / n
            return w.lids, np.sqrt(var) if name == "stddev_over_time" else var
        if name == "quantile_over_time":
            vals = [_quantile_sorted(param, v[a:b]) for a, b in zip(s.tolist(), e.tolist(), strict=True)]
            return w.lids, np.asarray(vals, dtype=np.float64)
    raise KeyError(name)
