import math

import pytest

from devopsim.scenario.units import (
    format_duration,
    parse_cpu,
    parse_duration,
    parse_fraction,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("2d", 172800),
        ("1w", 604800),
        ("1.5h", 5400),
        (12, 12),
        (0.5, 0.5),
        ("10", 10),
        ("1h0m5s", 3605),
        ("100us", 1e-4),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5 minutes", "1x", "-3s", "h", "1h 30m", True, None, [1], -1])
def test_bad_durations(bad):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("400/s", 400),
        ("50/m", 50 / 60),
        ("3/h", 3 / 3600),
        ("1.5/s", 1.5),
        (7, 7),
        ("2e3/s", 2000),
        ("10/min", 10 / 60),
        ("0/s", 0),
    ],
)
def test_rates(text, rate):
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("bad", ["400", "-1/s", "fast", "4/y", True])
def test_bad_rates(bad):
    if bad == "400":  # a bare number is a rate per second
        assert parse_rate(bad) == 400
        return
    with pytest.raises(ValueError):
        parse_rate(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512Mi", 512 * 2**20),
        ("4Ki", 4096),
        ("2Gi", 2 * 2**30),
        ("1G", 1e9),
        ("100", 100),
        (64, 64),
        ("1.5Gi", 1.5 * 2**30),
    ],
)
def test_sizes(text, size):
    assert parse_size(text) == pytest.approx(size)


@pytest.mark.parametrize("bad", ["12Qi", "lots", "-1", True])
def test_bad_sizes(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


@pytest.mark.parametrize(
    ("text", "cores"), [("500m", 0.5), ("2", 2.0), (1, 1.0), ("250m", 0.25), ("1.5", 1.5)]
)
def test_cpu(text, cores):
    assert parse_cpu(text) == pytest.approx(cores)


@pytest.mark.parametrize("bad", ["0", "0m", "-1", "2 cores", "abc"])
def test_bad_cpu(bad):
    with pytest.raises(ValueError):
        parse_cpu(bad)


@pytest.mark.parametrize(
    ("text", "frac"), [("99.9%", 0.999), ("0.999", 0.999), (0.5, 0.5), ("3%", 0.03), ("100%", 1.0), (0, 0.0)]
)
def test_fractions(text, frac):
    assert parse_fraction(text) == pytest.approx(frac)


@pytest.mark.parametrize("bad", ["101%", "1.5", "-1%", "most", True])
def test_bad_fractions(bad):
    with pytest.raises(ValueError):
        parse_fraction(bad)


def test_format_duration_round_trips():
    for s in (0.25, 30, 90, 3600, 5400, 86400 + 61):
        assert math.isclose(parse_duration(format_duration(s)), s)
