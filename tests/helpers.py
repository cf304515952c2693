"""Builders for small scenarios used across the tests, and the theory they are checked against."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EXAMPLES = SHARED / "examples"


def one_service(
    rate: str | float,
    work: str,
    *,
    replicas: int = 1,
    concurrency: int = 1,
    cpu: float | None = None,
    duration: str = "1h",
    warmup: str = "0s",
    lb: str = "round-robin",
    extra_service: dict[str, Any] | None = None,
    endpoint: dict[str, Any] | None = None,
    scrape: str = "60s",
    **top: Any,
) -> dict[str, Any]:
    """A scenario with one service ``api`` and one class ``get`` entering ``api.get``."""
    ep: dict[str, Any] = {"steps": [{"work": work}]}
    if endpoint:
        ep.update(endpoint)
    svc: dict[str, Any] = {
        "replicas": replicas,
        "concurrency": concurrency,
        "loadBalancer": lb,
        "resources": {"requests": {"cpu": cpu if cpu is not None else concurrency}},
        "endpoints": {"get": ep},
    }
    if extra_service:
        svc.update(extra_service)
    sc: dict[str, Any] = {
        "name": "test",
        "duration": duration,
        "warmup": warmup,
        "plane": "request",
        "monitoring": {"scrapeInterval": scrape},
        "traffic": {
            "rate": f"{rate}/s" if not isinstance(rate, str) else rate,
            "classes": [{"name": "get", "entry": "api.get"}],
        },
        "services": {"api": svc},
    }
    sc.update(top)
    return sc


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``a = λ/μ``."""
    # Stable recursion on the Erlang B formula, then convert.
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho + rho * b)


def mmc_wait(c: int, lam: float, mu: float) -> float:
    """Mean time in queue of M/M/c."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


def ek_m1_wait(k: int, total_rate: float, mu: float) -> float:
    """Mean time in queue at one server fed round-robin: E_k/M/1 with Erlang-k gaps of rate ``total_rate``.

    ``sigma`` solves ``sigma = A*(mu (1 - sigma))`` with ``A*(s) = (L / (L + s))^k``; ``W_q = sigma / (mu (1 - sigma))``.
    """
    sigma = 0.5
    for _ in range(10000):
        nxt = (total_rate / (total_rate + mu * (1.0 - sigma))) ** k
        if abs(nxt - sigma) < 1e-15:
            break
        sigma = nxt
    return sigma / (mu * (1.0 - sigma))


def mean_ci(xs: list[float], level: float = 0.99) -> tuple[float, float]:
    """Mean and half-width of a Student-t confidence interval."""
    from scipy import stats

    arr = np.asarray(xs, dtype=float)
    half = stats.t.ppf(0.5 + level / 2, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size)
    return float(arr.mean()), float(half)


def mmc_response_quantile(c: int, lam: float, mu: float, q: float) -> float:
    """The q-quantile of the response time (wait + exponential service) of M/M/c."""
    from scipy.optimize import brentq

    pw = erlang_c(c, lam / mu)
    theta = c * mu - lam

    def tail(x: float) -> float:
        served = math.exp(-mu * x)
        if abs(theta - mu) < 1e-12:
            both = (1 + mu * x) * math.exp(-mu * x)
        else:
            both = (theta * math.exp(-mu * x) - mu * math.exp(-theta * x)) / (theta - mu)
        return (1 - pw) * served + pw * both - (1 - q)

    return float(brentq(tail, 1e-9, 1e4))


def one_region_platform(
    zones: list[str], pool: dict[str, Any], instance_type: str = "m6i.xlarge"
) -> dict[str, Any]:
    """``platform:`` with one AWS region (us-east-1) over ``zones`` and one node pool
    ``general`` of ``instance_type`` (``pool`` adds its fields: count, autoscaling, ...)."""
    return {
        "clouds": {
            "aws": {
                "regions": {
                    "us-east-1": {
                        "zones": zones,
                        "nodePools": [{"name": "general", "instanceType": instance_type, **pool}],
                    }
                }
            }
        }
    }
