"""Replications with confidence intervals, for checks against analytic results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import devopsim
from tests.helpers import mean_ci


@dataclass
class Estimate:
    """Replication means of several quantities, with 99 % confidence half-widths."""

    values: dict[str, list[float]]
    customers: int

    def mean(self, key: str) -> float:
        return mean_ci(self.values[key])[0]

    def half(self, key: str) -> float:
        return mean_ci(self.values[key])[1]

    def within(self, key: str, theory: float, rel: float, floor: float = 0.0) -> bool:
        """True when the estimate is within ``rel`` of theory and its 99 % CI is no wider than that.

        The tolerance is ``rel`` times the larger of theory and ``floor``; requiring the
        half-width to be within it too means the check could see an error of that size.
        """
        m, h = mean_ci(self.values[key])
        tol = rel * max(theory, floor)
        return abs(m - theory) <= tol and h <= tol

    def describe(self, key: str, theory: float) -> str:
        m, h = mean_ci(self.values[key])
        rel = (m - theory) / theory if theory else float("nan")
        return f"{key}: {m:.6g} ± {h:.3g} (99% CI) vs theory {theory:.6g} ({rel:+.2%}), {self.customers:,} customers"


def replicate(
    make: Callable[[int], dict[str, Any]],
    measure: Callable[[dict[str, Any]], dict[str, float]],
    targets: dict[str, float],
    customers_per_run: int,
    *,
    min_runs: int = 5,
    max_customers: int,
    rel_half: float = 0.012,
) -> Estimate:
    """Run seeds 1, 2, ... until every target's 99 % CI half-width is below ``rel_half`` of it.

    ``make(seed)`` builds the scenario; ``measure(summary)`` returns the quantities; ``targets``
    gives the scale each half-width is compared with (the theoretical value, or a floor).
    Every run is also checked against Little's law.
    """
    values: dict[str, list[float]] = {k: [] for k in targets}
    seed = 0
    while True:
        seed += 1
        summary = devopsim.simulate(make(seed), seed=seed).summary
        ll = summary["littles_law"]
        assert ll["relative_error"] < 1e-3, ll
        for k, v in measure(summary).items():
            values[k].append(v)
        if seed >= min_runs:
            done = all(mean_ci(values[k])[1] <= rel_half * t for k, t in targets.items() if t > 0)
            if done or seed * customers_per_run >= max_customers:
                return Estimate(values, seed * customers_per_run)
