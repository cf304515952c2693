import numpy as np
import pytest

from devopsim.traffic.patterns import ConstantRate, Diurnal, Ramp, Spike, Step, Trace, parse_pattern


def test_constant():
    p = parse_pattern("400/s")
    assert isinstance(p, ConstantRate)
    assert p.rate(np.array([0.0, 1e6]))[1] == 400


def test_diurnal_peaks_at_the_given_time_of_day():
    p = parse_pattern("diurnal(min=200/s, max=1200/s, peak=20:00)")
    assert isinstance(p, Diurnal)
    t = np.arange(0, 86400, 60.0)
    r = p.rate(t, clock0=0.0)
    assert r.max() == pytest.approx(1200)
    assert r.min() == pytest.approx(200, abs=1e-6)
    assert t[np.argmax(r)] == pytest.approx(20 * 3600)
    # A run starting at 18:00 sees the peak two hours in.
    r2 = p.rate(t, clock0=18 * 3600)
    assert t[np.argmax(r2)] == pytest.approx(2 * 3600)


def test_step_changes_at_its_times_and_is_right_continuous():
    p = parse_pattern("step(100/s, 30m: 200/s, 1h: 50/s)")
    assert isinstance(p, Step)
    assert list(p.rate(np.array([0, 1799.9, 1800, 3599, 3600, 9999]))) == [100, 100, 200, 200, 50, 50]
    assert p.rate(np.array([1800.0]), left=True)[0] == 100
    assert list(p.breakpoints(0, 4000)) == [1800, 3600]


def test_spike_and_ramp():
    s = parse_pattern("spike(base=200/s, peak=2000/s, at=12h, for=10m)")
    assert isinstance(s, Spike)
    assert list(s.rate(np.array([0, 43200, 43799, 43800]))) == [200, 2000, 2000, 200]
    r = parse_pattern("ramp(100/s, 1000/s, over=2h)")
    assert isinstance(r, Ramp)
    assert list(r.rate(np.array([0, 3600, 7200, 9000]))) == [100, 550, 1000, 1000]


def test_trace_interpolates_and_scales(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("time,rate\n0,10\n60,20\n120,10\n")
    p = parse_pattern("trace(t.csv, scale=2)", base_dir=tmp_path)
    assert isinstance(p, Trace)
    assert list(p.rate(np.array([0, 30, 60, 90, 500]))) == [20, 30, 40, 30, 20]
    looped = parse_pattern("trace(t.csv, loop=true)", base_dir=tmp_path)
    assert looped.rate(np.array([150.0]))[0] == pytest.approx(looped.rate(np.array([30.0]))[0])


def test_worldcup_trace_from_shared_data(tmp_path):
    """A real trace: the 1998 World Cup site, per minute, turned into (seconds, rate/s)."""
    src = __import__("tests.helpers", fromlist=["SHARED"]).SHARED / "data/traces/worldcup98"
    rows = (src / "worldcup98_requests_per_minute.csv").read_text().splitlines()[1:1441]
    f = tmp_path / "wc.csv"
    f.write_text("\n".join(f"{i * 60},{int(r.split(',')[1]) / 60}" for i, r in enumerate(rows)))
    p = parse_pattern(f"trace({f})")
    assert p.peak() > 0
    assert p.rate(np.array([0.0]))[0] == pytest.approx(int(rows[0].split(",")[1]) / 60)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("diurnal(min=2/s)", "needs max"),
        ("diurnal(min=5/s, max=1/s)", "min <= max"),
        ("diurnal(min=1/s, max=2/s, peak=25:70)", "time of day"),
        ("step(100/s, 30m 200/s)", "TIME: RATE"),
        ("step(100/s, 1h: 1/s, 30m: 2/s)", "increase"),
        ("wave(1/s)", "unknown rate pattern"),
        ("trace(nope.csv)", "not found"),
        ("spike(base=1/s, peak=2/s, at=1h)", "needs for"),
        ("-5/s", "negative"),
    ],
)
def test_bad_patterns(text, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        parse_pattern(text, base_dir=tmp_path)
