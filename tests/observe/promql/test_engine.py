"""Engine unit tests: hand-worked cases of Prometheus' documented semantics."""

from __future__ import annotations

import math

import pytest

from devopsim.observe.promql import Engine, PromQLError, Sample, check
from devopsim.observe.store import MetricStore


def _store() -> MetricStore:
    # A counter growing 10/s scraped every 15 s, a second one with a reset, a gauge.
    return MetricStore.from_series(
        [
            ("req_total", {"svc": "a", "code": "200"}, [(i * 15.0, i * 150.0) for i in range(41)]),
            ("req_total", {"svc": "a", "code": "500"}, [(i * 15.0, i * 15.0) for i in range(41)]),
            ("req_total", {"svc": "b", "code": "200"}, [(i * 15.0, (i % 20) * 30.0) for i in range(41)]),
            ("up", {"svc": "a"}, [(i * 15.0, 1.0) for i in range(41)]),
            ("up", {"svc": "b"}, [(i * 15.0, 0.0) for i in range(41)]),
        ]
    )


def _by(samples: list[Sample] | float, key: str) -> dict[str, float]:
    assert isinstance(samples, list)
    return {s.labels.get(key, ""): s.value for s in samples}


def test_rate_of_a_linear_counter_is_its_slope() -> None:
    e = Engine(_store())
    out = e.instant('rate(req_total{code="200",svc="a"}[1m])', 300.0)
    assert isinstance(out, list) and len(out) == 1
    assert out[0].labels == {"code": "200", "svc": "a"}  # rate drops the metric name
    assert out[0].value == pytest.approx(10.0, rel=1e-12)


def test_increase_corrects_counter_resets_and_extrapolates() -> None:
    # svc b: 30/15 s, reset to 0 at t=300 (i=20). Window (240, 360]: samples 255..360 (8 samples)
    # values 510,540,570,0,30,60,90,120 -> raw increase 120 - 510 + 570 = 180 over 105 s,
    # extrapolated to the window's 120 s: durationToStart 15 s < 1.1*15 -> 180 * 120/105.
    e = Engine(_store())
    out = _by(e.instant('increase(req_total{svc="b"}[2m])', 360.0), "svc")
    assert out["b"] == pytest.approx(180 * 120 / 105, rel=1e-12)


def test_lookback_and_left_open_windows() -> None:
    e = Engine(_store())
    assert len(e.instant("up", 600.0 + 299.0)) == 2  # last sample at 600 is within 5 m
    assert e.instant("up", 600.0 + 300.0) == []  # (t - 5m, t] excludes it
    v2 = Engine(_store(), semantics="prometheus2")
    assert len(v2.instant("up", 900.0)) == 2  # Prometheus 2: [t - 5m, t]


def test_aggregation_and_ratio() -> None:
    e = Engine(_store())
    out = e.instant('sum(rate(req_total{code="500"}[5m])) / sum(rate(req_total{svc="a"}[5m]))', 600.0)
    assert isinstance(out, list) and out[0].labels == {}
    assert out[0].value == pytest.approx(1.0 / 11.0, rel=1e-12)
    by = _by(e.instant("sum by (svc) (up)", 100.0), "svc")
    assert by == {"a": 1.0, "b": 0.0}
    assert _by(e.instant("count without (code) (req_total)", 100.0), "svc") == {"a": 2.0, "b": 1.0}


def test_comparison_filters_and_bool() -> None:
    e = Engine(_store())
    out = e.instant("up == 1", 100.0)
    assert [s.labels for s in out] == [{"__name__": "up", "svc": "a"}]  # filters keep the name
    out = _by(e.instant("up == bool 1", 100.0), "svc")
    assert out == {"a": 1.0, "b": 0.0}


def test_group_left_copies_labels_from_the_one_side() -> None:
    e = Engine(_store())
    out = e.instant("req_total * on (svc) group_left up", 150.0)
    assert isinstance(out, list)
    got = {(s.labels["svc"], s.labels["code"]): s.value for s in out}
    assert got == {("a", "200"): 1500.0, ("a", "500"): 150.0, ("b", "200"): 0.0}
    with pytest.raises(PromQLError, match="many-to-one matching must be explicit"):
        e.instant("req_total * on (svc) up", 150.0)


def test_scalars_and_literals() -> None:
    e = Engine(_store())
    assert e.instant("1 + 2 * 3", 0.0) == 7.0
    assert e.instant("time()", 42.5) == 42.5
    assert math.isnan(float(e.instant("scalar(up)", 100.0)))  # two series -> NaN
    assert e.instant("2 ^ 3 ^ 2", 0.0) == 512.0  # right-associative


def test_unsupported_and_malformed_expressions_are_rejected() -> None:
    with pytest.raises(PromQLError, match="label_replace"):
        check('label_replace(up, "a", "b", "c", "d")')
    with pytest.raises(PromQLError, match="subqueries"):
        check("max_over_time(up[5m:1m])")
    with pytest.raises(PromQLError, match="malformed"):
        check("sum(")
    with pytest.raises(PromQLError, match="not supported"):
        check("up[5m]")


def test_range_query_matches_instant_queries() -> None:
    e = Engine(_store())
    res = e.range("sum(rate(req_total[1m]))", 60.0, 300.0, 60.0)
    assert len(res) == 1
    labels, times, values = res[0]
    assert labels == {} and list(times) == [60.0, 120.0, 180.0, 240.0, 300.0]
    for t, v in zip(times, values, strict=True):
        inst = e.instant("sum(rate(req_total[1m]))", float(t))
        assert isinstance(inst, list) and inst[0].value == v
