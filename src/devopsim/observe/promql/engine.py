"""The PromQL engine: instant and range queries over a run's :class:`MetricStore`.

Evaluation mirrors Prometheus' engine step by step: a range query is the
instant query at ``start, start+step, ..., end``; every node evaluates to a
scalar or an instant vector (label-set ids plus values, see
:mod:`devopsim.observe.promql.labels`), and range vectors exist only as
function arguments. Times are simulated seconds; internally integer
milliseconds, like Prometheus, so window edges compare exactly.

Two semantics are offered. ``prometheus3`` (the default, current Prometheus):
range windows and the lookback are left-open, ``(t - d, t]``, and ``.`` in a
regex matches newlines. ``prometheus2`` reproduces Prometheus 2.x (the closed
window ``[t - d, t]`` and 2.x's order of the rate-extrapolation limits), for
comparison with a 2.x server.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np

from devopsim.observe.promql.aggregate import aggregate
from devopsim.observe.promql.ast import (
    Aggregate,
    Binary,
    Call,
    MatrixSel,
    Node,
    Number,
    PromQLError,
    Selector,
    StringLit,
    Unary,
    parse,
    value_type,
)
from devopsim.observe.promql.binary import (
    MatchError,
    Vector,
    scalar_op,
    set_op,
    vector_scalar_op,
    vector_vector_op,
)
from devopsim.observe.promql.funcs import absent_labels, histogram_quantile, simple_function
from devopsim.observe.promql.labels import LabelTable
from devopsim.observe.promql.rangefuncs import apply_range_function
from devopsim.observe.promql.select import AGGREGATE_FOR, Selection
from devopsim.observe.promql.steps import StepEvaluator, Steps, TooManyCells

if TYPE_CHECKING:
    from devopsim.observe.store import MetricStore

__all__ = ["Engine", "Sample", "check", "selected_metrics"]

Semantics = Literal["prometheus3", "prometheus2"]


class Sample(NamedTuple):
    """One element of an instant vector result."""

    labels: dict[str, str]
    value: float


def check(expr: str) -> None:
    """Parse ``expr`` and check it is inside the supported subset; raise :class:`PromQLError` if not."""
    node = parse(expr)
    if value_type(node) in ("string", "matrix"):
        raise PromQLError(expr, f"a {value_type(node)} result is not supported; give a vector or scalar")


def selected_metrics(expr: str) -> set[str] | None:
    """The metric names ``expr`` reads, or None when a selector has no fixed name (``{job="x"}``,
    ``{__name__=~"http_.*"}``). Raises :class:`PromQLError` if ``expr`` is not supported."""
    names: set[str] = set()
    stack: list[Node] = [parse(expr)]
    while stack:
        node = stack.pop()
        if isinstance(node, MatrixSel):
            node = node.selector
        if isinstance(node, Selector):
            fixed = [m.value for m in node.matchers if m.name == "__name__" and m.op == "="]
            if not fixed:
                return None
            names.add(fixed[0])
        elif isinstance(node, Call):
            stack.extend(node.args)
        elif isinstance(node, Aggregate):
            stack.append(node.expr)
            if node.param is not None:
                stack.append(node.param)
        elif isinstance(node, Binary):
            stack += [node.lhs, node.rhs]
        elif isinstance(node, Unary):
            stack.append(node.expr)
    return names


Value = Vector | float


class Engine:
    """Evaluates PromQL over one store.

    Args:
        store: the run's time-series store.
        lookback_delta: how far back (seconds) an instant selector looks for a sample (Prometheus: 5m).
        semantics: ``prometheus3`` (default) or ``prometheus2``; see the module docstring.
    """

    def __init__(
        self, store: MetricStore, lookback_delta: float = 300.0, *, semantics: Semantics = "prometheus3"
    ) -> None:
        if semantics not in ("prometheus3", "prometheus2"):
            raise ValueError(f"semantics must be prometheus3 or prometheus2, not {semantics!r}")
        self.store = store
        self.lookback_ms = round(lookback_delta * 1000)
        self.v2 = semantics == "prometheus2"
        self.labels = LabelTable()
        self.selection = Selection(store, self.labels, dotall=not self.v2)
        self._rspan: tuple[int, int] | None = None  # a range query's first and last step (ms)
        self.fallbacks: list[str] = []
        """Why :meth:`instant_many` or :meth:`range` evaluated an expression time by time."""
        self._reads: dict[str, set[str] | None] = {}  # expression -> the metric names it reads
        self.max_cells = 1 << 21
        """The most (series x steps) one selector may span in a pass over many steps."""

    # -- public API ----------------------------------------------------------------------------

    def instant(self, expr: str, t: float) -> list[Sample] | float:
        """Evaluate ``expr`` at simulated time ``t`` (s): a list of samples, or a float for a scalar."""
        self._settle(expr)
        check(expr)
        node = parse(expr)
        out = self._eval_checked(expr, node, round(t * 1000))
        if isinstance(out, Vector):
            return [
                Sample(self.labels.dict(int(i)), float(v)) for i, v in zip(out.ids, out.vals, strict=True)
            ]
        return float(out)

    def instant_many(self, expr: str, times: Sequence[float]) -> list[list[Sample] | float | PromQLError]:
        """What :meth:`instant` gives at each of ``times`` (s, rising), or the
        :class:`PromQLError` it raises there; evaluated for every time at once where the
        expression allows (see :mod:`devopsim.observe.promql.steps`), else time by time."""
        self._settle(expr)
        ts = [round(t * 1000) for t in times]
        try:
            check(expr)
            node = parse(expr)
        except PromQLError as exc:
            return [exc] * len(ts)
        if ts and all(b > a for a, b in itertools.pairwise(ts)):
            parts = self._steps(expr, node, np.asarray(ts, dtype=np.int64), live=True)
            if parts is not None:
                return [r for _, out in parts for r in _unpack(out, self.labels)]
        res: list[list[Sample] | float | PromQLError] = []
        for t in ts:
            try:
                res.append(self._unpack_one(self._eval_checked(expr, node, t)))
            except PromQLError as exc:
                res.append(exc)
        return res

    def _steps(
        self, expr: str, node: Node, ts: np.ndarray, *, live: bool
    ) -> list[tuple[np.ndarray, Steps | np.ndarray]] | None:
        """``node`` at every step of ``ts`` (rising ms), as (steps, value) in chunks of steps
        small enough for the series matched; None to evaluate it time by time instead."""
        out: list[tuple[np.ndarray, Steps | np.ndarray]] = []
        size, i = ts.size, 0
        while i < ts.size:
            part = ts[i : i + size]
            try:
                ev = StepEvaluator(
                    self.labels,
                    self.selection,
                    part,
                    self.lookback_ms,
                    self.v2,
                    live=live,
                    max_cells=self.max_cells,
                )
                out.append((part, ev.eval(node)))
            except TooManyCells as exc:
                size = max(1, ev.max_cells // exc.rows)
                continue
            except Exception as exc:  # an optimisation only: time by time is the definition
                self.fallbacks.append(f"{expr}: {type(exc).__name__}: {exc}")
                return None
            i += part.size
        return out

    def _settle(self, expr: str) -> None:
        """Have the rows owed to the store written if ``expr`` may read them."""
        if expr not in self._reads:
            try:
                self._reads[expr] = selected_metrics(expr)
            except PromQLError:
                self._reads[expr] = None
        self.store.settle(self._reads[expr])

    def _unpack_one(self, out: Value) -> list[Sample] | float:
        if isinstance(out, Vector):
            return [
                Sample(self.labels.dict(int(i)), float(v)) for i, v in zip(out.ids, out.vals, strict=True)
            ]
        return float(out)

    def range(
        self, expr: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], np.ndarray, np.ndarray]]:
        """Evaluate ``expr`` at ``start, start+step, ..., end`` (s): ``(labels, times, values)`` each."""
        self._settle(expr)
        check(expr)
        if step <= 0:
            raise PromQLError(expr, "the step of a range query must be positive")
        if end < start:
            raise PromQLError(expr, "the end of a range query must not be before its start")
        node = parse(expr)
        s_ms, e_ms, st_ms = round(start * 1000), round(end * 1000), round(step * 1000)
        parts = self._steps(expr, node, np.arange(s_ms, e_ms + 1, st_ms, dtype=np.int64), live=False)
        if parts is not None:
            return _series(parts, self.labels)
        series: dict[int, tuple[list[float], list[float]]] = {}
        self._rspan = (s_ms, e_ms)  # read each selector's samples once for every step
        try:
            for ts in range(s_ms, e_ms + 1, st_ms):
                out = self._eval_checked(expr, node, ts)
                if not isinstance(out, Vector):
                    out = Vector(np.array([self.labels.empty]), np.array([out]))
                for lid, v in zip(out.ids.tolist(), out.vals.tolist(), strict=True):
                    tv = series.setdefault(lid, ([], []))
                    tv[0].append(ts / 1000.0)
                    tv[1].append(v)
        finally:
            self._rspan = None
        ordered = sorted(series.items(), key=lambda kv: self.labels.sets[kv[0]])
        return [(self.labels.dict(lid), np.asarray(t), np.asarray(v)) for lid, (t, v) in ordered]

    # -- evaluation ----------------------------------------------------------------------------

    def _eval_checked(self, expr: str, node: Node, ts: int) -> Value:
        try:
            return self._eval(node, ts)
        except MatchError as exc:
            raise PromQLError(expr, str(exc)) from None
        except ValueError as exc:
            raise PromQLError(expr, f"cannot evaluate: {exc}") from None

    def _eval(self, node: Node, ts: int) -> Value:
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Selector):
            return self._select(node, ts)
        if isinstance(node, Unary):
            inner = self._eval(node.expr, ts)
            if isinstance(inner, Vector):
                return _unique(Vector(self.labels.drop_name(inner.ids), -inner.vals))
            return -inner
        if isinstance(node, Binary):
            return self._binary(node, ts)
        if isinstance(node, Aggregate):
            param = None
            if node.param is not None:
                p = self._eval(node.param, ts)
                param = float(p) if not isinstance(p, Vector) else float("nan")
            vec = self._eval(node.expr, ts)
            assert isinstance(vec, Vector)
            return aggregate(node, vec, param, self.labels)
        if isinstance(node, Call):
            return self._call(node, ts)
        if isinstance(node, MatrixSel | StringLit):
            raise ValueError("range vectors and strings can only be function arguments")
        raise ValueError(f"cannot evaluate {type(node).__name__}")  # pragma: no cover

    def _bounds(self, ts: int, offset_ms: int, back_ms: int) -> tuple[int, int]:
        """The sample span (ms) a selector with this offset and reach needs at ``ts``."""
        s, e = self._rspan if self._rspan is not None else (ts, ts)
        return s - offset_ms - back_ms, e - offset_ms

    def _select(self, sel: Selector, ts: int) -> Vector:
        block = self.selection.block(
            sel, *self._bounds(ts, sel.offset_ms, self.lookback_ms), live=self._rspan is None
        )
        at = ts - sel.offset_ms
        idx, ok = block.last_at(at, self.lookback_ms, left_open=not self.v2)
        return Vector(block.lids[ok], block.v[idx[ok]])

    def _binary(self, node: Binary, ts: int) -> Value:
        lhs = self._eval(node.lhs, ts)
        rhs = self._eval(node.rhs, ts)
        if not isinstance(lhs, Vector) and not isinstance(rhs, Vector):
            return scalar_op(node.op, lhs, rhs)
        if isinstance(lhs, Vector) and isinstance(rhs, Vector):
            if node.card == "many-to-many":
                return set_op(node, lhs, rhs, self.labels)
            return _unique(vector_vector_op(node, lhs, rhs, self.labels, check_all=not self.v2))
        if isinstance(lhs, Vector):
            assert not isinstance(rhs, Vector)
            return _unique(vector_scalar_op(node, lhs, rhs, False, self.labels))
        assert isinstance(rhs, Vector) and not isinstance(lhs, Vector)
        return _unique(vector_scalar_op(node, rhs, lhs, True, self.labels))

    def _scalar_arg(self, node: Node, ts: int) -> float:
        v = self._eval(node, ts)
        if isinstance(v, Vector):  # pragma: no cover - the parser checks argument types
            raise ValueError("expected a scalar argument")
        return float(v)

    def _call(self, node: Call, ts: int) -> Value:
        name, args = node.func, node.args
        if name == "time":
            return ts / 1000.0
        if name == "vector":
            return Vector(np.array([self.labels.empty]), np.array([self._scalar_arg(args[0], ts)]))
        msel = next((a for a in args if isinstance(a, MatrixSel)), None)
        if msel is not None:
            return self._range_call(node, msel, ts)
        if name == "scalar":
            vec = self._eval(args[0], ts)
            assert isinstance(vec, Vector)
            return float(vec.vals[0]) if vec.vals.size == 1 else float("nan")
        if name == "absent":
            vec = self._eval(args[0], ts)
            assert isinstance(vec, Vector)
            if vec.ids.size:
                return Vector.empty()
            sel = args[0].matchers if isinstance(args[0], Selector) else None
            return Vector(np.array([self.labels.intern_dict(absent_labels(sel))]), np.array([1.0]))
        if name == "histogram_quantile":
            q = self._scalar_arg(args[0], ts)
            vec = self._eval(args[1], ts)
            assert isinstance(vec, Vector)
            return _unique(histogram_quantile(q, vec, self.labels))
        if name in ("sort", "sort_desc"):
            vec = self._eval(args[0], ts)
            assert isinstance(vec, Vector)
            key = np.where(np.isnan(vec.vals), -np.inf if name == "sort_desc" else np.inf, vec.vals)
            order = np.argsort(-key if name == "sort_desc" else key, kind="stable")
            return Vector(vec.ids[order], vec.vals[order])
        vec = self._eval(args[0], ts)
        assert isinstance(vec, Vector)
        scalars = [self._scalar_arg(a, ts) for a in args[1:]]
        return _unique(simple_function(name, vec, scalars, self.labels))

    def _range_call(self, node: Call, msel: MatrixSel, ts: int) -> Vector:
        name = node.func
        sel = msel.selector
        aggr = AGGREGATE_FOR.get(name, "avg") if self.store.has_downsampled else "avg"
        block = self.selection.block(
            sel, *self._bounds(ts, sel.offset_ms, msel.range_ms), aggr=aggr, live=self._rspan is None
        )
        if block.downsampled and name == "count_over_time":
            name = "sum_over_time"  # raw samples count 1 each, downsampled windows their count
        window = block.window(ts - sel.offset_ms, msel.range_ms, left_open=not self.v2)
        if block.downsampled and name == "avg_over_time":
            # Thanos: sum and count aggregates, so windows of different sizes weigh right
            bounds = self._bounds(ts, sel.offset_ms, msel.range_ms)
            total = self.selection.block(sel, *bounds, aggr="sum")
            count = self.selection.block(sel, *bounds, aggr="count")
            at = ts - sel.offset_ms
            w_sum = total.window(at, msel.range_ms, left_open=not self.v2)
            w_cnt = count.window(at, msel.range_ms, left_open=not self.v2)
            lids, sums = apply_range_function("sum_over_time", w_sum, msel.range_ms, 0.0, self.v2)
            _, counts = apply_range_function("sum_over_time", w_cnt, msel.range_ms, 0.0, self.v2)
            vals = np.asarray(sums, dtype=np.float64) / np.asarray(counts, dtype=np.float64)
            return _unique(Vector(self.labels.drop_name(lids), vals))
        if name == "absent_over_time":
            if window.lids.size:
                return Vector.empty()
            lid = self.labels.intern_dict(absent_labels(msel.selector.matchers))
            return Vector(np.array([lid]), np.array([1.0]))
        others = [a for a in node.args if a is not msel]
        param = self._scalar_arg(others[0], ts) if others else 0.0
        lids, vals = apply_range_function(name, window, msel.range_ms, param, self.v2)
        if name != "last_over_time":
            lids = self.labels.drop_name(lids)
        return _unique(Vector(lids, np.asarray(vals, dtype=np.float64)))


def _series(
    parts: list[tuple[np.ndarray, Steps | np.ndarray]], labels: LabelTable
) -> list[tuple[dict[str, str], np.ndarray, np.ndarray]]:
    """A range query's series from values over its steps: each label set's (times, values)
    in step order, series in label order (a scalar is one series without labels)."""
    lids_l, ks_l, t_l, v_l = [], [], [], []
    base = 0
    for ts, out in parts:
        if not isinstance(out, Steps):
            out = Steps(np.array([labels.empty]), out[None, :], np.ones((1, ts.size), dtype=bool))
        rows, ks = np.nonzero(out.ok)
        pos = out.order[rows, ks] if out.order is not None else rows
        o = np.lexsort((pos, ks))  # step by step, in each step's element order
        rows, ks = rows[o], ks[o]
        lids_l.append(out.lids[rows])
        ks_l.append(ks + base)
        t_l.append(ts[ks] / 1000.0)
        v_l.append(out.v[rows, ks])
        base += ts.size
    lids, t, v = np.concatenate(lids_l), np.concatenate(t_l), np.concatenate(v_l)
    by = np.argsort(lids, kind="stable")
    lids, t, v = lids[by], t[by], v[by]
    uniq, first = np.unique(lids, return_index=True)
    bounds = [*first.tolist(), lids.size]
    got = {
        int(lid): (t[bounds[j] : bounds[j + 1]], v[bounds[j] : bounds[j + 1]]) for j, lid in enumerate(uniq)
    }
    ordered = sorted(got.items(), key=lambda kv: labels.sets[kv[0]])
    return [(labels.dict(lid), tt, vv) for lid, (tt, vv) in ordered]


def _unpack(out: Steps | np.ndarray, labels: LabelTable) -> list[list[Sample] | float | PromQLError]:
    """Each step's instant query result from a value over steps."""
    if not isinstance(out, Steps):
        return [float(x) for x in out.tolist()]
    res: list[list[Sample] | float | PromQLError] = []
    dicts: dict[int, dict[str, str]] = {}
    some = np.asarray(out.ok.any(axis=0)).tolist()
    for k in range(out.ok.shape[1]):
        if not some[k]:
            res.append([])
            continue
        vec = out.at(k)
        samples = []
        for lid, v in zip(vec.ids.tolist(), vec.vals.tolist(), strict=True):
            d = dicts.get(lid)
            if d is None:
                d = dicts[lid] = labels.dict(lid)
            samples.append(Sample(dict(d), v))
        res.append(samples)
    return res


def _unique(vec: Vector) -> Vector:
    if vec.ids.size > 1 and np.unique(vec.ids).size != vec.ids.size:
        raise ValueError("vector cannot contain metrics with the same labelset")
    return vec
