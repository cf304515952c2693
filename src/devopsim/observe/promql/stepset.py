"""An instant vector at many evaluation times (:class:`Steps`), and the checks the instant
path makes on each step's vector, written for all steps at once (:mod:`.steps` evaluates
expressions over them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devopsim.observe.promql.binary import Vector

__all__ = ["Fallback", "Steps", "TooManyCells", "Value"]


class Fallback(Exception):
    """The expression cannot be evaluated for all steps at once (some step fails, or a
    construct is outside what this module writes out): evaluate it step by step."""


class TooManyCells(Exception):
    """A selector matches so many series that (series x steps) arrays would be too big:
    evaluate fewer steps at once (``rows`` series matched)."""

    def __init__(self, rows: int) -> None:
        super().__init__(f"{rows} series")
        self.rows = rows


@dataclass
class Steps:
    """An instant vector at ``K`` steps: row ``i`` is label set ``lids[i]``, present at step
    ``k`` when ``ok[i, k]``, with value ``v[i, k]``. A step's elements are the present rows in
    row order, or ordered by ``order[:, k]`` when ``order`` is given."""

    lids: np.ndarray  # (S,) int64
    v: np.ndarray  # (S, K) float64
    ok: np.ndarray  # (S, K) bool
    order: np.ndarray | None = None  # (S, K) int64 sort keys of each step's elements

    def at(self, k: int) -> Vector:
        """The instant vector of step ``k``."""
        rows = np.flatnonzero(self.ok[:, k])
        if self.order is not None and rows.size > 1:
            rows = rows[np.argsort(self.order[rows, k], kind="stable")]
        return Vector(self.lids[rows], self.v[rows, k])


Value = Steps | np.ndarray  # a vector, or a scalar per step (K,)


def _dup_present(keys: np.ndarray, ok: np.ndarray) -> bool:
    """Whether two rows with equal ``keys`` are present at the same step."""
    if keys.size < 2:
        return False
    ordered = np.sort(keys)
    if not (ordered[1:] == ordered[:-1]).any():  # the usual case: every key once
        return False
    _, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
    if (counts < 2).all():
        return False
    rows = np.flatnonzero(counts[inv] > 1)
    per = np.zeros((counts.size, ok.shape[1]), dtype=np.int64)
    np.add.at(per, inv[rows], ok[rows].astype(np.int64))
    return bool((per > 1).any())


def _bins(ginv: np.ndarray, k_n: int) -> np.ndarray:
    """The (group, step) bin of every (row, step), row-major: ``group * k_n + step``."""
    out: np.ndarray = (ginv[:, None] * k_n + np.arange(k_n)[None, :]).ravel()
    return out


def _unique(s: Steps) -> Steps:
    """The instant path's check that no step holds a label set twice."""
    if _dup_present(s.lids, s.ok):
        raise Fallback("vector cannot contain metrics with the same labelset")
    return s


def _in_row_order(first: np.ndarray, ok: np.ndarray) -> bool:
    """Whether, at every step, the present rows' keys rise down the rows."""
    if first.shape[0] < 2:
        return True
    keyed = np.where(ok, first, -1)
    top = np.maximum.accumulate(keyed, axis=0)
    return not (ok[1:] & (first[1:] < top[:-1])).any()


def _ordered(lids: np.ndarray, v: np.ndarray, ok: np.ndarray, first: np.ndarray) -> Steps:
    """Rows whose elements come, at each step, in the order of ``first`` (e.g. the first input
    row of a group): put them in that order once when it is the same at every step."""
    f0 = np.where(ok, first, np.iinfo(np.int64).max).min(axis=1)
    perm = np.argsort(f0, kind="stable")
    lids, v, ok, first = lids[perm], v[perm], ok[perm], first[perm]
    if _in_row_order(first, ok):
        return Steps(lids, v, ok)
    return Steps(lids, v, ok, first)


def _unique_vec(vec: Vector) -> Vector:
    if vec.ids.size > 1 and np.unique(vec.ids).size != vec.ids.size:
        raise Fallback("vector cannot contain metrics with the same labelset")
    return vec
