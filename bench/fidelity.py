"""Print the request plane's agreement with queueing theory, as the theory tests judge it.

Runs the same replications as ``tests/theory/test_queues.py`` (seeds 1, 2, ... until the 99 %
confidence interval is narrow or the customer budget is spent) and prints, for every case, the
estimate, its 99 % CI half-width, the analytic value and the relative difference.

    python bench/fidelity.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import ek_m1_wait, mmc_wait, one_service
from tests.theory.conftest import replicate


def _row(case: str, est, key: str, theory: float) -> str:  # type: ignore[no-untyped-def]
    m, h = est.mean(key), est.half(key)
    rel = (m - theory) / theory
    return f"{case:<24} {key:<9} {m:>12.6g} {h:>10.3g} {theory:>12.6g} {rel:>+8.2%} {est.customers:>12,}"


def main() -> None:
    head = ("case", "quantity", "estimate", "99% CI ±", "theory", "diff", "customers")
    print(f"{head[0]:<24} {head[1]:<9} {head[2]:>12} {head[3]:>10} {head[4]:>12} {head[5]:>8} {head[6]:>12}")
    for c in (1, 2, 8, 32):
        for rho in (0.3, 0.7, 0.9):
            lam = c * rho
            per_run = 2_000_000
            dur = per_run / lam

            def make(seed: int, lam: float = lam, dur: float = dur, c: int = c) -> dict:
                return one_service(
                    f"{lam}/s",
                    "exp(1s)",
                    concurrency=c,
                    duration=f"{dur}s",
                    warmup=f"{0.01 * dur}s",
                    scrape=f"{dur / 4}s",
                )

            wq = mmc_wait(c, lam, 1.0)
            est = replicate(
                make,
                lambda s: {
                    "wait": s["services"]["api"]["wait_s"]["mean"],
                    "response": s["classes"]["get"]["latency_s"]["mean"],
                },
                {"wait": max(wq, 0.01), "response": wq + 1},
                per_run,
                max_customers=40_000_000,
            )
            print(_row(f"M/M/{c} rho={rho}", est, "wait", wq))
            print(_row(f"M/M/{c} rho={rho}", est, "response", wq + 1))
    for lb, theory in (("random", 0.8 / 0.2), ("round-robin", ek_m1_wait(4, 3.2, 1.0))):
        dur = 2_000_000 / 3.2

        def make_lb(seed: int, lb: str = lb, dur: float = dur) -> dict:
            return one_service(
                "3.2/s",
                "exp(1s)",
                replicas=4,
                lb=lb,
                duration=f"{dur}s",
                warmup=f"{0.01 * dur}s",
                scrape=f"{dur / 4}s",
            )

        est = replicate(
            make_lb,
            lambda s: {"wait": s["services"]["api"]["wait_s"]["mean"]},
            {"wait": theory},
            2_000_000,
            max_customers=20_000_000,
        )
        print(_row(f"4 x M/M/1 {lb}", est, "wait", theory))


if __name__ == "__main__":
    main()
