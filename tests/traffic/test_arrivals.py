import numpy as np
import pytest
from scipy import stats

from devopsim.engine.streams import Streams
from devopsim.traffic.arrivals import ArrivalStream
from devopsim.traffic.generator import TrafficGenerator
from devopsim.traffic.patterns import parse_pattern


def _stream(pattern: str, seed: int = 1, burstiness: float = 1.0) -> ArrivalStream:
    s = ArrivalStream(Streams(seed).generator("arrivals/x"), burstiness)
    s.set_pattern(parse_pattern(pattern), 0.0, 0.0)
    return s


def test_poisson_counts_and_gaps():
    s = _stream("50/s")
    t = s.window(0.0, 2000.0)
    assert t.size == pytest.approx(100_000, rel=0.01)
    gaps = np.diff(t)
    # Exponential gaps: a Kolmogorov-Smirnov test does not reject at 1%.
    assert stats.kstest(gaps * 50, "expon").pvalue > 0.01
    assert (gaps >= 0).all()


def test_sample_path_does_not_depend_on_windows():
    whole = _stream("diurnal(min=10/s, max=100/s, peak=06:00)").window(0.0, 7200.0)
    pieces = _stream("diurnal(min=10/s, max=100/s, peak=06:00)")
    parts = [pieces.window(a, b) for a, b in [(0, 13.3), (13.3, 600), (600, 601), (601, 7200)]]
    joined = np.concatenate(parts)
    assert joined.size == whole.size
    np.testing.assert_allclose(joined, whole, rtol=0, atol=1e-6)


def test_step_pattern_counts_match_the_integral():
    s = _stream("step(10/s, 100s: 100/s, 200s: 0/s)")
    t = s.window(0.0, 300.0)
    assert ((t >= 200) & (t < 300)).sum() == 0
    n1, n2 = (t < 100).sum(), ((t >= 100) & (t < 200)).sum()
    assert n1 == pytest.approx(1000, rel=0.1)
    assert n2 == pytest.approx(10000, rel=0.04)


def test_nonhomogeneous_counts_follow_the_rate():
    s = _stream("ramp(0/s, 200/s, over=1000s)")
    t = s.window(0.0, 1000.0)
    # Expected count in [a, b) is the integral of the ramp: 0.1 * (b^2 - a^2)
    for a, b in [(0, 250), (250, 500), (500, 1000)]:
        n = ((t >= a) & (t < b)).sum()
        expect = 0.1 * (b * b - a * a)
        assert abs(n - expect) < 4 * np.sqrt(expect)


def test_burstiness_zero_is_evenly_spaced_and_larger_is_burstier():
    even = _stream("10/s", burstiness=0).window(0.0, 100.0)
    np.testing.assert_allclose(np.diff(even), 0.1, atol=1e-9)
    bursty = np.diff(_stream("10/s", burstiness=3).window(0.0, 20000.0))
    assert bursty.std() / bursty.mean() == pytest.approx(3.0, rel=0.1)


def test_classes_are_independent_streams():
    a = TrafficGenerator(["a", "b"], [0.5, 0.5], Streams(3))
    a.set_pattern(parse_pattern("20/s"), 0.0)
    ta, ca = a.window(0, 500)
    b = TrafficGenerator(["a", "b", "c"], [0.25, 0.25, 0.5], Streams(3))
    b.set_pattern(parse_pattern("40/s"), 0.0)
    tb, cb = b.window(0, 500)
    # Class a gets 10/s in both runs, from the same named stream: the same arrival times.
    np.testing.assert_array_equal(ta[ca == 0], tb[cb == 0])
    assert (np.diff(ta) >= 0).all()
