"""Key figures of a run, and what changed between two runs.

A change is flagged only when it matters:

* an SLO that was met and is now missed (or the reverse);
* an error rate that moved beyond sampling noise: a two-proportion z-test on
  errors / requests, ``|z| > 3`` (and a change of at least 0.01 percentage points);
* a latency quantile that moved by more than 5 % (the summary's quantiles are
  exact to 0.5 %, so 5 % is well beyond their resolution);
* cost and replicas that moved by more than 1 %.

Cost is ``summary["cost"]`` when the run priced itself; otherwise it is
approximated by replica-seconds (the time integral of running replicas over
the measured span), and labelled as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Change", "cost_of", "diff_figures"]

LATENCY_REL = 0.05
COUNT_REL = 0.01
Z_NOISE = 3.0


@dataclass
class Change:
    """One row of the comparison table."""

    group: str
    name: str
    a: float | None
    b: float | None
    unit: str
    verdict: str = ""
    """``worse``, ``better`` or ``""`` (no change that matters)."""
    note: str = ""
    text_a: str | None = None
    text_b: str | None = None

    @property
    def delta(self) -> float | None:
        """``b - a`` when both are numbers."""
        if self.a is None or self.b is None:
            return None
        return self.b - self.a

    @property
    def relative(self) -> float | None:
        """``(b - a) / |a|`` when defined."""
        d = self.delta
        if d is None or self.a == 0 or self.a is None:
            return None
        return d / abs(self.a)


def cost_of(summary: dict[str, Any]) -> tuple[float | None, str, str]:
    """``(value, unit, label)`` of a run's cost: priced when it can be, else replica-seconds."""
    cost = summary.get("cost")
    if isinstance(cost, int | float):
        return float(cost), "", "cost"
    if isinstance(cost, dict):
        for key in ("total", "total_usd", "usd", "amount"):
            v = cost.get(key)
            if isinstance(v, int | float):
                unit = str(cost.get("currency") or ("USD" if "usd" in key else ""))
                return float(v), unit, "cost"
    span = float(summary.get("duration_s", 0.0)) - float(summary.get("warmup_s", 0.0))
    total = 0.0
    seen = False
    for s in (summary.get("services") or {}).values():
        mean = (s.get("replicas") or {}).get("mean")
        if isinstance(mean, int | float):
            total += float(mean) * span
            seen = True
    return (total if seen else None), "replica·s", "replica-seconds (cost proxy: no prices in the run)"


def _rate(block: dict[str, Any]) -> tuple[int, int]:
    errors = block.get("errors")
    n_err = sum(errors.values()) if isinstance(errors, dict) else int(errors or 0)
    return int(n_err), int(block.get("requests") or 0)


def _z(e1: int, n1: int, e2: int, n2: int) -> float:
    """Two-proportion z statistic (pooled); 0 when undefined."""
    if n1 <= 0 or n2 <= 0:
        return 0.0
    p = (e1 + e2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0 if e1 / n1 == e2 / n2 else math.inf
    return (e2 / n2 - e1 / n1) / se


def _rel_verdict(a: float | None, b: float | None, threshold: float, higher_is_worse: bool = True) -> str:
    if a is None or b is None:
        return ""
    base = max(abs(a), 1e-12)
    rel = (b - a) / base
    if abs(rel) <= threshold:
        return ""
    return "worse" if (rel > 0) == higher_is_worse else "better"


def diff_figures(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    """The comparison table: SLOs, classes, services, cost (rows present in either run)."""
    rows: list[Change] = []
    slos_a = {s["name"]: s for s in a.get("slos") or []}
    slos_b = {s["name"]: s for s in b.get("slos") or []}
    for name in list(dict.fromkeys([*slos_a, *slos_b])):
        sa, sb = slos_a.get(name, {}), slos_b.get(name, {})
        ma, mb = sa.get("met"), sb.get("met")
        verdict = ""
        if ma is True and mb is False:
            verdict = "worse"
        elif ma is False and mb is True:
            verdict = "better"
        met_note = {True: "met", False: "missed", None: "-"}
        rows.append(
            Change(
                "SLOs",
                f"{name} (objective {100 * float(sa.get('objective') or sb.get('objective') or 0):g} %)",
                sa.get("attained"),
                sb.get("attained"),
                "%",
                verdict,
                note=f"{met_note.get(ma, '-')} → {met_note.get(mb, '-')}",
            )
        )
    for group, key in (("Request classes", "classes"), ("Services", "services")):
        blocks_a, blocks_b = a.get(key) or {}, b.get(key) or {}
        for name in list(dict.fromkeys([*blocks_a, *blocks_b])):
            ba, bb = blocks_a.get(name), blocks_b.get(name)
            if ba is None or bb is None:
                rows.append(Change(group, f"{name}", None, None, "", "", note="only in one run"))
                continue
            e1, n1 = _rate(ba)
            e2, n2 = _rate(bb)
            ra = e1 / n1 if n1 else None
            rb = e2 / n2 if n2 else None
            z = _z(e1, n1, e2, n2)
            verdict = ""
            if ra is not None and rb is not None and abs(z) > Z_NOISE and abs(rb - ra) >= 1e-4:
                verdict = "worse" if rb > ra else "better"
            rows.append(
                Change(
                    group, f"{name} error rate", ra, rb, "%", verdict, note=f"z = {z:.1f}" if verdict else ""
                )
            )
            for q in ("p50", "p99"):
                la, lb = ba["latency_s"].get(q), bb["latency_s"].get(q)
                rows.append(Change(group, f"{name} {q}", la, lb, "s", _rel_verdict(la, lb, LATENCY_REL)))
            if key == "services":
                for stat in ("mean", "max"):
                    va, vb = ba["replicas"].get(stat), bb["replicas"].get(stat)
                    v = _rel_verdict(va, vb, COUNT_REL)
                    rows.append(
                        Change(group, f"{name} replicas {stat}", va, vb, "pods", "changed" if v else "")
                    )
    ca, unit, label = cost_of(a)
    cb, _, label_b = cost_of(b)
    if label != label_b:
        rows.append(Change("Cost", "cost", None, None, "", "", note="one run is priced, the other is not"))
    else:
        rows.append(Change("Cost", label, ca, cb, unit, _rel_verdict(ca, cb, COUNT_REL)))
    return rows
