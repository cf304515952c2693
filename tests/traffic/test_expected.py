"""The expected arrivals over a stretch (what the flow plane counts) equal the integral of the rate."""

import itertools
import math

import numpy as np
import pytest

from devopsim.engine.streams import Streams
from devopsim.traffic.arrivals import ArrivalStream
from devopsim.traffic.generator import TrafficGenerator
from devopsim.traffic.patterns import parse_pattern

DAY = 86400.0


def _stream(pattern: str, clock0: float = 0.0) -> ArrivalStream:
    s = ArrivalStream(Streams(1).generator("a"))
    s.set_pattern(parse_pattern(pattern), 0.0, clock0)
    return s


def _diurnal_integral(lo: float, hi: float, peak: float, clock0: float, a: float, b: float) -> float:
    w = 2.0 * math.pi / DAY
    amp = 0.5 * (hi - lo)
    return (lo + amp) * (b - a) + amp / w * (
        math.sin(w * (b + clock0 - peak)) - math.sin(w * (a + clock0 - peak))
    )


@pytest.mark.parametrize(
    ("a", "b"), [(0.0, 1.0), (100.0, 115.0), (3600.0, 3659.5), (0.0, 7200.0), (5.0, 86405.0)]
)
def test_diurnal_expected_is_the_integral(a: float, b: float) -> None:
    s = _stream("diurnal(min=200/s, max=1200/s, peak=20:00)", clock0=3600.0)
    want = _diurnal_integral(200.0, 1200.0, 20 * 3600.0, 3600.0, a, b)
    assert s.expected(a, b) == pytest.approx(want, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize(("a", "b"), [(0.0, 10.0), (25.0, 35.0), (29.5, 30.5), (0.0, 100.0)])
def test_step_expected_counts_the_jump_exactly(a: float, b: float) -> None:
    s = _stream("step(100/s, 30s: 300/s)")
    want = 100.0 * (min(b, 30.0) - a) * (a < 30.0) + 300.0 * (b - max(a, 30.0)) * (b > 30.0)
    assert s.expected(a, b) == pytest.approx(want, rel=1e-12)


def test_expected_tiles_time() -> None:
    """Ticks of any size add up to the whole stretch."""
    s = _stream("diurnal(min=10/s, max=50/s, peak=06:00)")
    edges = np.cumsum(np.random.default_rng(3).uniform(0.2, 40.0, size=400))
    parts = sum(s.expected(float(x), float(y)) for x, y in itertools.pairwise(edges))
    assert parts == pytest.approx(s.expected(float(edges[0]), float(edges[-1])), rel=1e-9)


@pytest.mark.parametrize(("a", "b"), [(15.0, 30.0), (30.0, 45.0), (29.0, 30.0)])
def test_a_step_at_either_end_counts_on_its_own_side(a: float, b: float) -> None:
    """A stretch that ends where the rate jumps counts the old rate only (and one that starts there, the new)."""
    s = _stream("step(100/s, 30s: 300/s)")
    want = (100.0 if b <= 30.0 else 300.0) * (b - a)
    assert s.expected(a, b) == pytest.approx(want, rel=1e-12)


def _generator(shares: list[float]) -> TrafficGenerator:
    g = TrafficGenerator([f"c{i}" for i in range(len(shares))], shares, Streams(2), clock0=3600.0)
    g.set_pattern(parse_pattern("diurnal(min=200/s, max=1200/s, peak=20:00)"), 0.0)
    return g


@pytest.mark.parametrize(("a", "b"), [(100.0, 115.0), (7200.0, 7201.0), (0.0, 3600.0)])
def test_generator_gives_each_class_its_share_of_the_integral(a: float, b: float) -> None:
    g = _generator([0.8, 0.2])
    want = _diurnal_integral(200.0, 1200.0, 20 * 3600.0, 3600.0, a, b)
    np.testing.assert_allclose(g.expected(a, b), [0.8 * want, 0.2 * want], rtol=1e-9)


def test_generator_counts_a_class_on_its_own_pattern() -> None:
    """A class whose rate is set on its own (a consumer group) is not a share of the total."""
    g = _generator([0.8, 0.2, 0.0])
    g.set_class_pattern(2, parse_pattern("50/s"), 0.0)
    g.set_pattern(parse_pattern("diurnal(min=200/s, max=1200/s, peak=20:00)"), 0.0)
    got = g.expected(100.0, 110.0)
    want = _diurnal_integral(200.0, 1200.0, 20 * 3600.0, 3600.0, 100.0, 110.0)
    np.testing.assert_allclose(got, [0.8 * want, 0.2 * want, 500.0], rtol=1e-9)


def test_generator_sees_a_stream_changed_behind_its_back() -> None:
    """A traffic fault boosts one class's stream directly: that class's count follows it."""
    g = _generator([0.5, 0.5])
    stream = g._streams[1]
    stream.set_pattern(parse_pattern("1000/s"), 0.0, 3600.0)
    got = g.expected(100.0, 110.0)
    want = _diurnal_integral(200.0, 1200.0, 20 * 3600.0, 3600.0, 100.0, 110.0)
    np.testing.assert_allclose(got, [0.5 * want, 10000.0], rtol=1e-9)


def test_closed_form_integrals() -> None:
    d = parse_pattern("diurnal(min=200/s, max=1200/s, peak=20:00)")
    # Pieces of 5 s tile a day, whose integral is the mean rate times a day.
    edges = np.arange(0.0, DAY + 1.0, 5.0)
    pieces = [d.integral(float(a), float(b), 3600.0) for a, b in itertools.pairwise(edges)]
    assert math.fsum(p for p in pieces if p is not None) == pytest.approx(700.0 * DAY, rel=1e-12)
    for a, b in [(0.0, 1e-3), (100.0, 115.0), (5.0, 86405.0)]:
        want = _diurnal_integral(200.0, 1200.0, 20 * 3600.0, 3600.0, a, b)
        assert d.integral(a, b, 3600.0) == pytest.approx(want, rel=1e-9)
    # A millisecond at the peak carries the peak rate.
    a = 20 * 3600.0 - 3600.0
    b = a + 1e-3
    assert d.integral(a, b, 3600.0) == pytest.approx(1200.0 * (b - a), rel=1e-9)
    assert parse_pattern("40/s").integral(3.0, 8.0) == pytest.approx(200.0)
    half = d.scaled(0.5).integral(100.0, 115.0, 3600.0)
    assert half == pytest.approx(
        0.5 * _diurnal_integral(200.0, 1200.0, 72000.0, 3600.0, 100.0, 115.0), rel=1e-12
    )
    assert parse_pattern("step(10/s, 1m: 20/s)").integral(0.0, 10.0) is None  # no closed form: Simpson's


@pytest.mark.parametrize(
    "pattern", ["diurnal(min=200/s, max=1200/s, peak=20:00)", "diurnal(min=0/s, max=50/s, peak=03:30)"]
)
def test_drift_bounds_how_far_the_rate_moves(pattern: str) -> None:
    # The bound covers the largest move found on a fine grid, and is tight: within a few
    # per cent of it where the rate is steepest (a bound 10x too loose would defer nothing).
    d = parse_pattern(pattern)
    rng = np.random.default_rng(2)
    ratios = []
    for t, span in zip(rng.uniform(0, DAY, 300), rng.uniform(1.0, 600.0, 300), strict=True):
        grid = t + np.linspace(0.0, span, 2001)
        moved = float(np.max(np.abs(d.rate(grid, 3600.0) - d.rate(np.array([t]), 3600.0)[0])))
        bound = d.drift(float(t), float(span), 3600.0)
        assert bound is not None and bound >= moved * (1 - 1e-12)
        ratios.append(moved / bound if bound > 0 else 1.0)
    assert max(ratios) > 0.95
    assert parse_pattern("40/s").drift(5.0, 100.0) == 0.0
    assert parse_pattern("step(10/s, 1m: 20/s)").drift(0.0, 10.0) is None


def test_steady_for_bounds_how_far_the_rate_moves_and_is_tight() -> None:
    # Over the span steady_for gives, the rate's highest minus its lowest (on a fine grid) is at
    # most the band, and where the rate is steep the span is not much shorter than it could be.
    d = parse_pattern("diurnal(min=200/s, max=1200/s, peak=20:00)")
    rng = np.random.default_rng(3)
    ratios = []
    for t in rng.uniform(0.0, DAY, 200):
        for band in (0.5, 2.4, 40.0):
            span = d.steady_for(float(t), band, 3600.0)
            assert span is not None and span > 0
            r = d.rate(t + np.linspace(0.0, span, 4001), 3600.0)
            assert float(r.max() - r.min()) <= band * (1 + 1e-9)
            ratios.append(float(r.max() - r.min()) / band)
    assert max(ratios) > 0.95
    assert d.scaled(0.25).steady_for(100.0, 1.0, 0.0) == pytest.approx(
        d.steady_for(100.0, 4.0, 0.0), rel=1e-12
    )
    assert parse_pattern("40/s").steady_for(5.0, 0.1) == math.inf
    assert parse_pattern("step(10/s, 1m: 20/s)").steady_for(0.0, 1.0) is None
