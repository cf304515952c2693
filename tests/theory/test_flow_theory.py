"""The flow plane against queueing theory: M/M/c mean wait within 2 %, p99 response within 5 %."""

from __future__ import annotations

import pytest

import devopsim
from tests.helpers import mmc_response_quantile, mmc_wait, one_service

GRID = [(c, rho) for c in (1, 2, 8, 32) for rho in (0.3, 0.7, 0.9)]


@pytest.mark.parametrize(("c", "rho"), GRID, ids=[f"M/M/{c}-rho{rho}" for c, rho in GRID])
def test_flow_mmc(c: int, rho: float) -> None:
    lam = c * rho
    sc = one_service(
        f"{lam}/s", "exp(1s)", concurrency=c, duration="3h", warmup="1h", scrape="60s", plane="flow"
    )
    s = devopsim.simulate(sc).summary
    wq = mmc_wait(c, lam, 1.0)
    got = s["services"]["api"]["wait_s"]["mean"]
    # The analytic wait of M/M/32 at 30 % load is 4e-10 s: judge tiny waits against 1 % of the service time.
    assert abs(got - wq) <= 0.02 * max(wq, 0.01), (got, wq)
    p99 = mmc_response_quantile(c, lam, 1.0, 0.99)
    assert s["classes"]["get"]["latency_s"]["p99"] == pytest.approx(p99, rel=0.05)
    assert s["services"]["api"]["utilization"] == pytest.approx(rho, rel=0.01)
