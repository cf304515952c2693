"""The data planes' impairment hook (``set_impairment``) against queueing theory.

M/M/1 with arrival rate λ and service rate μ has mean response 1/(μ - λ). A constant
network delay d on the way adds d; a loss p with no retries fails a fraction p of the
requests as connection errors; half the cores on a one-worker replica doubles its
service time (μ/2). Both data planes must agree with these.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from devopsim.api import _load
from devopsim.engine.runner import Simulation
from tests.helpers import one_service

MU = 10.0  # exp(100ms)


def _run(plane: str, lam: float, **impair: float) -> dict[str, Any]:
    sc = one_service(f"{lam}/s", "exp(100ms)", duration="4h", warmup="10m", plane=plane)
    sim = Simulation(_load(sc, None))
    sim.plane.set_impairment(0, **impair)
    return sim.run().summary


PLANES = ["request", "flow"]


@pytest.mark.parametrize("plane", PLANES)
def test_delay_adds_to_mm1_response(plane: str) -> None:
    lam, d = 5.0, 0.05
    s = _run(plane, lam, delay=d)
    want = 1.0 / (MU - lam) + d
    assert s["classes"]["get"]["latency_s"]["mean"] == pytest.approx(want, rel=0.03)


@pytest.mark.parametrize("plane", PLANES)
def test_loss_fails_that_share_as_connection_errors(plane: str) -> None:
    lam, p = 5.0, 0.1
    s = _run(plane, lam, loss=p)
    cls = s["classes"]["get"]
    n = cls["requests"]
    # Binomial: 4 standard errors of a share p over n requests (the flow plane counts
    # expected values, whose outcomes come from its 8000 composed samples per window).
    tol = 4 * (p * (1 - p) / (n if plane == "request" else 8000)) ** 0.5
    assert cls["errors"]["unavailable"] / n == pytest.approx(p, abs=tol)
    assert (n - cls["ok"]) / n == pytest.approx(p, abs=tol)
    # The calls that get through meet an M/M/1 fed at (1 - p) λ.
    assert cls["latency_s"]["mean"] == pytest.approx(1.0 / (MU - (1 - p) * lam), rel=0.03)


@pytest.mark.parametrize("plane", PLANES)
def test_half_the_cores_halves_the_service_rate(plane: str) -> None:
    lam = 2.5
    s = _run(plane, lam, cpu_factor=0.5)
    assert s["classes"]["get"]["latency_s"]["mean"] == pytest.approx(1.0 / (MU / 2 - lam), rel=0.03)


@pytest.mark.parametrize("plane", PLANES)
def test_defaults_restore_normal(plane: str) -> None:
    lam = 5.0
    sc = one_service(f"{lam}/s", "exp(100ms)", duration="4h", warmup="10m", plane=plane)
    sim = Simulation(_load(sc, None))
    sim.plane.set_impairment(0, delay=0.5, loss=0.5, cpu_factor=0.25)
    sim.plane.set_impairment(0)
    s = sim.run().summary
    assert s["classes"]["get"]["ok"] == s["classes"]["get"]["requests"]
    assert s["classes"]["get"]["latency_s"]["mean"] == pytest.approx(1.0 / (MU - lam), rel=0.03)


def test_bad_impairment_is_refused() -> None:
    sc = one_service("1/s", "exp(100ms)", duration="1m")
    sim = Simulation(_load(sc, None))
    with pytest.raises(ValueError, match="loss"):
        sim.plane.set_impairment(0, loss=1.5)


@pytest.mark.parametrize("plane", PLANES)
def test_class_delay_adds_to_what_users_see(plane: str) -> None:
    lam, d = 5.0, 0.08
    sc = one_service(f"{lam}/s", "exp(100ms)", duration="4h", warmup="10m", plane=plane)
    sc["slos"] = [{"name": "fast", "objective": "90%", "latency": "300ms"}]
    sim = Simulation(_load(sc, None))
    sim.plane.set_class_delay(0, d)
    s = sim.run().summary
    assert s["classes"]["get"]["latency_s"]["mean"] == pytest.approx(1.0 / (MU - lam) + d, rel=0.03)
    # M/M/1 response is Exp(mu - lambda): P(R + d <= 0.3) = 1 - exp(-(mu - lambda)(0.3 - d)).
    import math

    want = 1.0 - math.exp(-(MU - lam) * (0.3 - d))
    assert s["slos"][0]["attained"] == pytest.approx(want, abs=0.02)


def _mm1_plus_normal_quantile(q: float, rate: float, d: float, j: float) -> float:
    """Quantile of Exp(rate) + max(0, N(d, j^2)): the CDF by quadrature, then bisection."""
    import math

    import numpy as np

    y = np.linspace(0.0, 30.0 / rate, 20001)  # the exponential part
    fy = rate * np.exp(-rate * y)
    erf = np.vectorize(math.erf)

    def cdf(x: float) -> float:
        z = (x - y - d) / (j * math.sqrt(2.0))
        inner = np.where(x - y >= 0.0, 0.5 * (1.0 + erf(z)), 0.0)  # P(max(0, N) <= x - y)
        return float(np.trapezoid(inner * fy, y))

    lo, hi = 0.0, d + 10 * j + 30.0 / rate
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("plane", PLANES)
def test_jitter_keeps_the_mean_and_widens_the_spread(plane: str) -> None:
    # M/M/1 response Exp(mu - lam) plus netem's delay d with normal jitter j: the mean is
    # 1/(mu - lam) + d, the quantiles those of the convolution (computed here by quadrature).
    lam, mu, d, j = 10.0, 100.0, 0.1, 0.03
    sc = one_service(f"{lam}/s", "exp(10ms)", duration="2h", warmup="5m", plane=plane)
    sim = Simulation(_load(sc, None))
    sim.plane.set_impairment(0, delay=d, jitter=j)
    lat = sim.run().summary["classes"]["get"]["latency_s"]
    assert lat["mean"] == pytest.approx(1.0 / (mu - lam) + d, rel=0.01)
    for key, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        assert lat[key] == pytest.approx(_mm1_plus_normal_quantile(q, mu - lam, d, j), rel=0.02), key
    # Without jitter the p99 is d + ln(100)/(mu - lam): jitter moved it out by more than j.
    assert lat["p99"] > d + math.log(100) / (mu - lam) + j
