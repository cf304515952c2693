"""The request plane against queueing theory: Erlang C, M/M/1, E_k/M/1, Jackson tandems.

Each check runs seeded replications until the 99 % confidence interval is
narrow (or a customer budget is spent), then asserts that the estimate lies
within 3 % of the analytic value and that the interval's half-width is within
3 % too, so the check could have seen an error of that size. Where the analytic mean wait is below 1 % of the mean service time
(M/M/32 at 30 % load: 4e-10 s) a relative check is meaningless, and the wait
is judged within 3 % of 1 % of the service time instead.
"""

from __future__ import annotations

import pytest

from tests.helpers import ek_m1_wait, mmc_wait, one_service
from tests.theory.conftest import replicate

pytestmark = pytest.mark.slow

GRID = [(c, rho) for c in (1, 2, 8, 32) for rho in (0.3, 0.7, 0.9)]


@pytest.mark.parametrize(("c", "rho"), GRID, ids=[f"M/M/{c}-rho{rho}" for c, rho in GRID])
def test_mmc_against_erlang_c(c: int, rho: float) -> None:
    lam = c * rho
    per_run = 2_000_000
    duration = per_run / lam

    def make(seed: int) -> dict:
        return one_service(
            f"{lam}/s",
            "exp(1s)",
            concurrency=c,
            duration=f"{duration}s",
            warmup=f"{0.01 * duration}s",
            scrape=f"{duration / 4}s",
        )

    def measure(s: dict) -> dict[str, float]:
        return {
            "wait": s["services"]["api"]["wait_s"]["mean"],
            "response": s["classes"]["get"]["latency_s"]["mean"],
        }

    wq = mmc_wait(c, lam, 1.0)
    est = replicate(
        make, measure, {"wait": max(wq, 0.01), "response": wq + 1.0}, per_run, max_customers=40_000_000
    )
    assert est.within("response", wq + 1.0, 0.03), est.describe("response", wq + 1.0)
    assert est.within("wait", wq, 0.03, floor=0.01), est.describe("wait", wq)


def test_random_balancing_is_independent_mm1_queues() -> None:
    k, lam_each = 4, 0.8
    per_run = 2_000_000
    duration = per_run / (k * lam_each)

    def make(seed: int) -> dict:
        return one_service(
            f"{k * lam_each}/s",
            "exp(1s)",
            replicas=k,
            lb="random",
            duration=f"{duration}s",
            warmup=f"{0.01 * duration}s",
            scrape=f"{duration / 4}s",
        )

    wq = lam_each / (1 - lam_each)
    est = replicate(
        make,
        lambda s: {
            "wait": s["services"]["api"]["wait_s"]["mean"],
            "response": s["classes"]["get"]["latency_s"]["mean"],
        },
        {"wait": wq, "response": wq + 1},
        per_run,
        max_customers=20_000_000,
    )
    assert est.within("wait", wq, 0.03), est.describe("wait", wq)
    assert est.within("response", wq + 1, 0.03), est.describe("response", wq + 1)


def test_round_robin_is_ek_m1() -> None:
    k, total = 4, 3.2
    per_run = 2_000_000
    duration = per_run / total

    def make(seed: int) -> dict:
        return one_service(
            f"{total}/s",
            "exp(1s)",
            replicas=k,
            lb="round-robin",
            duration=f"{duration}s",
            warmup=f"{0.01 * duration}s",
            scrape=f"{duration / 4}s",
        )

    wq = ek_m1_wait(k, total, 1.0)
    est = replicate(
        make,
        lambda s: {"wait": s["services"]["api"]["wait_s"]["mean"]},
        {"wait": wq},
        per_run,
        max_customers=20_000_000,
    )
    assert est.within("wait", wq, 0.03), est.describe("wait", wq)
    # Round robin is clearly better than random here (2.0 s against 4.0 s of queueing).
    assert wq < 0.6 * (0.8 / 0.2)


def test_three_station_tandem_matches_jackson() -> None:
    lam = 0.8
    per_run = 2_000_000
    duration = per_run / lam
    # Station 1: M/M/1, mean 1 s. Station 2: M/M/2, mean 2 s per server. Station 3: M/M/1, mean 0.8 s.
    stations = [("s1", 1, "exp(1s)", 1.0), ("s2", 2, "exp(2s)", 0.5), ("s3", 1, "exp(800ms)", 1.25)]

    def make(seed: int) -> dict:
        services = {
            name: {
                "replicas": 1,
                "concurrency": c,
                "resources": {"requests": {"cpu": c}},
                "endpoints": {"work": {"steps": [{"work": w}]}},
            }
            for name, c, w, _ in stations
        }
        return {
            "duration": f"{duration}s",
            "warmup": f"{0.01 * duration}s",
            "plane": "request",
            "monitoring": {"scrapeInterval": f"{duration / 4}s"},
            "traffic": {
                "rate": f"{lam}/s",
                "classes": [{"name": "job", "entry": ["s1.work", "s2.work", "s3.work"]}],
            },
            "services": services,
        }

    theory = {name: mmc_wait(c, lam, mu) for name, c, _, mu in stations}
    sojourn = sum(theory[n] + 1 / mu for n, _, _, mu in stations)

    def measure(s: dict) -> dict[str, float]:
        out = {n: s["services"][n]["wait_s"]["mean"] for n in theory}
        out["sojourn"] = s["classes"]["job"]["latency_s"]["mean"]
        return out

    est = replicate(make, measure, {**theory, "sojourn": sojourn}, per_run, max_customers=20_000_000)
    assert est.within("sojourn", sojourn, 0.03), est.describe("sojourn", sojourn)
    for n, wq in theory.items():
        assert est.within(n, wq, 0.03), est.describe(n, wq)
