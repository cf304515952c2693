"""Binary operators with Prometheus' vector matching.

Follows ``VectorBinop``, ``VectorscalarBinop`` and the set operators of
Prometheus' engine: arithmetic drops the metric name, comparisons filter
(keeping the left-hand value and name) unless ``bool`` turns them into 0/1 and
drops the name; one-to-one matching errors on ambiguous matches;
``group_left``/``group_right`` copy the listed labels from the "one" side;
``and``/``or``/``unless`` match on signatures and keep the left-hand series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devopsim.observe.promql.ast import COMPARISONS, Binary
from devopsim.observe.promql.labels import NAME, LabelTable

__all__ = ["Vector", "scalar_op", "vector_scalar_op", "vector_vector_op"]


@dataclass
class Vector:
    """An instant vector: label-set ids and values, in evaluation order."""

    ids: np.ndarray
    vals: np.ndarray

    @staticmethod
    def empty() -> Vector:
        """A vector with no samples."""
        return Vector(np.zeros(0, dtype=np.int64), np.zeros(0))


class MatchError(Exception):
    """Vector matching failed (reported by the engine as a PromQLError)."""


def _apply(op: str, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(value, keep mask or None)`` of ``a op b`` elementwise."""
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b, None
        if op == "-":
            return a - b, None
        if op == "*":
            return a * b, None
        if op == "/":
            return np.true_divide(a, b), None
        if op == "%":
            return np.fmod(a, b), None
        if op == "^":
            return np.power(a, b), None
        if op == "atan2":
            return np.arctan2(a, b), None
        if op == "==":
            return a, a == b
        if op == "!=":
            return a, a != b
        if op == ">":
            return a, a > b
        if op == "<":
            return a, a < b
        if op == ">=":
            return a, a >= b
        if op == "<=":
            return a, a <= b
    raise KeyError(op)


def scalar_op(op: str, a: float, b: float) -> float:
    """Scalar ``a op b`` (comparisons need ``bool`` and give 1 or 0)."""
    val, keep = _apply(op, np.array([a]), np.array([b]))
    if keep is not None:
        return 1.0 if bool(keep[0]) else 0.0
    return float(val[0])


def vector_scalar_op(node: Binary, vec: Vector, scalar: float, swap: bool, labels: LabelTable) -> Vector:
    """``vec op scalar`` (or ``scalar op vec`` when ``swap``)."""
    sv = np.full(vec.vals.size, scalar)
    lhs, rhs = (sv, vec.vals) if swap else (vec.vals, sv)
    val, keep = _apply(node.op, lhs, rhs)
    if keep is not None:
        val = vec.vals  # a comparison keeps the vector's value, whichever side it is on
        if node.return_bool:
            val, keep = keep.astype(np.float64), None
    ids = vec.ids
    if node.op not in COMPARISONS or node.return_bool:
        ids = labels.drop_name(ids)
    if keep is not None:
        return Vector(ids[keep], val[keep])
    return Vector(ids, np.asarray(val, dtype=np.float64))


def _signatures(node: Binary, ids: np.ndarray, labels: LabelTable) -> np.ndarray:
    if node.on:
        return labels.keep(ids, node.matching)
    return labels.without(ids, node.matching)


def set_op(node: Binary, lhs: Vector, rhs: Vector, labels: LabelTable) -> Vector:
    """``and``, ``or``, ``unless``."""
    if node.op == "and":
        if lhs.ids.size == 0 or rhs.ids.size == 0:
            return Vector.empty()
        keep = np.isin(_signatures(node, lhs.ids, labels), _signatures(node, rhs.ids, labels))
        return Vector(lhs.ids[keep], lhs.vals[keep])
    if node.op == "unless":
        if lhs.ids.size == 0 or rhs.ids.size == 0:
            return lhs
        keep = ~np.isin(_signatures(node, lhs.ids, labels), _signatures(node, rhs.ids, labels))
        return Vector(lhs.ids[keep], lhs.vals[keep])
    # or
    if lhs.ids.size == 0:
        return rhs
    if rhs.ids.size == 0:
        return lhs
    extra = ~np.isin(_signatures(node, rhs.ids, labels), _signatures(node, lhs.ids, labels))
    return Vector(np.concatenate([lhs.ids, rhs.ids[extra]]), np.concatenate([lhs.vals, rhs.vals[extra]]))


def vector_vector_op(
    node: Binary, lhs: Vector, rhs: Vector, labels: LabelTable, check_all: bool = True
) -> Vector:
    """Arithmetic or comparison between two vectors with one-to-one or many-to-one matching."""
    if node.card == "many-to-many":
        return set_op(node, lhs, rhs, labels)
    swapped = node.card == "one-to-many"
    many, one = (rhs, lhs) if swapped else (lhs, rhs)
    sig_many = _signatures(node, many.ids, labels)
    sig_one = _signatures(node, one.ids, labels)
    if sig_one.size:
        uniq, counts = np.unique(sig_one, return_counts=True)
        if (counts > 1).any():
            dup = labels.sets[int(uniq[np.argmax(counts > 1)])]
            side = "left" if swapped else "right"
            raise MatchError(
                f"found duplicate series for the match group {_fmt(dup)} on the {side} hand-side of the "
                "operation; many-to-many matching not allowed: matching labels must be unique on one side"
            )
    order = np.argsort(sig_one, kind="stable")
    sorted_sig = sig_one[order]
    if sorted_sig.size == 0:
        return Vector.empty()
    pos_c = np.minimum(np.searchsorted(sorted_sig, sig_many), sorted_sig.size - 1)
    mi = np.flatnonzero(sorted_sig[pos_c] == sig_many)
    oi = order[pos_c[mi]]
    vm, vo = many.vals[mi], one.vals[oi]
    vl, vr = (vo, vm) if swapped else (vm, vo)
    val, keep = _apply(node.op, vl, vr)
    if keep is not None and node.return_bool:
        val = keep.astype(np.float64)
        keep = None
    if check_all and keep is not None and node.card == "one-to-one":
        _check_one_to_one(sig_many[mi])
    if keep is not None:
        mi, oi, val = mi[keep], oi[keep], val[keep]
    res = _result_labels(node, many.ids[mi], one.ids[oi], labels)
    sig = sig_many[mi]
    if node.card == "one-to-one":
        if np.unique(sig).size != sig.size:
            raise MatchError(
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
            )
    elif sig.size and np.unique(np.stack([sig, res]), axis=1).shape[1] != sig.size:
        raise MatchError("multiple matches for labels: grouping labels must ensure unique matches")
    return Vector(res, np.asarray(val, dtype=np.float64))


def _check_one_to_one(sig: np.ndarray) -> None:
    if np.unique(sig).size != sig.size:
        raise MatchError(
            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
        )


def _result_labels(node: Binary, many_ids: np.ndarray, one_ids: np.ndarray, labels: LabelTable) -> np.ndarray:
    drop_name = node.op not in COMPARISONS or node.return_bool
    ids = many_ids
    if drop_name:
        ids = labels.drop_name(ids)
    if node.card == "one-to-one" and node.on is not None:
        ids = labels.keep(ids, node.matching) if node.on else labels.drop(ids, node.matching)
    if node.include and ids.size:
        out = np.empty(ids.size, dtype=np.int64)
        include = node.include
        cache: dict[tuple[int, int], int] = {}
        for k, (a, b) in enumerate(zip(ids.tolist(), one_ids.tolist(), strict=True)):
            hit = cache.get((a, b))
            if hit is None:
                d = dict(labels.sets[a])
                for name in include:
                    v = labels.get(b, name)
                    if v:
                        d[name] = v
                    else:
                        d.pop(name, None)
                hit = cache[(a, b)] = labels.intern(tuple(sorted(d.items())))
            out[k] = hit
        ids = out
    return ids


def _fmt(labelset: tuple[tuple[str, str], ...]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labelset if k != NAME) + "}"
