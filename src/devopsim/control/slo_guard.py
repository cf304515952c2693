"""Automatic rollback when the SLO's error budget burns too fast (``strategy.autoRollback``).

devopsim's own guard, computed from the twin's scraped metrics with the
multi-window burn-rate alert of the Google SRE workbook ("Alerting on SLOs"):
the error ratio of the service being rolled out,
``sum(rate(http_requests_total{service=S, code=~"5.."}[W])) /
sum(rate(http_requests_total{service=S}[W]))``, divided by the error budget
``1 - objective`` of the scenario's availability SLO, is the burn rate. The
guard trips when the burn rate exceeds ``sloBurnRate`` over both the long
window ``window`` (default 5 m) and the short window ``window / 12`` (at
least two scrape intervals, so that ``rate`` has two samples). It is checked
at every scrape while a rollout of the service is in progress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devopsim.scenario.controllers import AutoRollback
from devopsim.scenario.schema import SLO

__all__ = ["SloBurnGuard", "availability_objective"]


def availability_objective(slos: list[SLO]) -> float | None:
    """The objective the guard budgets against: the first availability SLO (no latency bound)."""
    avail = [s for s in slos if s.latency is None]
    overall = [s for s in avail if s.class_ is None]
    pick = overall or avail
    return pick[0].objective if pick else None


@dataclass
class SloBurnGuard:
    """The burn-rate check of one service.

    Args:
        service: the service rolled out.
        spec: its ``strategy.autoRollback`` (``sloBurnRate`` set).
        objective: the availability objective (e.g. 0.999).
        scrape_interval: seconds between scrapes (the check's period).
        evaluate: runs a PromQL query at a time.
    """

    service: str
    spec: AutoRollback
    objective: float
    scrape_interval: float
    evaluate: Callable[[str, float], Any]
    next_check: float = 0.0
    checks: list[tuple[float, float, float]] = field(default_factory=list)  # (t, long, short burn)

    @property
    def windows(self) -> tuple[float, float]:
        """(long, short) windows in seconds."""
        long = float(self.spec.window)
        return long, max(long / 12.0, 2.0 * self.scrape_interval)

    def _ratio(self, window: float, t: float) -> float:
        sel = f'service="{self.service}"'
        w = f"{window:g}s"
        bad = self.evaluate(f'sum(rate(http_requests_total{{{sel}, code=~"5.."}}[{w}]))', t)
        total = self.evaluate(f"sum(rate(http_requests_total{{{sel}}}[{w}]))", t)
        b = float(bad[0].value) if isinstance(bad, list) and bad else 0.0
        n = float(total[0].value) if isinstance(total, list) and total else 0.0
        return b / n if n > 0 else 0.0

    def check(self, t: float) -> str | None:
        """At most once per scrape interval: the reason to roll back, or None."""
        if t < self.next_check or self.spec.slo_burn_rate is None:
            return None
        self.next_check = t + self.scrape_interval
        budget = 1.0 - self.objective
        long, short = self.windows
        b_long = self._ratio(long, t) / budget
        b_short = self._ratio(short, t) / budget
        self.checks.append((t, b_long, b_short))
        limit = self.spec.slo_burn_rate
        if b_long > limit and b_short > limit:
            return (
                f"SLO burn rate {b_long:.3g}x over {long:g}s and {b_short:.3g}x over {short:g}s "
                f"exceeds {limit:g}x (objective {self.objective:.6g})"
            )
        return None
