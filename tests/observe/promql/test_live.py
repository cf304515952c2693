"""Instant queries at successive times (rule evaluation) keep their selections up to date
incrementally; they must answer exactly what a selection built from the store at once does.

A range query of one step (``start == end``) reads its samples with a full build, so it is the
reference: the live path must give the same label sets and the same bits, step after step,
while the store grows with new tables (layout changes), new series, staleness markers, counter
resets and a row appended out of time order.
"""

from __future__ import annotations

import numpy as np

from devopsim.observe.promql import Engine
from devopsim.observe.store import MetricStore

EXPRS = [
    "rate(req_total[1m])",
    "sum by (code) (increase(req_total[2m]))",
    'sum(rate(req_total{code=~"5.."}[1m])) / sum(rate(req_total[1m]))',
    "req_total",
    "max_over_time(req_total[90s]) - min_over_time(req_total[90s])",
    "irate(req_total[1m]) + deriv(req_total[2m])",
    "changes(req_total[2m]) + resets(req_total[2m])",
    "avg_over_time(req_total[1m] offset 30s)",
]


def _grow(st: MetricStore, k: int, rng: np.random.Generator, totals: dict[int, float]) -> None:
    """Scrape ``k``: pod a always, pod b from scrape 6 (a new table), a 5xx series from 10,
    pod a gone (stale) from 30; counters reset now and then."""
    ids = [st.series("req_total", {"pod": "a", "code": "200"})]
    if k >= 6:
        ids.append(st.series("req_total", {"pod": "b", "code": "200"}))
    if k >= 10:
        ids.append(st.series("req_total", {"pod": "b", "code": "500"}))
    if k >= 30:
        st.mark_stale(15.0 * k, np.array(ids[:1]))
        ids = ids[1:]
    for sid in ids:
        totals[sid] = 0.0 if rng.random() < 0.05 else totals.get(sid, 0.0) + float(rng.integers(0, 50))
    st.append(15.0 * k, np.array(ids), np.array([totals[s] for s in ids]))


def _as_dict(out: object) -> dict[tuple[tuple[str, str], ...], float]:
    assert isinstance(out, list)
    return {tuple(sorted(s.labels.items())): s.value for s in out}


def test_successive_instant_queries_equal_a_full_build_at_every_step() -> None:
    rng = np.random.default_rng(7)
    st = MetricStore()
    totals: dict[int, float] = {}
    live = Engine(st)
    compared = 0
    for k in range(60):
        if k == 22:  # scrape 20 arrives after 21 was read: the table's rows are reordered
            _grow(st, 20, rng, totals)
            _grow(st, 22, rng, totals)
        elif k != 20:
            _grow(st, k, rng, totals)
        t = 15.0 * k + 7.5 * (k % 2)  # on and between scrapes
        for expr in EXPRS:
            got = _as_dict(live.instant(expr, t))
            ref = {tuple(sorted(lb.items())): float(v[0]) for lb, _, v in Engine(st).range(expr, t, t, 15.0)}
            assert got.keys() == ref.keys(), (expr, t)
            for key, v in ref.items():
                assert np.array_equal(np.float64(got[key]), np.float64(v), equal_nan=True), (expr, t, key)
            compared += len(ref)
    assert compared > 500


def test_a_query_back_in_time_is_answered_from_the_store_again() -> None:
    rng = np.random.default_rng(3)
    st = MetricStore()
    totals: dict[int, float] = {}
    for k in range(40):
        _grow(st, k, rng, totals)
    e = Engine(st)
    late = _as_dict(e.instant("rate(req_total[1m])", 580.0))
    early = _as_dict(e.instant("rate(req_total[1m])", 200.0))  # before what the live block kept
    ref = {
        tuple(sorted(lb.items())): float(v[0])
        for lb, _, v in Engine(st).range("rate(req_total[1m])", 200, 200, 1)
    }
    assert early == ref
    assert late == _as_dict(Engine(st).instant("rate(req_total[1m])", 580.0))
