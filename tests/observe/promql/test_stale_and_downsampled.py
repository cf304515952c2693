"""Staleness markers and downsampled data, against Prometheus' and Thanos' documented behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devopsim.observe.promql import Engine, selected_metrics
from devopsim.observe.store import Limits, MetricStore


def _up_store() -> tuple[MetricStore, int, int]:
    st = MetricStore()
    a, b = st.series("up", {"pod": "a"}), st.series("up", {"pod": "b"})
    both, only_a = np.array([a, b]), np.array([a])
    for k in range(5):  # 0..60 both pods
        st.append(15.0 * k, both, np.array([1.0, 1.0]))
    st.mark_stale(75.0, np.array([b]))  # pod b is gone at the scrape of t=75
    for k in range(5, 20):
        st.append(15.0 * k, only_a, np.array([1.0]))
    return st, a, b


def test_an_instant_selector_drops_a_series_at_its_staleness_marker() -> None:
    # Prometheus (querying basics, "Staleness"): a series marked stale is not returned
    # from the marker on, instead of lingering for the 5 m lookback.
    st, _, _ = _up_store()
    e = Engine(st)
    pods = lambda t: sorted(s.labels["pod"] for s in e.instant("up", t))  # noqa: E731
    assert pods(74.0) == ["a", "b"]  # before the marker: b's sample of t=60 is within lookback
    assert pods(75.0) == ["a"]
    assert pods(200.0) == ["a"]
    # Without the marker, b would stay until its last sample leaves the lookback (60 + 300 s).
    no_marker = MetricStore()
    ids = [no_marker.series("up", {"pod": p}) for p in "ab"]
    for k in range(5):
        no_marker.append(15.0 * k, np.array(ids), np.array([1.0, 1.0]))
    assert len(Engine(no_marker).instant("up", 200.0)) == 2
    assert len(Engine(no_marker).instant("up", 360.0)) == 0


def test_range_windows_skip_staleness_markers() -> None:
    st, _, _ = _up_store()
    out = {s.labels["pod"]: s.value for s in Engine(st).instant("count_over_time(up[2m])", 120.0)}
    # (0, 120]: pod b has samples at 15..60 (4), its marker at 75 is not a sample.
    assert out == {"a": 8.0, "b": 4.0}


def _downsampled_pair(hours: float = 4.0) -> tuple[MetricStore, MetricStore]:
    """The same data raw, and with everything older than 1 h downsampled to 5 m windows."""
    raw = MetricStore()
    down = MetricStore(Limits(raw_bytes=None, raw_retention=3600.0, resolutions=(300.0,)))
    for st in (raw, down):
        ids = np.array([st.series("c_total", {}), st.series("g", {})])
        for k in range(int(hours * 240) + 1):
            t = 15.0 * k
            counter = 10.0 * t if t < 5000 else 10.0 * (t - 5000)  # a reset at t = 5000
            st.append(t, ids, np.array([counter, math.sin(t / 700.0)]))
    return raw, down


def test_downsampling_keeps_thanos_aggregates_and_bounds_raw_data() -> None:
    raw, down = _downsampled_pair()
    # raw kept: the last hour, plus what arrived since the last compaction (every 64 appends)
    assert down.has_downsampled and down.raw_start() >= 4 * 3600 - 3600 - 64 * 15 - 300
    rows = lambda st: sum(t.size for _, t, _ in st.tables())  # noqa: E731
    assert rows(raw) == 961 and rows(down) < 961 / 2
    ((_, parts),) = down.downsampled()
    p = parts[0]
    # window [0, 300) holds the samples at 0, 15, ..., 285: 20 of them
    assert p.count[0].tolist() == [20.0, 20.0]
    t = np.arange(20) * 15.0
    assert p.sum[0, 1] == pytest.approx(np.sin(t / 700.0).sum(), rel=1e-12)
    assert p.max[0, 1] == pytest.approx(np.sin(t / 700.0).max(), rel=1e-12)
    assert p.t[0] == 285.0 and p.counter[0, 0] == 10.0 * 285.0


@pytest.mark.parametrize(
    "expr",
    [
        "rate(c_total[1h])",
        "increase(c_total[1h])",
        "sum_over_time(g[1h])",
        "count_over_time(g[1h])",
        "max_over_time(g[1h])",
        "min_over_time(g[1h])",
        "avg_over_time(g[1h])",
    ],
)
def test_range_functions_over_downsampled_windows_answer_as_over_raw_samples(expr: str) -> None:
    # At ts = 300 m - 10 s a 1 h range holds whole 5 m windows (raw samples 300(m-12) .. 300m-15),
    # so the aggregate Thanos picks for each function gives the raw answer; rate reads the
    # counter aggregate (the counter at each window's last sample): a slope of 10/s either way.
    raw, down = _downsampled_pair()
    ts = 300.0 * 15 - 10.0  # range (890, 4490]: before the counter reset at 5000 s
    assert down.raw_start() > ts  # the whole range is downsampled
    got = Engine(down).instant(expr, ts)
    want = Engine(raw).instant(expr, ts)
    assert isinstance(got, list) and isinstance(want, list) and len(got) == len(want) == 1
    if expr.startswith("rate"):
        assert got[0].value == pytest.approx(10.0, rel=1e-9)
        assert want[0].value == pytest.approx(10.0, rel=1e-9)
    elif expr.startswith("increase"):
        # extrapolation differs (points 300 s apart vs 15 s) but both extend a 10/s slope to 1 h
        assert got[0].value == pytest.approx(36000.0, rel=1e-9)
        assert want[0].value == pytest.approx(36000.0, rel=1e-9)
    else:
        assert got[0].value == pytest.approx(want[0].value, rel=1e-9)


def test_the_counter_aggregate_adds_resets_back() -> None:
    # Range (2390, 5990] of the downsampled store: window-end points 2685, 2985, ..., 5985.
    # The counter grows 10/s but restarts from 0 at 5000 s (the 50 units of 4995..5000 are lost,
    # as in the raw data): increase = 10 * (5985 - 2685) - 50 over 3300 s, extrapolated to the
    # range's edges (295 s before the first point < 1.1 x 300 s, 5 s after the last).
    _, down = _downsampled_pair()
    out = Engine(down).instant("rate(c_total[1h])", 5990.0)
    assert isinstance(out, list)
    assert out[0].value == pytest.approx((10.0 * 3300 - 50) / 3300, rel=1e-9)


def test_instant_selector_over_downsampled_data_is_the_window_mean() -> None:
    _, down = _downsampled_pair()
    out = Engine(down).instant("g", 585.0)  # window [300, 600): mean of its 20 samples
    t = 300.0 + np.arange(20) * 15.0
    assert isinstance(out, list) and out[0].value == pytest.approx(np.sin(t / 700.0).mean(), rel=1e-12)


def test_raw_budget_triggers_downsampling_and_a_second_level() -> None:
    st = MetricStore(Limits(raw_bytes=200_000, resolutions=(300.0, 3600.0), level_bytes=20_000))
    ids = np.array([st.series("g", {"i": str(i)}) for i in range(50)])
    for k in range(24 * 240):
        st.append(15.0 * k, ids, np.full(50, float(k)))
    assert st.raw_bytes <= 200_000 + 50 * 8 * 256  # within the budget (plus one block)
    levels = dict(st.downsampled())
    assert levels[300.0] and levels[3600.0]
    assert st.n_samples == 24 * 240 * 50
    # the mean over a 1 h window of g = k is the mean of its k
    out = Engine(st).instant("avg_over_time(g[1h])", 3600.0 * 3 - 10)
    assert isinstance(out, list) and len(out) == 50
    assert out[0].value == pytest.approx(np.arange(480, 720).mean(), rel=1e-9)


def test_selected_metrics_names_what_an_expression_reads() -> None:
    assert selected_metrics('sum(rate(a_total{x="1"}[5m])) / on() b + scalar(c)') == {"a_total", "b", "c"}
    assert selected_metrics('{__name__="d", job="x"} > 0') == {"d"}
    assert selected_metrics('{job="x"}') is None
    assert selected_metrics("vector(time())") == set()


def test_static_columns_are_stored_once_and_read_like_samples() -> None:
    st = MetricStore(Limits(raw_bytes=None, raw_retention=3600.0, resolutions=(300.0,)))
    var = np.array([st.series("v", {})])
    static = (
        np.array([st.series("info", {"pod": "a"}), st.series("info", {"pod": "b"})]),
        np.array([1.0, 2.0]),
    )
    for k in range(4 * 240 + 1):
        st.append(15.0 * k, var, np.array([float(k)]), static)
    assert st.n_samples == 3 * (4 * 240 + 1)
    e = Engine(st)
    ts_raw, ts_down = 4 * 3600.0, 300.0 * 5 - 10.0
    assert st.raw_start() < ts_raw - 600 and st.raw_start() > ts_down
    for ts in (ts_raw, ts_down):
        got = {s.labels["pod"]: s.value for s in e.instant("max_over_time(info[1h])", ts)}
        assert got == {"a": 1.0, "b": 2.0}
    # (ts - 1h, ts] over whole windows: 240 samples per series, raw or downsampled
    at_down = e.instant("count_over_time(info[1h])", 300.0 * 20 - 10.0)
    assert isinstance(at_down, list) and [s.value for s in at_down] == [240.0, 240.0]
    assert [s.value for s in e.instant("sum_over_time(info[1h])", 300.0 * 20 - 10.0)] == [240.0, 480.0]
