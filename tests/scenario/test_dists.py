import numpy as np
import pytest

from devopsim.scenario.dists import (
    Constant,
    Empirical,
    Exponential,
    Gamma,
    LogNormal,
    Uniform,
    parse_distribution,
    parse_popularity,
)


@pytest.mark.parametrize(
    ("text", "cls", "mean", "cv"),
    [
        ("exp(2ms)", Exponential, 0.002, 1.0),
        ("exp(1s)", Exponential, 1.0, 1.0),
        ("const(5ms)", Constant, 0.005, 0.0),
        ("5ms", Constant, 0.005, 0.0),
        ("uniform(1ms, 3ms)", Uniform, 0.002, (0.002 / np.sqrt(12)) / 0.002),
        ("lognormal(mean=8ms, cv=0.7)", LogNormal, 0.008, 0.7),
        ("lognormal(mean=4ms,cv=2)", LogNormal, 0.004, 2.0),
        ("gamma(mean=9ms, cv=0.3)", Gamma, 0.009, 0.3),
        ("gamma(10ms, 0.5)", Gamma, 0.01, 0.5),
    ],
)
def test_parse_and_moments_against_samples(text, cls, mean, cv):
    d = parse_distribution(text)
    assert isinstance(d, cls)
    assert d.mean == pytest.approx(mean)
    assert d.cv == pytest.approx(cv)
    rng = np.random.default_rng(11)
    x = d.sample(rng, 400_000)
    assert (x >= 0).all()
    assert x.mean() == pytest.approx(mean, rel=0.02 * max(cv, 0.05) + 1e-9)
    if cv > 0:
        assert x.std() / x.mean() == pytest.approx(cv, rel=0.05 if cv < 1.5 else 0.15)


def test_empirical_reads_a_csv(tmp_path):
    f = tmp_path / "work.csv"
    f.write_text("seconds\n0.1\n0.2\n0.3\n")
    d = parse_distribution("empirical(work.csv)", base_dir=tmp_path)
    assert isinstance(d, Empirical)
    assert d.mean == pytest.approx(0.2)
    x = d.sample(np.random.default_rng(1), 1000)
    assert set(np.round(x, 6)) <= {0.1, 0.2, 0.3}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("normal(1s)", "unknown distribution 'normal'"),
        ("exp()", "needs mean"),
        ("exp(-1s)", "negative"),
        ("lognormal(mean=1ms)", "needs cv"),
        ("lognormal(mean=1ms, cv=-1)", "cv"),
        ("uniform(3ms, 1ms)", "A <= B"),
        ("gamma(mean=1ms, cv=1, shape=2)", "no argument 'shape'"),
        ("zipf(1.1)", "popularity"),
        ("empirical(missing.csv)", "not found"),
        ("soon", "expected a distribution"),
    ],
)
def test_bad_distributions(text, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        parse_distribution(text, base_dir=tmp_path)


def test_popularity():
    z = parse_popularity("zipf(0.9)")
    p = z.probabilities(1000)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] / p[1] == pytest.approx(2**0.9)
    assert parse_popularity("uniform").s == 0.0
    with pytest.raises(ValueError):
        parse_popularity("zipf(-1)")


def test_scaled_keeps_shape():
    d = parse_distribution("lognormal(mean=10ms, cv=0.5)").scaled(2.0)
    assert d.mean == pytest.approx(0.02)
    assert d.cv == pytest.approx(0.5)
