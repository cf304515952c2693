"""One expression at many evaluation times in one pass, exactly as instant queries answer.

:meth:`Engine.instant_many <devopsim.observe.promql.engine.Engine.instant_many>` gives at each
time what :meth:`~devopsim.observe.promql.engine.Engine.instant` gives there, to the bit, but
reads each selector's samples once and evaluates each node for every step with a few NumPy
calls. An instant vector over ``K`` steps is a :class:`Steps`: one row per series (label-set
id), values and a presence mask per (row, step) and, where a step's elements are not in row
order, an order key per (row, step); a scalar is an array of ``K`` values.

* A selector finds every (series, step) sample with one ``searchsorted`` over its block's
  composite keys; a range function sees one window segment per (series, step) and is the
  function the instant path applies: its arithmetic per segment is the same, so are the bits.
* Sums and counts per group accumulate with ``bincount`` over the rows in order, adding each
  group's elements in the order the instant path adds them (absent elements add ``+0.0``,
  which changes no sum: a sum that starts at ``+0.0`` is never ``-0.0``).
* What is not written out here (``topk``, ``quantile``, ``stddev``, ``sort``, ``^`` and the
  transcendental functions, whose NumPy loops may round differently by array length, and
  inputs whose element order changes from step to step) is applied to each step's instant
  vector with the very call the instant path makes.

Whatever would fail at some step (matching errors, duplicate label sets) raises
:class:`Fallback`; the engine then evaluates step by step, so errors are the instant path's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from devopsim.observe.promql._extrapolate import extrapolate_steps
from devopsim.observe.promql._groups import group_steps
from devopsim.observe.promql.aggregate import aggregate, group_sum
from devopsim.observe.promql.ast import (
    COMPARISONS,
    Aggregate,
    Binary,
    Call,
    MatrixSel,
    Node,
    Number,
    Selector,
    Unary,
)
from devopsim.observe.promql.binary import (
    Vector,
    _apply,
    _result_labels,
    _signatures,
    scalar_op,
    vector_scalar_op,
    vector_vector_op,
)
from devopsim.observe.promql.blocks import _SHIFT, _SPAN, Block, Window
from devopsim.observe.promql.funcs import (
    _parse_le,
    absent_labels,
    bucket_quantile,
    bucket_quantiles,
    simple_function,
)
from devopsim.observe.promql.labels import NAME, LabelTable
from devopsim.observe.promql.rangefuncs import apply_range_function
from devopsim.observe.promql.select import Selection
from devopsim.observe.promql.stepset import (
    Fallback,
    Steps,
    TooManyCells,
    Value,
    _bins,
    _dup_present,
    _in_row_order,
    _ordered,
    _unique,
    _unique_vec,
)

__all__ = ["Fallback", "StepEvaluator", "Steps", "TooManyCells"]

#: Element-wise functions whose results do not depend on the array they are computed in
#: (exact operations); the others are applied to each step's vector as the instant path does.
_EXACT_FUNCS = ("abs", "ceil", "floor", "sqrt", "sgn", "round", "clamp", "clamp_min", "clamp_max")
_EXACT_OPS = ("+", "-", "*", "/", "%", "==", "!=", ">", "<", ">=", "<=")
_VECTOR_AGGREGATES = ("sum", "count", "group", "avg", "min", "max")
_EXTRAPOLATED = ("rate", "increase", "delta")


class StepEvaluator:
    """Evaluates syntax trees at the steps ``ts`` (int ms, rising) over one engine's state.

    Args:
        labels: the engine's label table.
        selection: the engine's series selection.
        ts: the evaluation times (ms).
        lookback_ms: the instant selectors' lookback.
        v2: Prometheus 2.x semantics (closed windows and lookback).
        live: read the live blocks instant queries use (successive calls moving forward in
            time read each row once), else blocks of just the steps' span (a range query).
        max_cells: the most (series x steps) a selector may make (:class:`TooManyCells`).
    """

    #: rate/increase/delta through the compiled pass over steps (:meth:`_extrapolated`) and the
    #: aggregations' per-group counts and sums compiled (:meth:`_group_steps`); False: through
    #: the searches, :func:`apply_range_function` and ``bincount`` (the references the tests
    #: compare)
    fused = True

    def __init__(
        self,
        labels: LabelTable,
        selection: Selection,
        ts: np.ndarray,
        lookback_ms: int,
        v2: bool,
        *,
        live: bool = True,
        max_cells: int = 1 << 21,
    ) -> None:
        self.labels = labels
        self.selection = selection
        self.ts = np.asarray(ts, dtype=np.int64)
        self.k = int(self.ts.size)
        self.lookback_ms = lookback_ms
        self.v2 = v2
        self.live = live
        self.max_cells = max_cells

    # -- nodes ---------------------------------------------------------------------------------

    def eval(self, node: Node) -> Value:
        """The value of ``node`` at every step.

        Raises:
            Fallback: evaluate step by step instead.
        """
        if isinstance(node, Number):
            return np.full(self.k, node.value, dtype=np.float64)
        if isinstance(node, Selector):
            return self._select(node)
        if isinstance(node, Unary):
            inner = self.eval(node.expr)
            if isinstance(inner, Steps):
                return _unique(Steps(self.labels.drop_name(inner.lids), -inner.v, inner.ok, inner.order))
            return -inner
        if isinstance(node, Binary):
            return self._binary(node)
        if isinstance(node, Aggregate):
            return self._aggregate(node)
        if isinstance(node, Call):
            return self._call(node)
        raise Fallback(f"{type(node).__name__} is not evaluated on its own")

    def _vector(self, node: Node) -> Steps:
        out = self.eval(node)
        if not isinstance(out, Steps):  # pragma: no cover - the parser checks argument types
            raise Fallback("expected a vector")
        return out

    def _scalar(self, node: Node) -> np.ndarray:
        out = self.eval(node)
        if isinstance(out, Steps):  # pragma: no cover - the parser checks argument types
            raise Fallback("expected a scalar")
        return out

    def _block(self, sel: Selector, back_ms: int) -> tuple[Block, np.ndarray]:
        """The block of ``sel`` holding every step's reach, and each step's lookup time.

        When ``live``, it is the live block instant queries of this reach use (kept up to
        date with the rows appended since the last call; it may hold later samples, which no
        lookup at these steps sees), so successive batches read each row once.

        Raises:
            Fallback: the store holds downsampled data (evaluated step by step).
            TooManyCells: more than ``max_cells`` (series x steps).
        """
        if self.selection.store.has_downsampled:
            raise Fallback("downsampled data")
        at = self.ts - sel.offset_ms
        lo = int(at.min()) - back_ms
        if self.live:
            block = self.selection.block(sel, lo, lo + back_ms, live=True)
        else:
            block = self.selection.block(sel, lo, int(at.max()))
        if self.k > 1 and block.lids.size * self.k > self.max_cells:
            raise TooManyCells(int(block.lids.size))
        return block, at

    @staticmethod
    def _held(block: Block) -> np.ndarray:
        """The block's rows that hold samples. The others (series whose samples all lie
        outside the reach of these steps, e.g. of pods long gone) are absent at every step;
        leaving them out changes no step's vector, only the work done."""
        return np.flatnonzero(block.off[1:] > block.off[:-1])

    @staticmethod
    def _keys(block: Block, at: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The composite key of every (series, step) lookup at times ``at``, for ``rows``."""
        rel = np.clip(at - block.base, 0, _SPAN)
        out: np.ndarray = (rows << _SHIFT)[:, None] | rel[None, :]
        return out

    def _select(self, sel: Selector) -> Steps:
        block, at = self._block(sel, self.lookback_ms)
        rows = self._held(block)
        keys = self._keys(block, at, rows)
        end = np.searchsorted(block.keys, keys, side="right") - 1
        ok = end >= block.off[:-1][rows, None]
        idx = np.maximum(end, 0)
        if block.t.size:
            tt, v = block.t[idx], block.v[idx]
        else:
            tt, v = np.zeros(end.shape, np.int64), np.zeros(end.shape)
        lo = (at - self.lookback_ms)[None, :]
        ok &= (tt >= lo) if self.v2 else (tt > lo)
        if block.st is not None and block.st.size and block.skeys is not None and block.soff is not None:
            send = np.searchsorted(block.skeys, keys, side="right") - 1
            marked = send >= block.soff[:-1][rows, None]
            ok &= ~(marked & (block.st[np.maximum(send, 0)] >= tt))
        return Steps(block.lids[rows], v, ok)

    # -- range functions -----------------------------------------------------------------------

    def _range_call(self, node: Call, msel: MatrixSel) -> Steps:
        name = node.func
        sel = msel.selector
        block, at = self._block(sel, msel.range_ms)
        rows = self._held(block)
        n = rows.size
        if name in _EXTRAPOLATED and self.fused and block.t.dtype == np.int64 and block.v.dtype == np.float64:
            return self._extrapolated(name, block, at, msel.range_ms, rows)
        end = np.searchsorted(block.keys, self._keys(block, at, rows), side="right")
        start = self._starts(block, at, msel.range_ms, end, rows)
        seg = np.flatnonzero(end > start)  # (series, step) pairs with samples, row-major
        if name == "absent_over_time":
            some = np.zeros(self.k, dtype=bool)
            some[seg % self.k] = True
            none: np.ndarray = ~some
            lid = self.labels.intern_dict(absent_labels(sel.matchers))
            return Steps(np.array([lid], dtype=np.int64), np.ones((1, self.k)), none[None, :])
        others = [a for a in node.args if a is not msel]
        param = 0.0
        if others:
            p = self._scalar(others[0])
            if p.size and not (p.view(np.int64) == p[:1].view(np.int64)).all():
                raise Fallback("a parameter that changes between steps")
            param = float(p[0]) if p.size else 0.0
        w = Window(seg, block.t, block.v, start.ravel()[seg], end.ravel()[seg], at[seg % self.k])
        got, vals = apply_range_function(name, w, msel.range_ms, param, self.v2)
        v = np.zeros((n, self.k))
        ok = np.zeros((n, self.k), dtype=bool)
        v.ravel()[got] = vals
        ok.ravel()[got] = True
        lids = block.lids[rows]
        if name != "last_over_time":
            lids = self.labels.drop_name(lids)
        return _unique(Steps(lids, v, ok))

    def _extrapolated(
        self, name: str, block: Block, at: np.ndarray, range_ms: int, rows: np.ndarray
    ) -> Steps:
        """``rate``/``increase``/``delta`` at every step in one compiled pass over each series'
        samples (:func:`extrapolate_steps`): the windows the searches of :meth:`_range_call`
        find and the arithmetic :func:`apply_range_function` does on each, without the (series
        x steps) keys, searches and window arrays in between."""
        v = np.zeros((rows.size, self.k))
        ok = np.zeros((rows.size, self.k), dtype=bool)
        extrapolate_steps(
            block.t,
            block.v,
            block.off,
            np.ascontiguousarray(rows, dtype=np.int64),
            np.ascontiguousarray(at, dtype=np.int64),
            range_ms,
            name != "delta",
            name == "rate",
            self.v2,
            v,
            ok.view(np.uint8),
        )
        return _unique(Steps(self.labels.drop_name(block.lids[rows]), v, ok))

    def _starts(
        self, block: Block, at: np.ndarray, range_ms: int, end: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """Where each (series, step) window starts. A window's left edge is an earlier step's
        right edge when the steps are evenly spaced and the range a multiple of the spacing:
        ``(t - range, t]`` starts where the window ending at ``t - range`` ends."""
        lo = at - range_ms
        gap = int(at[1] - at[0]) if at.size > 1 else 0
        if self.v2 or gap <= 0 or range_ms % gap or not (np.diff(at) == gap).all():
            keys = self._keys(block, lo, rows)
            out: np.ndarray = np.searchsorted(block.keys, keys, side="left" if self.v2 else "right")
            return out
        r = min(range_ms // gap, at.size)
        start = np.empty_like(end)
        start[:, r:] = end[:, : at.size - r]
        if r:
            start[:, :r] = np.searchsorted(block.keys, self._keys(block, lo[:r], rows), side="right")
        return start

    # -- calls ---------------------------------------------------------------------------------

    def _call(self, node: Call) -> Value:
        name, args = node.func, node.args
        if name == "time":
            out: np.ndarray = self.ts / 1000.0
            return out
        if name == "vector":
            s = self._scalar(args[0])
            return Steps(np.array([self.labels.empty]), s[None, :].copy(), np.ones((1, self.k), dtype=bool))
        msel = next((a for a in args if isinstance(a, MatrixSel)), None)
        if msel is not None:
            return self._range_call(node, msel)
        if name == "scalar":
            vec = self._vector(args[0])
            if not vec.lids.size:
                return np.full(self.k, np.nan)
            one = vec.ok.sum(axis=0) == 1
            vals = vec.v[np.argmax(vec.ok, axis=0), np.arange(self.k)]
            res: np.ndarray = np.where(one, vals, np.nan)
            return res
        if name == "absent":
            vec = self._vector(args[0])
            sel = args[0].matchers if isinstance(args[0], Selector) else None
            lid = self.labels.intern_dict(absent_labels(sel))
            none = ~np.asarray(vec.ok.any(axis=0))
            return Steps(np.array([lid], dtype=np.int64), np.ones((1, self.k)), none[None, :])
        if name == "histogram_quantile":
            q = self._scalar(args[0])
            return self._histogram_quantile(q, self._vector(args[1]))
        if name in ("sort", "sort_desc"):
            vec = self._vector(args[0])
            return self._per_step(lambda k, a: _sort(name, a[0]), [vec])
        vec = self._vector(args[0])
        scalars = [self._scalar(a) for a in args[1:]]
        if name not in _EXACT_FUNCS or vec.order is not None:

            def apply(k: int, a: list[Vector]) -> Vector:
                return _unique_vec(simple_function(name, a[0], [float(s[k]) for s in scalars], self.labels))

            return self._per_step(apply, [vec])
        return _unique(self._exact_function(name, vec, scalars))

    def _exact_function(self, name: str, vec: Steps, args: list[np.ndarray]) -> Steps:
        v, ok = vec.v, vec.ok
        with np.errstate(all="ignore"):
            if name == "round":
                inv = 1.0 / (args[0] if args else np.ones(self.k))
                out = np.floor(v * inv + 0.5) / inv
            elif name in ("clamp", "clamp_min", "clamp_max"):
                inf = np.full(self.k, math.inf)
                lo = args[0] if name != "clamp_max" else -inf
                hi = args[1] if name == "clamp" else (args[0] if name == "clamp_max" else inf)
                out = np.maximum(lo, np.minimum(hi, v))
                out[:, np.isnan(lo) | np.isnan(hi)] = np.nan
                ok = ok & ~(hi < lo)[None, :]
            else:
                fn = {"abs": np.abs, "ceil": np.ceil, "floor": np.floor, "sqrt": np.sqrt, "sgn": np.sign}
                out = fn[name](v)
        return Steps(self.labels.drop_name(vec.lids), np.asarray(out, dtype=np.float64), ok)

    def _histogram_quantile(self, q: np.ndarray, vec: Steps) -> Steps:
        if vec.order is not None:
            return self._per_step(lambda k, a: _unique_vec(_hq(float(q[k]), a[0], self.labels)), [vec])
        labels = self.labels
        les = [_parse_le(labels.get(int(lid), "le")) for lid in vec.lids.tolist()]
        rows = [i for i, le in enumerate(les) if le is not None]
        if not rows:
            return Steps(np.zeros(0, np.int64), np.zeros((0, self.k)), np.zeros((0, self.k), dtype=bool))
        sets = [labels.sets[int(vec.lids[i])] for i in rows]
        keys = np.array(
            [labels.intern(tuple(p for p in ls if p[0] not in (NAME, "le"))) for ls in sets], dtype=np.int64
        )
        gids, ginv = np.unique(keys, return_inverse=True)
        r = np.asarray(rows, dtype=np.int64)
        le = np.array([les[i] for i in rows], dtype=np.float64)
        ok = vec.ok[r]
        g_n = gids.size
        first = np.full((g_n, self.k), np.iinfo(np.int64).max)
        for j in range(r.size):  # rows in order: the first present row of each group
            g = ginv[j]
            first[g] = np.where(ok[j] & (first[g] == np.iinfo(np.int64).max), r[j], first[g])
        present = first != np.iinfo(np.int64).max
        out = np.zeros((g_n, self.k))
        v = vec.v[r]
        qs = q.tolist()
        for g in range(g_n):
            members = np.flatnonzero(ginv == g)
            g_le = le[members].tolist()
            cols = np.flatnonzero(present[g])
            sub_ok = ok[members][:, cols]
            sub_v = v[members][:, cols]
            full = sub_ok.all(axis=0)
            if len(set(g_le)) == len(g_le):  # all buckets there and finite: every step at once
                fast = full & np.isfinite(sub_v).all(axis=0)
                out[g, cols[fast]] = bucket_quantiles(q[cols[fast]], le[members], sub_v[:, fast])
            else:
                fast = np.zeros(cols.size, dtype=bool)
            for c, k in enumerate(cols.tolist()):
                if fast[c]:
                    continue
                m = np.flatnonzero(sub_ok[:, c])
                buckets = [(g_le[i], float(sub_v[i, c])) for i in m.tolist()]
                out[g, k] = bucket_quantile(qs[k], buckets)
        return _unique(_ordered(gids, out, present, first))

    # -- aggregations --------------------------------------------------------------------------

    def _aggregate(self, node: Aggregate) -> Steps:
        params = np.full(self.k, np.nan)
        has_param = node.param is not None
        if node.param is not None:
            p = self.eval(node.param)
            if not isinstance(p, Steps):
                params = p
        vec = self._vector(node.expr)
        if node.op not in _VECTOR_AGGREGATES or vec.order is not None:
            return self._per_step(
                lambda k, a: aggregate(node, a[0], float(params[k]) if has_param else None, self.labels),
                [vec],
            )
        labels = self.labels
        groups = labels.without(vec.lids, node.labels) if node.without else labels.keep(vec.lids, node.labels)
        k_n = self.k
        gids, ginv = np.unique(groups, return_inverse=True)
        g_n = gids.size
        ok = vec.ok
        op = node.op
        okf = ok.ravel()
        sums: tuple[np.ndarray, np.ndarray] | None = None
        if self.fused:
            cnt, first, sums = self._group_steps(ginv, g_n, vec, op in ("sum", "avg"))
        else:
            bins = _bins(ginv, k_n)
            cnt = np.bincount(bins, weights=okf, minlength=g_n * k_n).reshape(g_n, k_n)
            # the first present row of each group at each step (the instant path's group order)
            flat = np.flatnonzero(okf)
            first_flat = np.full(g_n * k_n, np.iinfo(np.int64).max)
            np.minimum.at(first_flat, bins[flat], flat // k_n)
            first = first_flat.reshape(g_n, k_n)
        present = cnt > 0
        out: np.ndarray
        with np.errstate(all="ignore"):
            if op == "count":
                out = cnt.astype(np.float64)
            elif op == "group":
                out = np.ones((g_n, k_n))
            elif op in ("sum", "avg"):
                out = self._group_sums(vec, ginv, okf, g_n * k_n, sums).reshape(g_n, k_n)
                if op == "avg":
                    out = out / cnt
                    for b in np.flatnonzero(np.isinf(out).ravel() & present.ravel()).tolist():
                        g, k = divmod(b, k_n)
                        sel = vec.v[(ginv == g) & ok[:, k], k]
                        if np.isfinite(sel).all():
                            out[g, k] = float(np.sum(sel / sel.size))
            else:  # min, max
                flat = np.flatnonzero(okf)
                acc = np.full(g_n * k_n, np.nan)
                (np.fmin if op == "min" else np.fmax).at(acc, _bins(ginv, k_n)[flat], vec.v.ravel()[flat])
                out = acc.reshape(g_n, k_n)
        return _ordered(gids, np.asarray(out, dtype=np.float64), present, first)

    def _group_steps(
        self, ginv: np.ndarray, g_n: int, vec: Steps, sums: bool
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Per (group, step): the rows present, the first of them, and (``sums``) the plain sum
        of their values and of their magnitudes (:func:`group_steps`, compiled: what the
        ``bincount``s and ``minimum.at`` of the reference path give)."""
        k_n = self.k
        cnt = np.zeros((g_n, k_n))
        first = np.full((g_n, k_n), np.iinfo(np.int64).max)
        total = np.zeros((g_n, k_n) if sums else (0, k_n))
        mag = np.zeros_like(total)
        group_steps(
            np.ascontiguousarray(ginv, dtype=np.int64),
            np.ascontiguousarray(vec.ok).view(np.uint8),
            np.ascontiguousarray(vec.v, dtype=np.float64),
            cnt,
            first,
            total,
            mag,
        )
        return cnt, first, (total.ravel(), mag.ravel()) if sums else None

    @staticmethod
    def _group_sums(
        vec: Steps,
        ginv: np.ndarray,
        okf: np.ndarray,
        n: int,
        sums: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """:func:`group_sum` of every (group, step) bin, elements added in row order (the plain
        sums and magnitudes given, else by ``bincount``)."""
        if sums is not None:
            out, mag = sums
        else:
            w = np.where(vec.ok, vec.v, 0.0).ravel()
            bins = _bins(ginv, vec.ok.shape[1])
            out = np.bincount(bins, weights=w, minlength=n)
            mag = np.bincount(bins, weights=np.abs(w), minlength=n)
        with np.errstate(all="ignore"):
            risky = np.flatnonzero(np.isfinite(mag) & (np.abs(out) < mag * 1e-9) & (mag > 0))
        if risky.size and sums is not None:
            w = np.where(vec.ok, vec.v, 0.0).ravel()
            bins = _bins(ginv, vec.ok.shape[1])
        for b in risky.tolist():
            members = np.flatnonzero((bins == b) & okf)
            out[b] = group_sum(w[members], np.zeros(members.size, dtype=np.int64), 1)[0]
        return out

    # -- binary operators ----------------------------------------------------------------------

    def _binary(self, node: Binary) -> Value:
        lhs = self.eval(node.lhs)
        rhs = self.eval(node.rhs)
        op = node.op
        if not isinstance(lhs, Steps) and not isinstance(rhs, Steps):
            if op not in _EXACT_OPS:
                return np.array([scalar_op(op, float(a), float(b)) for a, b in zip(lhs, rhs, strict=True)])
            val, keep = _apply(op, lhs, rhs)
            if keep is not None:
                return keep.astype(np.float64)
            return np.asarray(val, dtype=np.float64)
        if isinstance(lhs, Steps) and isinstance(rhs, Steps):
            if node.card == "many-to-many":
                return self._set_op(node, lhs, rhs)
            if op not in _EXACT_OPS or lhs.order is not None or rhs.order is not None:
                return self._per_step(
                    lambda k, a: _unique_vec(
                        vector_vector_op(node, a[0], a[1], self.labels, check_all=not self.v2)
                    ),
                    [lhs, rhs],
                )
            return _unique(self._match(node, lhs, rhs))
        swap = not isinstance(lhs, Steps)
        vec, s = (rhs, lhs) if swap else (lhs, rhs)
        assert isinstance(vec, Steps) and not isinstance(s, Steps)
        if op not in _EXACT_OPS:
            return self._per_step(
                lambda k, a: _unique_vec(vector_scalar_op(node, a[0], float(s[k]), swap, self.labels)), [vec]
            )
        sv = np.broadcast_to(s[None, :], vec.v.shape)
        val, keep = _apply(op, sv, vec.v) if swap else _apply(op, vec.v, sv)
        ok = vec.ok
        if keep is not None:
            val = vec.v
            if node.return_bool:
                val, keep = keep.astype(np.float64), None
            else:
                ok = ok & keep
        ids = vec.lids
        if op not in COMPARISONS or node.return_bool:
            ids = self.labels.drop_name(ids)
        return _unique(Steps(ids, np.asarray(val, dtype=np.float64), ok, vec.order))

    def _set_op(self, node: Binary, lhs: Steps, rhs: Steps) -> Steps:
        sig_l = _signatures(node, lhs.lids, self.labels)
        sig_r = _signatures(node, rhs.lids, self.labels)
        sigs, inv = np.unique(np.concatenate((sig_l, sig_r)), return_inverse=True)
        inv_l, inv_r = inv[: sig_l.size], inv[sig_l.size :]

        def seen(idx: np.ndarray, ok: np.ndarray) -> np.ndarray:
            per = np.zeros((sigs.size, self.k), dtype=np.int64)
            np.add.at(per, idx, ok.astype(np.int64))
            out: np.ndarray = per > 0
            return out

        if node.op in ("and", "unless"):
            on_r = seen(inv_r, rhs.ok)[inv_l]
            ok = lhs.ok & (on_r if node.op == "and" else ~on_r)
            return Steps(lhs.lids, lhs.v, ok, lhs.order)
        if lhs.order is not None or rhs.order is not None:
            return self._per_step(lambda k, a: _set_vec(node, a[0], a[1], self.labels), [lhs, rhs])
        extra = rhs.ok & ~seen(inv_l, lhs.ok)[inv_r]
        return Steps(
            np.concatenate((lhs.lids, rhs.lids)),
            np.concatenate((lhs.v, rhs.v)),
            np.concatenate((lhs.ok, extra)),
        )

    def _match(self, node: Binary, lhs: Steps, rhs: Steps) -> Steps:
        """One-to-one and many-to-one/one-to-many arithmetic and comparisons, as
        :func:`~devopsim.observe.promql.binary.vector_vector_op` does at each step."""
        labels = self.labels
        swapped = node.card == "one-to-many"
        many, one = (rhs, lhs) if swapped else (lhs, rhs)
        sig_m = _signatures(node, many.lids, labels)
        sig_o = _signatures(node, one.lids, labels)
        if _dup_present(sig_o, one.ok):
            raise Fallback("duplicate series on the 'one' side")
        order = np.argsort(sig_o, kind="stable")
        sorted_sig = sig_o[order]
        lo = np.searchsorted(sorted_sig, sig_m, side="left")
        hi = np.searchsorted(sorted_sig, sig_m, side="right")
        reps = hi - lo
        mi = np.repeat(np.arange(sig_m.size), reps)
        if mi.size:  # the "one" rows each "many" row matches, in signature order
            spans = [np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
            oi = order[np.concatenate(spans)]
        else:
            oi = mi
        pok = many.ok[mi] & one.ok[oi]
        vm, vo = many.v[mi], one.v[oi]
        vl, vr = (vo, vm) if swapped else (vm, vo)
        val, keep = _apply(node.op, vl, vr)
        if keep is not None and node.return_bool:
            val, keep = keep.astype(np.float64), None
        if not self.v2 and keep is not None and node.card == "one-to-one" and _dup_present(sig_m[mi], pok):
            raise Fallback("many-to-one matching must be explicit")
        if keep is not None:
            pok = pok & keep
        res = _result_labels(node, many.lids[mi], one.lids[oi], labels)
        sig = sig_m[mi]
        if node.card == "one-to-one":
            if _dup_present(sig, pok):
                raise Fallback("many-to-one matching must be explicit")
        elif mi.size:
            pair = np.unique(np.stack([sig, res]), axis=1, return_inverse=True)[1].ravel()
            if _dup_present(pair, pok):
                raise Fallback("grouping labels must ensure unique matches")
        return Steps(res, np.asarray(val, dtype=np.float64), pok)

    # -- step by step --------------------------------------------------------------------------

    def _per_step(self, fn: Callable[[int, list[Vector]], Vector], args: Sequence[Steps]) -> Steps:
        """``fn`` applied to each step's instant vectors, the results gathered into rows (one
        per label set and occurrence) with each step's element order."""
        rows: dict[tuple[int, int], int] = {}
        cells: list[tuple[int, int, float, int]] = []  # row, step, value, position
        for k in range(self.k):
            out = fn(k, [a.at(k) for a in args])
            seen: dict[int, int] = {}
            for pos, (lid, val) in enumerate(zip(out.ids.tolist(), out.vals.tolist(), strict=True)):
                occ = seen.get(lid, 0)
                seen[lid] = occ + 1
                r = rows.setdefault((lid, occ), len(rows))
                cells.append((r, k, val, pos))
        n = len(rows)
        lids = np.array([lid for lid, _ in rows], dtype=np.int64)
        v = np.zeros((n, self.k))
        ok = np.zeros((n, self.k), dtype=bool)
        order = np.zeros((n, self.k), dtype=np.int64)
        if cells:
            r_, k_, val_, pos_ = (np.array(c) for c in zip(*cells, strict=True))
            r_, k_ = r_.astype(np.int64), k_.astype(np.int64)
            v[r_, k_] = val_
            ok[r_, k_] = True
            order[r_, k_] = pos_.astype(np.int64)
        if _in_row_order(order, ok):
            return Steps(lids, v, ok)
        return Steps(lids, v, ok, order)


def _sort(name: str, vec: Vector) -> Vector:
    key = np.where(np.isnan(vec.vals), -np.inf if name == "sort_desc" else np.inf, vec.vals)
    order = np.argsort(-key if name == "sort_desc" else key, kind="stable")
    return Vector(vec.ids[order], vec.vals[order])


def _hq(q: float, vec: Vector, labels: LabelTable) -> Vector:
    from devopsim.observe.promql.funcs import histogram_quantile

    return histogram_quantile(q, vec, labels)


def _set_vec(node: Binary, lhs: Vector, rhs: Vector, labels: LabelTable) -> Vector:
    from devopsim.observe.promql.binary import set_op

    return set_op(node, lhs, rhs, labels)
