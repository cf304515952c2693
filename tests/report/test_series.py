"""Data preparation of the report, checked against known distributions and PromQL's documented rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devopsim.observe.store import MetricStore
from devopsim.report.series import Grid, histogram_quantile

INF = math.inf


def _cdf_counts(cdf, bounds: list[float], n: float) -> np.ndarray:
    """Cumulative bucket counts of ``n`` observations of a distribution with the given CDF."""
    return np.array([n if math.isinf(b) else n * cdf(b) for b in bounds])


@pytest.mark.parametrize("q", [0.01, 0.1, 0.25, 0.5, 0.9, 0.95, 0.99])
def test_uniform_distribution_quantiles_are_exact(q):
    # Uniform on [0, 10): linear interpolation inside a bucket is exact for a uniform density.
    bounds = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, INF]
    counts = _cdf_counts(lambda x: min(x / 10.0, 1.0), bounds, 10_000)
    assert histogram_quantile(q, bounds, counts)[0] == pytest.approx(10 * q, rel=1e-12)


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99, 0.999])
def test_exponential_quantiles_within_one_bucket(q):
    # Exponential(mean 0.1 s): the true quantile is -ln(1-q)·mean; histogram_quantile must land in the
    # same bucket and so be within one bucket width of it.
    mean = 0.1
    bounds = [*np.round(np.arange(0.005, 1.5, 0.005), 6).tolist(), INF]
    counts = _cdf_counts(lambda x: 1 - math.exp(-x / mean), bounds, 1e6)
    truth = -math.log(1 - q) * mean
    got = histogram_quantile(q, bounds, counts)[0]
    assert abs(got - truth) <= 0.005
    k = int(np.searchsorted(bounds, truth))
    lo = 0.0 if k == 0 else bounds[k - 1]
    assert lo <= got <= bounds[k]


def test_lognormal_samples_match_numpy_quantiles():
    # Samples from a log-normal, bucketed on Prometheus' default buckets refined 10x:
    # the estimate must bracket numpy's sample quantile within the bucket holding it.
    rng = np.random.default_rng(7)
    x = rng.lognormal(mean=math.log(0.05), sigma=0.8, size=200_000)
    bounds = [*np.geomspace(0.001, 10, 200).tolist(), INF]
    counts = np.array([np.count_nonzero(x <= b) for b in bounds], dtype=float)
    for q in (0.5, 0.9, 0.99):
        truth = float(np.quantile(x, q))
        got = histogram_quantile(q, bounds, counts)[0]
        k = int(np.searchsorted(bounds, truth))
        width = bounds[k] - bounds[k - 1]
        assert abs(got - truth) <= width


def test_prometheus_edge_cases():
    bounds = [0.1, 0.5, 1.0, INF]
    counts = np.array([[0, 0, 0, 0], [10, 10, 10, 20], [4, 8, 10, 10]], dtype=float)
    # quantile outside [0, 1]: -Inf / +Inf (Prometheus docs)
    assert np.all(histogram_quantile(-0.1, bounds, counts) == -INF)
    assert np.all(histogram_quantile(1.5, bounds, counts) == INF)
    out = histogram_quantile(0.9, bounds, counts)
    assert math.isnan(out[0])  # no observations
    assert out[1] == 1.0  # rank in the +Inf bucket: upper bound of the last finite bucket
    # rank 9 in (0.5, 1.0] holding counts 8..10: 0.5 + 0.5 * (9 - 8) / 2
    assert out[2] == pytest.approx(0.75)
    # the first bucket starts at 0
    assert histogram_quantile(0.5, [1.0, INF], np.array([10.0, 10.0]))[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"\+Inf"):
        histogram_quantile(0.5, [1.0, 2.0], np.array([1.0, 2.0]))


def test_non_monotonic_buckets_are_repaired_like_prometheus():
    # Prometheus carries the running maximum forward, so a dip behaves as if it were flat.
    bounds = [1.0, 2.0, 3.0, INF]
    a = histogram_quantile(0.5, bounds, np.array([5.0, 4.0, 10.0, 10.0]))
    b = histogram_quantile(0.5, bounds, np.array([5.0, 5.0, 10.0, 10.0]))
    assert a[0] == b[0]


def test_grid_rates_resets_and_series_born_mid_run():
    t = np.arange(0, 601, 15.0)
    steady = [(float(x), 5.0 * x) for x in t]  # 5 per second
    # a second pod: born at 300 s counting 2/s from 0, reset at 450 s (restart)
    born = [(float(x), 2.0 * (x - 300) if x < 450 else 2.0 * (x - 450)) for x in t if x >= 300]
    store = MetricStore.from_series(
        [
            ("req_total", {"service": "a", "pod": "a-1"}, steady),
            ("req_total", {"service": "a", "pod": "a-2"}, born),
            ("up", {"service": "a", "pod": "a-1"}, [(float(x), 1.0) for x in t]),
            ("up", {"service": "a", "pod": "a-2"}, [(float(x), 1.0) for x in t if x >= 300]),
        ]
    )
    g = Grid(store)
    assert g.step == 15.0
    r = g.rate("req_total", ("service",))[("a",)]
    assert math.isnan(r[0])
    before = g.times < 300
    assert np.allclose(r[1:][before[1:]], 5.0)
    # the first scrape of the new pod counts its whole value since birth (0 here), then 2/s more
    after = (g.times > 300) & (g.times != 450)
    assert np.allclose(r[after], 7.0)
    # at the reset the new value is the increase (2 * 0 = 0 here): 5/s from the first pod only
    assert r[g.times == 450][0] == pytest.approx(5.0)
    up = g.gauge("up", ("service",))[("a",)]
    assert np.allclose(up[g.times < 300], 1.0) and np.allclose(up[g.times >= 300], 2.0)


def test_grid_downsamples_with_exact_rates():
    t = np.arange(0, 86_400 + 1, 15.0)
    store = MetricStore.from_series([("c_total", {}, [(float(x), 3.0 * x) for x in t])])
    g = Grid(store, max_points=1000)
    assert g.times.size <= 1001
    assert g.step > 15.0
    r = g.rate("c_total", ())[()]
    assert np.allclose(r[1:], 3.0)


def test_grid_quantiles_from_bucket_counters():
    # Each scrape adds 100 uniform observations on [0, 1): every window's median is 0.5, p90 0.9.
    bounds = ["0.25", "0.5", "0.75", "1", "+Inf"]
    t = np.arange(0, 301, 15.0)
    series = []
    for le in bounds:
        frac = 1.0 if le == "+Inf" else min(float(le), 1.0)
        series.append(("lat_bucket", {"le": le, "svc": "x"}, [(float(x), 100 * frac * x / 15) for x in t]))
    g = Grid(MetricStore.from_series(series))
    q = g.quantiles("lat_bucket", (0.5, 0.9), ("svc",))[("x",)]
    assert math.isnan(q[0.5][0])
    assert np.allclose(q[0.5][1:], 0.5) and np.allclose(q[0.9][1:], 0.9)


def test_a_missing_scrape_is_a_gap_not_a_zero_rate():
    # A counter growing 4/s that was not scraped at 300 s: PromQL has no sample there, not a zero.
    t = [float(x) for x in range(0, 601, 15) if x != 300]
    store = MetricStore.from_series(
        [
            ("c_total", {}, [(x, 4.0 * x) for x in t]),
            ("other", {}, [(float(x), 1.0) for x in range(0, 601, 15)]),
        ]
    )
    g = Grid(store)
    r = g.rate("c_total", ())[()]
    assert math.isnan(r[g.times == 300][0])
    # the next window spans the gap (30 s of growth in a 15 s step: the increase is not lost)
    assert r[g.times == 315][0] == pytest.approx(8.0)
    assert np.allclose(r[(g.times > 0) & (g.times != 300) & (g.times != 315)], 4.0)
