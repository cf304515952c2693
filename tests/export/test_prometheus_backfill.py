"""Our PromQL engine against a real Prometheus on the same run.

A real scenario runs to a results folder, is exported as OpenMetrics,
backfilled with ``promtool tsdb create-blocks-from openmetrics`` and served by
``/usr/bin/prometheus``. Every expression of the corpus (the whole supported
subset) is then evaluated by Prometheus' HTTP API and by our Engine, as instant
queries at several times and as range queries, and the answers must agree: the
same label sets, values within 1e-9 relative (NaN equal to NaN). The installed
Prometheus is 2.x, so the Engine runs with ``semantics="prometheus2"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devopsim.export.openmetrics import DEFAULT_EPOCH, write_openmetrics
from devopsim.export.run_ref import load_store, resolve_run
from devopsim.observe.promql import Engine
from tests.export.prometheus import Prometheus, parse_value, require_binaries, same_value

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "examples" / "checkout.yaml"

POD = "pod, node, zone, region, cloud, namespace, version, role"
CORPUS = [
    # selectors: all four matcher types, regex on the name, offset
    "http_requests_total",
    'http_requests_total{service="catalog"}',
    'http_requests_total{code!="200"}',
    'http_requests_total{code=~"5..", service=~"cat.*|front.*"}',
    'kube_pod_status_ready{service!~"cache|orders-db.*"}',
    '{__name__=~"kube_deployment_.*"}',
    "kube_deployment_status_replicas_available offset 2m",
    # counters
    "rate(http_requests_total[1m])",
    "increase(container_cpu_usage_seconds_total[2m])",
    "rate(devopsim_client_requests_total[5m] offset 1m)",
    "irate(container_cpu_usage_seconds_total[1m])",
    "idelta(container_memory_working_set_bytes[1m])",
    "delta(container_memory_working_set_bytes[2m])",
    "resets(kube_pod_container_status_restarts_total[10m])",
    "changes(kube_deployment_status_replicas_available[10m])",
    "deriv(container_memory_working_set_bytes[5m])",
    "predict_linear(container_cpu_usage_seconds_total[5m], 3600)",
    # *_over_time
    "avg_over_time(devopsim_replica_queue_length[5m])",
    "min_over_time(devopsim_replica_in_flight[3m])",
    "max_over_time(devopsim_replica_in_flight[3m])",
    "sum_over_time(devopsim_requests_in_system[2m])",
    "count_over_time(kube_pod_status_ready[5m])",
    "quantile_over_time(0.9, devopsim_replica_in_flight[5m])",
    "stddev_over_time(devopsim_requests_in_system[5m])",
    "stdvar_over_time(devopsim_requests_in_system[5m])",
    "last_over_time(kube_deployment_spec_replicas[1m])",
    "present_over_time(kube_pod_status_ready[1m])",
    'absent_over_time(nonexistent_metric{job="x"}[5m])',
    # aggregations
    "sum by (service) (rate(http_requests_total[5m]))",
    f"sum without ({POD}) (increase(http_requests_total[2m]))",
    "avg by (service) (container_memory_working_set_bytes)",
    "min by (service) (rate(container_cpu_usage_seconds_total[2m]))",
    "max without (pod) (devopsim_replica_queue_length)",
    "count by (service) (kube_pod_status_ready == 1)",
    "stddev by (service) (rate(container_cpu_usage_seconds_total[2m]))",
    "stdvar(rate(container_cpu_usage_seconds_total[2m]))",
    "group by (service, version) (kube_pod_status_ready)",
    "topk(3, rate(http_requests_total[5m]))",
    "bottomk(2, container_memory_working_set_bytes)",
    "quantile by (service) (0.9, rate(container_cpu_usage_seconds_total[5m]))",
    # histograms
    "histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket[2m])))",
    "histogram_quantile(0.9, rate(devopsim_client_request_duration_seconds_bucket[2m]))",
    "rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])",
    # binary operators and vector matching
    'sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))'
    " / sum by (service) (rate(http_requests_total[5m]))",
    "sum by (service, pod) (rate(http_requests_total[5m])) * on (pod) group_left (node, zone) kube_pod_status_ready",
    "kube_pod_status_ready * on (pod) group_right () container_memory_working_set_bytes",
    "container_memory_working_set_bytes / ignoring (container, condition) kube_pod_status_ready",
    "kube_horizontalpodautoscaler_status_desired_replicas - kube_horizontalpodautoscaler_status_current_replicas",
    "kube_pod_status_ready == bool 1",
    "container_memory_working_set_bytes > 1e8",
    "1e8 < container_memory_working_set_bytes",
    "rate(http_requests_total[5m]) > bool on () group_left scalar(sum(rate(http_requests_total[5m]))) / 100",
    "http_requests_total and on (pod) kube_pod_status_ready",
    'http_requests_total{code="200"} or http_requests_total{service="catalog"}',
    "kube_pod_status_ready unless on (service) kube_deployment_spec_replicas",
    "container_memory_working_set_bytes % 7 + 2 ^ 3 - ignoring (container) (devopsim_replica_in_flight atan2 2)",
    # functions, scalars and literals
    "abs(delta(container_memory_working_set_bytes[2m]))",
    "clamp(devopsim_replica_in_flight, 1, 3)",
    "clamp_min(rate(http_requests_total[1m]), 10)",
    "clamp_max(rate(http_requests_total[1m]), 10)",
    "round(rate(container_cpu_usage_seconds_total[2m]), 0.01)",
    "sqrt(container_memory_working_set_bytes) + ln(container_memory_working_set_bytes)"
    " - ignoring (container) ceil(floor(log2(devopsim_replica_in_flight + 1)))",
    "-rate(http_requests_total[1m])",
    "sgn(deriv(devopsim_requests_in_system[2m])) * 2 + on () group_right exp(-devopsim_replica_in_flight)",
    "exp(-devopsim_replica_in_flight) + ignoring (container) log10(container_memory_working_set_bytes)",
    "sort_desc(rate(http_requests_total[5m]))",
    "sort(container_memory_working_set_bytes)",
    'absent(nonexistent_metric{job="x", instance!="y"})',
    "absent(http_requests_total)",
    "vector(1) + {TIME}",
    "scalar(sum(kube_deployment_spec_replicas))",
    "(1 + 2) * 3 - -2 ^ 2",
    "{TIME}",
    "rate(http_requests_total[5m]) * 0 + {TIME}",
]


def _for_prometheus(expr: str) -> str:
    """``time()`` is Unix time in Prometheus and simulated time in the twin: shift it by the epoch."""
    return expr.replace("{TIME}", f"(time() - {DEFAULT_EPOCH})")


def _for_engine(expr: str) -> str:
    return expr.replace("{TIME}", "time()")


INSTANT_TIMES = [0.0, 60.0, 300.0, 607.5, 900.0, 1200.0, 1290.0]
RANGES = [(0.0, 1200.0, 60.0), (33.0, 1250.0, 37.0)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, Engine]]:
    require_binaries()
    from devopsim.api import simulate

    work = tmp_path_factory.mktemp("prom")
    result = simulate(EXAMPLE, overrides=["duration=20m"])
    result.write(work / "run")
    store = load_store(resolve_run(work / "run"))
    om = work / "metrics.om"
    with om.open("w", encoding="utf-8") as f:
        write_openmetrics(store, f, start=DEFAULT_EPOCH)
    prom = Prometheus(om, work)
    try:
        yield prom, Engine(store, semantics="prometheus2")
    finally:
        prom.close()


def _prom_instant(prom: Prometheus, expr: str, t: float) -> dict[tuple[tuple[str, str], ...], float] | float:
    data = prom.api("query", query=expr, time=f"{DEFAULT_EPOCH + t:.3f}")
    if data["resultType"] == "scalar":
        return parse_value(data["result"][1])
    return {tuple(sorted(r["metric"].items())): parse_value(r["value"][1]) for r in data["result"]}


def _compare(
    expected: dict[tuple[tuple[str, str], ...], float], got: dict[tuple[tuple[str, str], ...], float]
) -> None:
    assert sorted(got) == sorted(expected)
    bad = {k: (expected[k], got[k]) for k in expected if not same_value(expected[k], got[k])}
    assert not bad, bad


def test_corpus_is_large_and_covers_the_subset() -> None:
    from devopsim.observe.promql import AGGREGATIONS, FUNCTIONS

    text = "\n".join(CORPUS)
    assert len(CORPUS) >= 40
    missing = [f for f in (*FUNCTIONS, *AGGREGATIONS) if f + "(" not in text and f + " " not in text]
    assert missing == [], missing


@pytest.mark.parametrize("expr", CORPUS)
def test_instant_queries_agree_with_prometheus(served: tuple[Prometheus, Engine], expr: str) -> None:
    prom, engine = served
    nonempty = 0
    for t in INSTANT_TIMES:
        expected = _prom_instant(prom, _for_prometheus(expr), t)
        got = engine.instant(_for_engine(expr), t)
        if isinstance(expected, float):
            assert isinstance(got, float) and same_value(expected, got), (t, expected, got)
            nonempty += 1
            continue
        assert isinstance(got, list), (t, got)
        _compare(expected, {tuple(sorted(s.labels.items())): s.value for s in got})
        nonempty += bool(expected)
    if not expr.startswith("absent") and "unless" not in expr and "nonexistent" not in expr:
        assert nonempty, "Prometheus returned nothing at every time: the case proves nothing"


@pytest.mark.parametrize("expr", CORPUS)
def test_range_queries_agree_with_prometheus(served: tuple[Prometheus, Engine], expr: str) -> None:
    prom, engine = served
    for start, end, step in RANGES:
        data = prom.api(
            "query_range",
            query=_for_prometheus(expr),
            start=f"{DEFAULT_EPOCH + start:.3f}",
            end=f"{DEFAULT_EPOCH + end:.3f}",
            step=f"{step}",
        )
        expected = {
            tuple(sorted(r["metric"].items())): [
                (round(float(ts) - DEFAULT_EPOCH, 3), parse_value(v)) for ts, v in r["values"]
            ]
            for r in data["result"]
        }
        got = {
            tuple(sorted(labels.items())): [
                (round(float(ts), 3), float(v)) for ts, v in zip(times, values, strict=True)
            ]
            for labels, times, values in engine.range(_for_engine(expr), start, end, step)
        }
        assert sorted(got) == sorted(expected), (start, end, step)
        for key, points in expected.items():
            mine = got[key]
            assert [p[0] for p in mine] == [p[0] for p in points], key
            bad = [(p, q) for p, q in zip(points, mine, strict=True) if not same_value(p[1], q[1])]
            assert not bad, (key, bad[:3])
