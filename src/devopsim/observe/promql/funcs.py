"""Functions over instant vectors and scalars, and ``histogram_quantile`` over classic buckets."""

from __future__ import annotations

import math

import numpy as np

from devopsim.observe.promql._groups import bucket_quantiles_sorted
from devopsim.observe.promql.ast import Matcher
from devopsim.observe.promql.binary import Vector
from devopsim.observe.promql.labels import NAME, LabelTable

__all__ = [
    "absent_labels",
    "bucket_quantile",
    "bucket_quantiles",
    "bucket_quantiles_numpy",
    "histogram_quantile",
    "simple_function",
]

_UFUNCS = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "sgn": np.sign,
}


def simple_function(name: str, vec: Vector, args: list[float], labels: LabelTable) -> Vector:
    """Elementwise functions; the result drops the metric name as Prometheus does."""
    v = vec.vals
    with np.errstate(all="ignore"):
        if name in _UFUNCS:
            out = _UFUNCS[name](v)
        elif name == "round":
            to_nearest = args[0] if args else 1.0
            inv = 1.0 / to_nearest
            out = np.floor(v * inv + 0.5) / inv
        elif name in ("clamp", "clamp_min", "clamp_max"):
            lo = args[0] if name != "clamp_max" else -math.inf
            hi = args[1] if name == "clamp" else (args[0] if name == "clamp_max" else math.inf)
            if hi < lo:
                return Vector.empty()
            out = np.maximum(lo, np.minimum(hi, v))
            if math.isnan(lo) or math.isnan(hi):
                out = np.full(v.size, np.nan)
        else:  # pragma: no cover
            raise KeyError(name)
    return Vector(labels.drop_name(vec.ids), np.asarray(out, dtype=np.float64))


def absent_labels(matchers: tuple[Matcher, ...] | None) -> dict[str, str]:
    """The labels ``absent()`` gives: the selector's equality matchers, minus names matched twice."""
    out: dict[str, str] = {}
    has: set[str] = set()
    for m in matchers or ():
        if m.name == NAME:
            continue
        if m.op == "=" and m.name not in has:
            if m.value:
                out[m.name] = m.value
            else:
                out.pop(m.name, None)
            has.add(m.name)
        else:
            out.pop(m.name, None)
    return out


def _almost_equal(a: float, b: float, eps: float) -> bool:
    min_normal = 2.2250738585072014e-308
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < min_normal:
        return diff < eps * min_normal
    return diff / min(abs_sum, 1.7976931348623157e308) < eps


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' ``bucketQuantile`` over ``(upper bound, cumulative count)`` pairs."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets, key=lambda b: b[0])
    if not buckets or not (math.isinf(buckets[-1][0]) and buckets[-1][0] > 0):
        return math.nan
    merged: list[list[float]] = []
    for ub, c in buckets:  # coalesce equal upper bounds
        if merged and merged[-1][0] == ub:
            merged[-1][1] += c
        else:
            merged.append([ub, c])
    prev = merged[0][1]
    for bucket in merged[1:]:  # ignore tiny float deltas, force monotonicity
        cur = bucket[1]
        if cur == prev:
            continue
        if _almost_equal(prev, cur, 1e-12) or cur < prev:
            bucket[1] = prev
            continue
        prev = cur
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0 or math.isnan(observations):
        return math.nan
    rank = q * observations
    b = len(merged) - 1
    for i in range(len(merged) - 1):
        if merged[i][1] >= rank:
            b = i
            break
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start = 0.0
    end = merged[b][0]
    count = merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * _div(rank, count)


def _div(a: float, b: float) -> float:
    """``a / b`` as IEEE 754 (and Go) divide: by zero, an infinity or NaN, not an exception."""
    if b == 0:
        with np.errstate(all="ignore"):
            return float(np.float64(a) / np.float64(b))
    return a / b


def _parse_le(text: str) -> float | None:
    try:
        if "_" in text:
            return None
        return float(text)
    except ValueError:
        return None


_MIN_NORMAL = 2.2250738585072014e-308
_MAX_FLOAT = 1.7976931348623157e308


def bucket_quantiles(q: np.ndarray, le: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """:func:`bucket_quantile` at several steps at once (the range and batched queries): ``q``
    per step, distinct upper bounds ``le`` (B,) and finite cumulative ``counts`` (B, steps);
    the same operations in the same order, step by step, so the same bits. Compiled
    (:func:`bucket_quantiles_sorted`); :func:`bucket_quantiles_numpy` is its reference."""
    order = np.argsort(le, kind="stable")
    le = np.ascontiguousarray(le[order], dtype=np.float64)
    n_c = counts.shape[1]
    if n_c == 0 or le.size < 2 or not (math.isinf(le[-1]) and le[-1] > 0):
        return _q_edges(q, np.full(n_c, np.nan))
    out = np.empty(n_c)
    cum = np.asarray(counts, dtype=np.float64)[order]
    bucket_quantiles_sorted(np.ascontiguousarray(q, dtype=np.float64), le, cum, out)
    return out


def bucket_quantiles_numpy(q: np.ndarray, le: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """:func:`bucket_quantiles` in NumPy (the reference of the compiled one)."""
    order = np.argsort(le, kind="stable")
    le, cum = le[order], counts[order].copy()
    n_b, n_c = cum.shape
    out = np.full(n_c, np.nan)
    if n_c == 0 or n_b < 2 or not (math.isinf(le[-1]) and le[-1] > 0):
        return _q_edges(q, out)
    prev = cum[0].copy()
    with np.errstate(all="ignore"):
        for i in range(1, n_b):  # ignore tiny float deltas, force monotonicity
            cur = cum[i]
            same = cur == prev
            diff, abs_sum = np.abs(prev - cur), np.abs(prev) + np.abs(cur)
            tiny = (prev == 0) | (cur == 0) | (abs_sum < _MIN_NORMAL)
            close = np.where(tiny, diff < 1e-12 * _MIN_NORMAL, diff / np.minimum(abs_sum, _MAX_FLOAT) < 1e-12)
            fix = ~same & (close | (cur < prev))
            cum[i] = np.where(fix, prev, cur)
            prev = np.where(same | fix, prev, cur)
        obs = cum[-1]
        rank = q * obs
        ge = cum[:-1] >= rank[None, :]
        b = np.where(ge.any(axis=0), np.argmax(ge, axis=0), n_b - 1)
        cols = np.arange(n_c)
        above = np.maximum(b - 1, 0)
        start = np.where(b > 0, le[above], 0.0)
        end = le[b]
        count = np.where(b > 0, cum[b, cols] - cum[above, cols], cum[b, cols])
        rank = np.where(b > 0, rank - cum[above, cols], rank)
        res = start + (end - start) * (rank / count)
    res = np.where(b == n_b - 1, le[n_b - 2], res)
    res = np.where((b == 0) & (le[0] <= 0), le[0], res)
    res = np.where(obs == 0, np.nan, res)
    return _q_edges(q, res)


def _q_edges(q: np.ndarray, out: np.ndarray) -> np.ndarray:
    """A quantile outside [0, 1] or NaN answers before the buckets are looked at."""
    out = np.where(q < 0, -np.inf, out)
    out = np.where(q > 1, np.inf, out)
    res: np.ndarray = np.where(np.isnan(q), np.nan, out)
    return res


def histogram_quantile(q: float, vec: Vector, labels: LabelTable) -> Vector:
    """``histogram_quantile(q, buckets)`` over classic ``le`` buckets, grouped by the other labels."""
    groups: dict[int, list[tuple[float, float]]] = {}
    order: list[int] = []
    for lid, val in zip(vec.ids.tolist(), vec.vals.tolist(), strict=True):
        le = _parse_le(labels.get(lid, "le"))
        if le is None:
            continue
        key = labels.intern(tuple(p for p in labels.sets[lid] if p[0] not in (NAME, "le")))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((le, val))
    vals = [bucket_quantile(q, groups[k]) for k in order]
    return Vector(np.asarray(order, dtype=np.int64), np.asarray(vals, dtype=np.float64))
