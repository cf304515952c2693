"""``Engine.instant_many`` (one expression at many times at once) answers, at every time, what
``Engine.instant`` answers there: the same samples in the same order with the same bits, or
the same error.

Two sources of data and expressions: every case of Prometheus' own engine tests that runs
(shared/data/promql), evaluated over a grid of times across its data, and a simulated run
(tests/observe/rules/data/batched.yaml: pods come and go, counters restart, a canary) with
expressions covering every node type. The expressions the rules loop evaluates in batches
must be computed for all steps at once, not time by time (no fallback), else the
optimisation is gone while the results still agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import devopsim
from devopsim.observe.promql import Engine, PromQLError
from devopsim.observe.store import MetricStore
from tests.observe.promql.promqltest import Case, Outcome, run_file

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "promql"
FILES = sorted(CORPUS.glob("*.test"))
SCENARIO = Path(__file__).resolve().parents[1] / "rules" / "data" / "batched.yaml"

Result = list[devopsim.observe.promql.engine.Sample] | float | PromQLError


def _bits(x: float) -> int:
    return int(np.float64(x).view(np.int64))


def _same(got: Result, want: Result) -> bool:
    if isinstance(got, PromQLError) or isinstance(want, PromQLError):
        return isinstance(got, PromQLError) and isinstance(want, PromQLError) and str(got) == str(want)
    if isinstance(got, float) or isinstance(want, float):
        return isinstance(got, float) and isinstance(want, float) and _bits(got) == _bits(want)
    return [(s.labels, _bits(s.value)) for s in got] == [(s.labels, _bits(s.value)) for s in want]


def _instant(e: Engine, expr: str, t: float) -> Result:
    try:
        return e.instant(expr, t)
    except PromQLError as exc:
        return exc


def _check(store: MetricStore, expr: str, times: list[float]) -> list[str]:
    """``instant_many`` against ``instant`` (a fresh engine each, as different readers)."""
    many = Engine(store)
    got = many.instant_many(expr, times)
    ref = Engine(store)
    return [
        f"{expr} at {t}: {str(g)[:200]} != {str(w)[:200]}"
        for t, g in zip(times, got, strict=True)
        if not _same(g, w := _instant(ref, expr, t))
    ]


@pytest.mark.skipif(not FILES, reason="shared/data/promql is not present")
def test_every_corpus_case_equals_instant_queries_at_every_step() -> None:
    problems: list[str] = []
    ran = 0

    def on_case(engine: Engine, case: Case, outcome: Outcome) -> None:
        nonlocal ran
        if outcome.status == "skipped":
            return
        st = engine.store
        t, _, _ = st.columns()
        end = (float(t.max()) if t.size else 0.0) + 400.0
        step = max(7.0, end / 60)
        times = [float(x) for x in np.arange(0.0, end, step)]
        if case.instant_at is not None:
            times = sorted({*times, case.instant_at})
        problems.extend(_check(st, case.expr, times))
        ran += 1

    for path in FILES:
        run_file(path, on_case)
    assert ran > 500
    assert not problems, "\n".join(problems[:20])


# Every node type over a run's store. The first list must be evaluated for all steps at once.
VECTORISED = [
    "http_requests_total",
    'http_requests_total{service="front"} offset 2m',
    "rate(http_requests_total[1m])",
    'increase(http_requests_total{code=~"5.."}[5m])',
    "irate(http_requests_total[1m])",
    "delta(kube_pod_status_ready[2m])",
    "idelta(devopsim_replica_in_flight[1m])",
    "deriv(devopsim_replica_queue_length[2m])",
    "predict_linear(devopsim_replica_queue_length[2m], 60)",
    "changes(kube_pod_status_ready[5m]) + resets(http_requests_total[5m])",
    "avg_over_time(devopsim_replica_in_flight[2m]) / max_over_time(devopsim_replica_in_flight[2m])",
    "min_over_time(devopsim_replica_in_flight[90s]) - sum_over_time(devopsim_replica_in_flight[90s])",
    "count_over_time(http_requests_total[1m]) * last_over_time(kube_pod_info[1m])",
    "present_over_time(kube_pod_info[30s])",
    'absent_over_time(kube_pod_info{service="payments"}[1m])',
    "stddev_over_time(devopsim_replica_queue_length[2m]) + stdvar_over_time(devopsim_replica_in_flight[2m])",
    "quantile_over_time(0.9, devopsim_replica_in_flight[2m])",
    'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.001',
    "sum by (service) (rate(http_requests_total[1m]))",
    "sum without (pod, node) (rate(http_requests_total[1m]))",
    "avg by (service) (devopsim_replica_in_flight) + min by (service) (devopsim_replica_in_flight)",
    "max by (service, code) (rate(http_requests_total[1m])) - count by (service) (kube_pod_info)",
    "group by (service) (kube_pod_info)",
    "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[2m])))",
    "histogram_quantile(0.5, sum by (le, service) (rate(http_request_duration_seconds_bucket[2m])))",
    "histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[5m]))",
    "rate(http_requests_total[1m]) > 5",
    "rate(http_requests_total[1m]) > bool 5",
    "5 < rate(http_requests_total[1m])",
    "rate(http_requests_total[1m]) / on (service) group_left sum by (service) (rate(http_requests_total[1m]))",
    "sum by (service, code) (rate(http_requests_total[1m])) / ignoring (code) group_left sum by (service) (rate(http_requests_total[1m]))",
    "sum by (service, pod) (rate(http_requests_total[1m])) * on (pod) group_left (version) kube_pod_info",
    'kube_pod_info and on (pod) rate(http_requests_total{code="500"}[1m]) > 0',
    'kube_pod_info{service="front"} or kube_pod_info{service="payments"}',
    'kube_pod_info unless on (service) kube_pod_info{service="front"}',
    "sum(rate(http_requests_total[1m])) + time()",
    "scalar(sum(kube_pod_info)) * 2",
    "vector(1) + scalar(count(kube_pod_info))",
    'absent(kube_pod_info{service="payments"})',
    'absent(nonexistent{job="x"})',
    "abs(-devopsim_replica_in_flight) + ceil(devopsim_replica_in_flight / 3) + floor(devopsim_replica_in_flight)",
    "sqrt(devopsim_replica_in_flight) + sgn(devopsim_replica_queue_length - 1)",
    "round(rate(http_requests_total[1m]), 0.5) + clamp(devopsim_replica_in_flight, 1, 3)",
    "clamp_min(devopsim_replica_in_flight, 2) - clamp_max(devopsim_replica_in_flight, 2)",
    "-sum(rate(http_requests_total[1m]))",
    'count(ALERTS{alertstate="firing"}) or vector(0)',
    "1 + 2 * 3 - time() % 7",
]
# Not written out for all steps (applied to each step's vector, or time by time).
STEP_BY_STEP = [
    "topk(2, rate(http_requests_total[1m]))",
    "bottomk(1, sum by (pod) (rate(http_requests_total[1m])))",
    "quantile(0.5, rate(http_requests_total[1m]))",
    "stddev by (service) (devopsim_replica_in_flight) + stdvar by (service) (devopsim_replica_in_flight)",
    "sort_desc(sum by (pod) (rate(http_requests_total[1m])))",
    "sort(kube_pod_info)",
    "exp(-devopsim_replica_in_flight) + ln(devopsim_replica_in_flight + 1)",
    "log2(kube_pod_info) + log10(kube_pod_info)",
    "devopsim_replica_in_flight ^ 2",
    "2 ^ time() / 1e300",
    "rate(http_requests_total[1m]) * on (service) group_left sum by (service, pod) (rate(http_requests_total[1m]))",
    "http_requests_total / on (service) kube_pod_info",
    "rate(http_requests_total[1m])",
    '{__name__=~"kube_pod_info|kube_pod_status_ready"} * 2',
    "topk(scalar(count(kube_pod_info)) - 5, kube_pod_info)",
    "(sum by (pod) (rate(http_requests_total[1m])) or sum by (pod) (kube_pod_info)) / 2",
]


@pytest.fixture(scope="module")
def run_store() -> MetricStore:
    return devopsim.simulate(SCENARIO).store


@pytest.mark.parametrize("expr", VECTORISED + STEP_BY_STEP)
def test_a_run_store_gives_the_instant_answer_at_every_step(run_store: MetricStore, expr: str) -> None:
    times = [float(t) for t in np.arange(0.0, 7300.0, 83.0)] + [7199.5]
    assert not _check(run_store, expr, times)
    # evenly spaced, ranges a multiple of the spacing (windows start where earlier ones end)
    assert not _check(run_store, expr, [float(t) for t in np.arange(2400.0, 6000.0, 60.0)])


@pytest.mark.parametrize("expr", VECTORISED)
def test_series_without_samples_in_reach_change_no_step(run_store: MetricStore, expr: str) -> None:
    # Steps in the run's last ten minutes: the selectors match series of pods gone long before
    # (no sample within any step's reach), which the step path leaves out of its arrays.
    sids = run_store.series_of("http_requests_total")
    late = [sid for sid in sids if (run_store.samples(sid)[0] >= 6000.0).any()]
    assert 0 < len(late) < len(sids)
    assert not _check(run_store, expr, [float(t) for t in np.arange(6600.0, 7200.0, 30.0)])


@pytest.mark.parametrize("expr", VECTORISED)
def test_common_expressions_are_evaluated_for_all_steps_at_once(run_store: MetricStore, expr: str) -> None:
    e = Engine(run_store)
    e.instant_many(expr, [float(t) for t in np.arange(0.0, 7200.0, 30.0)])
    assert e.fallbacks == []


def test_times_that_do_not_rise_are_answered_time_by_time(run_store: MetricStore) -> None:
    expr = "sum(rate(http_requests_total[1m]))"
    times = [600.0, 300.0, 300.0, 900.0]
    assert not _check(run_store, expr, times)
    assert Engine(run_store).instant_many(expr, []) == []


def test_an_expression_outside_the_subset_is_its_error_at_every_step(run_store: MetricStore) -> None:
    got = Engine(run_store).instant_many("label_replace(up, 'a', 'b', 'c', 'd')", [0.0, 30.0])
    assert len(got) == 2 and all(isinstance(g, PromQLError) for g in got)
    assert str(got[0]) == str(_instant(Engine(run_store), "label_replace(up, 'a', 'b', 'c', 'd')", 0.0))


def test_element_order_that_changes_between_steps_is_kept() -> None:
    """Groups come in the order of their first element, which changes as series come and go
    (``a`` of group 2 sorts first but only exists early on); ``or`` puts its right-hand
    series after the left-hand ones, whichever they are."""

    def pts(scale: float, shift: float) -> list[tuple[float, float]]:
        return [(15.0 * k, scale * k + shift) for k in range(40)]

    store = MetricStore.from_series(
        [
            ("m", {"a": "1", "g": "2", "le": "1"}, pts(0.1, 3.3)[:12]),
            ("m", {"a": "2", "g": "1", "le": "1"}, pts(0.7, 0.3)),
            ("m", {"a": "3", "g": "2", "le": "+Inf"}, pts(-0.3, 10.0)),
            ("m", {"a": "4", "g": "1", "le": "+Inf"}, pts(1.1, 0.01)[20:]),
            ("m", {"a": "5", "g": "1", "le": "0.5"}, pts(0.37, 0.13)),
            ("n", {"a": "1", "g": "3"}, pts(0.2, 0.4)[5:30]),
        ]
    )
    times = [float(t) for t in np.arange(0.0, 900.0, 10.0)]
    exprs = [
        "sum by (g) (m)",
        "max by (g) (rate(m[1m]))",
        "histogram_quantile(0.5, m)",
        "sum by (g) (m) or on (g) sum by (g) (n)",
        "n or m",
        "(n or m) * 2",
        "sum by (le) (n or m)",
        "topk(1, m)",
        "sort_desc(m) + 1",
        "sum by (g) (sort_desc(m))",
        "sum by (le) (sort(m)) / count by (le) (sort_desc(m))",
        "histogram_quantile(0.9, sort_desc(m))",
    ]
    for expr in exprs:
        assert not _check(store, expr, times), expr


def _range_by_instants(store: MetricStore, expr: str, start: float, end: float, step: float) -> list:
    """A range query as Prometheus defines it: the instant query at every step."""
    e = Engine(store)
    series: dict[tuple, tuple[list[float], list[float]]] = {}
    n = round((end - start) / step)
    for i in range(n + 1):
        t = (round(start * 1000) + i * round(step * 1000)) / 1000.0
        out = e.instant(expr, t)
        samples = out if isinstance(out, list) else [devopsim.observe.promql.engine.Sample({}, out)]
        for smp in samples:
            tv = series.setdefault(tuple(sorted(smp.labels.items())), ([], []))
            tv[0].append(t)
            tv[1].append(smp.value)
    return [(dict(k), np.asarray(t), np.asarray(v)) for k, (t, v) in sorted(series.items())]


@pytest.mark.parametrize("max_cells", [1 << 21, 500])
@pytest.mark.parametrize("expr", VECTORISED[::3] + STEP_BY_STEP[:3] + ["sum(kube_pod_info) + 1"])
def test_a_range_query_is_the_instant_query_at_every_step(
    run_store: MetricStore, expr: str, max_cells: int
) -> None:
    e = Engine(run_store)
    e.max_cells = max_cells  # a small budget: the steps are evaluated a few at a time
    got = e.range(expr, 1200.0, 5400.0, 45.0)
    want = _range_by_instants(run_store, expr, 1200.0, 5400.0, 45.0)
    assert [g[0] for g in got] == [w[0] for w in want]
    for (_, gt, gv), (_, wt, wv) in zip(got, want, strict=True):
        assert gt.tolist() == wt.tolist() and gv.view(np.int64).tolist() == wv.view(np.int64).tolist()
    assert e.fallbacks == [] or expr in STEP_BY_STEP[:3]
