"""Aggregation operators: sum, avg, min, max, count, group, stddev, stdvar, topk, bottomk, quantile.

Grouping follows Prometheus: ``by (l...)`` keeps only the listed labels,
``without (l...)`` drops them and the metric name. ``min``/``max`` ignore NaN
unless a group is all NaN; sums are exact to rounding where cancellation could
matter (Prometheus uses Kahan summation); ``topk``/``bottomk`` keep the input
series' labels and replay Prometheus' heap so ties resolve the same way.
"""

from __future__ import annotations

import math

import numpy as np

from devopsim.observe.promql.ast import Aggregate
from devopsim.observe.promql.binary import Vector
from devopsim.observe.promql.labels import LabelTable
from devopsim.observe.promql.rangefuncs import quantile

__all__ = ["aggregate", "group_sum"]


def group_sum(vals: np.ndarray, inv: np.ndarray, n: int) -> np.ndarray:
    """Per-group sums; groups whose plain sum may have lost precision are summed exactly."""
    out: np.ndarray = np.bincount(inv, weights=vals, minlength=n)
    with np.errstate(all="ignore"):
        mag = np.bincount(inv, weights=np.abs(vals), minlength=n)
        risky = np.flatnonzero(np.isfinite(mag) & (np.abs(out) < mag * 1e-9) & (mag > 0))
    if risky.size:
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(n + 1))
        for g in risky.tolist():
            out[g] = math.fsum(vals[order[bounds[g] : bounds[g + 1]]].tolist())
    return out


def _heap_select(vals: list[float], k: int, top: bool) -> list[int]:
    """Indices Prometheus' k-heap keeps for topk (``top``) or bottomk, in output order."""

    def less(a: float, b: float) -> bool:
        if math.isnan(a):
            return True
        return a < b if top else a > b

    heap: list[int] = []

    def up(j: int) -> None:
        while j > 0:
            i = (j - 1) // 2
            if not less(vals[heap[j]], vals[heap[i]]):
                break
            heap[i], heap[j] = heap[j], heap[i]
            j = i

    def down(i0: int) -> None:
        i, n = i0, len(heap)
        while True:
            j1 = 2 * i + 1
            if j1 >= n:
                break
            j = j1
            if j1 + 1 < n and less(vals[heap[j1 + 1]], vals[heap[j1]]):
                j = j1 + 1
            if not less(vals[heap[j]], vals[heap[i]]):
                break
            heap[i], heap[j] = heap[j], heap[i]
            i = j

    for idx, x in enumerate(vals):
        if len(heap) < k:
            heap.append(idx)
            up(len(heap) - 1)
            continue
        h0 = vals[heap[0]]
        better = (h0 < x) if top else (h0 > x)
        if better or (math.isnan(h0) and not math.isnan(x)):
            heap[0] = idx
            down(0)
    # Output: the heap sorted in reverse of its order (largest first for topk), NaN last.
    return sorted(heap, key=lambda i: _rank_key(vals[i], top))


def _rank_key(x: float, top: bool) -> tuple[int, float]:
    if math.isnan(x):
        return (1, 0.0)
    return (0, -x if top else x)


def aggregate(node: Aggregate, vec: Vector, param: float | None, labels: LabelTable) -> Vector:
    """Apply aggregation ``node`` to ``vec`` (``param`` is k or the quantile, when the op has one)."""
    op = node.op
    if op in ("topk", "bottomk") and (param is None or math.isnan(param)):
        raise ValueError("Parameter value is NaN")
    groups = labels.without(vec.ids, node.labels) if node.without else labels.keep(vec.ids, node.labels)
    if vec.ids.size == 0:
        return Vector.empty()
    uniq, first, inv = np.unique(groups, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of first appearance, as Prometheus
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    inv = rank[inv]
    gids = uniq[order]
    n = gids.size
    vals = vec.vals
    if op in ("topk", "bottomk"):
        return _topk(vec, inv, n, param, op == "topk")
    with np.errstate(all="ignore"):
        if op == "sum":
            out = group_sum(vals, inv, n)
        elif op == "count":
            out = np.bincount(inv, minlength=n).astype(np.float64)
        elif op == "group":
            out = np.ones(n)
        elif op == "avg":
            cnt = np.bincount(inv, minlength=n)
            out = group_sum(vals, inv, n) / cnt
            bad = np.flatnonzero(np.isinf(out))
            for g in bad.tolist():  # the sum overflowed: use the mean of scaled values
                sel = vals[inv == g]
                if np.isfinite(sel).all():
                    out[g] = float(np.sum(sel / sel.size))
        elif op == "min":
            out = np.full(n, np.nan)
            np.fmin.at(out, inv, vals)
        elif op == "max":
            out = np.full(n, np.nan)
            np.fmax.at(out, inv, vals)
        elif op in ("stddev", "stdvar"):
            cnt = np.bincount(inv, minlength=n)
            mean = group_sum(vals, inv, n) / cnt
            var = group_sum((vals - mean[inv]) ** 2, inv, n) / cnt
            out = np.sqrt(var) if op == "stddev" else var
        elif op == "quantile":
            q = float("nan") if param is None else param
            out = np.array([quantile(q, vals[inv == g]) for g in range(n)])
        else:  # pragma: no cover - the parser only lets known ops through
            raise KeyError(op)
    return Vector(gids.astype(np.int64), np.asarray(out, dtype=np.float64))


def _topk(vec: Vector, inv: np.ndarray, n: int, param: float | None, top: bool) -> Vector:
    if param is None or math.isnan(param):
        raise ValueError("Parameter value is NaN")
    k = int(param) if math.isfinite(param) else (1 << 62 if param > 0 else 0)
    if k < 1:
        return Vector.empty()
    ids: list[int] = []
    vals: list[float] = []
    all_vals = vec.vals
    for g in range(n):
        members = np.flatnonzero(inv == g)
        sel = all_vals[members].tolist()
        for j in _heap_select(sel, k, top):
            ids.append(int(vec.ids[members[j]]))
            vals.append(sel[j])
    return Vector(np.asarray(ids, dtype=np.int64), np.asarray(vals, dtype=np.float64))
