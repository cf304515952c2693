"""The incidents loop: samples what users saw, and builds ``incidents[]``, ``mttd_s`` and ``mttr_s`` last.

Every scrape interval it reads the data plane's cumulative class statistics
(requests, successes, and the latency SLOs' good requests) into per-interval
counts; the front door's connection errors are added from its own record. In
``finish`` (registered last, so every other loop has written its part of the
summary) it hands them, the faults, alerts, failovers, rollbacks and events to
:func:`devopsim.incidents.build.build_incidents`.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from devopsim.incidents.build import Interval, build_incidents

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.infra import TimelineEntry

__all__ = ["IncidentsLoop"]

DEFAULT_OBJECTIVE = 0.999  # when the scenario has no availability SLO


def _index(rows: list[int]) -> slice | list[int]:
    """``rows`` as a slice where they are consecutive and rising, else as they are."""
    if rows and rows == list(range(rows[0], rows[0] + len(rows))):
        return slice(rows[0], rows[0] + len(rows))
    return rows


def _total(a: Any, rows: slice | list[int], few: tuple[int, ...] | None) -> float:
    """``float(np.add.reduce(a[rows]))``: read one by one where ``few`` lists one or two rows
    (one value, or the sum of two: what the reduction gives), else reduced."""
    if few is None:
        return float(np.add.reduce(a[rows]))
    if len(few) == 1:
        return float(a.item(few[0]))
    return float(a.item(few[0]) + a.item(few[1]))


class IncidentsLoop:
    """Builds the run's incidents (see the module docstring)."""

    name = "incidents"

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float, float]] = []  # (t, requests, ok, fast)
        self._lat_rows: list[int] | None = None  # rows of slo_good of the all-class latency SLO
        self._users: list[int] = []  # the user classes (not the Kafka consumers' message classes)
        # The same, as a slice where they are consecutive (a view: cheaper than a gather).
        self._cls: slice | list[int] = []
        self._rows: slice | list[int] | None = None
        # The same rows where there are one or two (read one by one; see _total), else None.
        self._few_cls: tuple[int, ...] | None = None
        self._few_rows: tuple[int, ...] | None = None

    def attach(self, sim: Simulation) -> None:
        """Sample the class statistics at every scrape (after it)."""
        k = 0
        rows = getattr(sim.program, "slo_rows", None)
        for slo in sim.scenario.slos:
            if slo.latency is not None:
                if slo.class_ is None and self._lat_rows is None:
                    self._lat_rows = list(rows[k]) if rows is not None else [k]
                k += 1
        self._users = [sim.program.classes.index(c.name) for c in sim.scenario.traffic.classes]
        self._cls = _index(self._users)
        self._rows = None if self._lat_rows is None else _index(self._lat_rows)
        self._few_cls = tuple(self._users) if 1 <= len(self._users) <= 2 else None
        lat = self._lat_rows
        self._few_rows = tuple(lat) if lat is not None and 1 <= len(lat) <= 2 else None
        sc = sim.scenario
        sim.clock.every(sc.monitoring.scrape_interval, sc.duration, partial(self._sample, sim), priority=70)

    @staticmethod
    def _stats(sim: Simulation) -> Any:
        # The per-class counters only: cheaper than the full statistics on the flow plane.
        st = getattr(sim.plane, "class_stats", None)
        return sim.plane.stats if st is None else st

    def _sample(self, sim: Simulation, t: float) -> None:
        st = self._stats(sim)
        rows = self._rows
        fast = _total(st.slo_good, rows, self._few_rows) if rows is not None else np.nan
        u, few = self._cls, self._few_cls
        self.samples.append((t, _total(st.cls_n, u, few), _total(st.cls_ok, u, few), fast))

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Acts on no timeline entry."""
        return False

    def series(self, sim: Simulation) -> list[Interval]:
        """User requests per sampling interval, front-door connection errors included."""
        pts = [*self.samples, self._now(sim)]
        fd = next((lp for lp in sim.loops if getattr(lp, "name", "") == "frontdoor"), None)
        # Front-door failures are the plane's own errors when it has the class-loss hook;
        # else the plane counted them as served and they are moved to failed here.
        lost = [] if getattr(fd, "loss_applied", False) else list(getattr(fd, "lost_series", []))
        out = []
        j = 0
        for (t0, n0, ok0, f0), (t1, n1, ok1, f1) in itertools.pairwise(pts):
            if t1 <= t0:
                continue
            n, failed = n1 - n0, (n1 - n0) - (ok1 - ok0)
            slow = 0.0 if np.isnan(f0) else max(0.0, (ok1 - ok0) - (f1 - f0))
            gone = 0.0
            while j < len(lost) and lost[j][0] < t1:
                a, b, x = lost[j]
                if b <= t1:
                    gone += x
                    j += 1
                else:  # split a segment across the boundary
                    part = x * (t1 - a) / (b - a)
                    gone += part
                    lost[j] = (t1, b, x - part)
                    break
            # The plane counted the front door's failures as served: move them to failed.
            out.append(Interval(t0, t1, n, max(0.0, failed) + gone, max(0.0, slow - gone)))
        return out

    def _now(self, sim: Simulation) -> tuple[float, float, float, float]:
        st = self._stats(sim)
        rows = self._rows
        fast = float(st.slo_good[rows].sum()) if rows is not None else np.nan
        u = self._cls
        return sim.scenario.duration, float(st.cls_n[u].sum()), float(st.cls_ok[u].sum()), fast

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Add ``incidents``, ``mttd_s`` and ``mttr_s`` to the summary."""
        sc = sim.scenario
        avail = next((s for s in sc.slos if s.latency is None), None)
        objective = avail.objective if avail is not None else DEFAULT_OBJECTIVE
        faults = summary.get("faults")
        if not isinstance(faults, list):
            faults = [
                {"kind": e.fault.kind, "target": e.fault.target, "start_s": e.at, "end_s": None}
                for e in sc.timeline
                if e.fault is not None
            ]
        fd = summary.get("frontdoor") or {}
        incidents, mttd, mttr = build_incidents(
            faults=[f for f in faults if f.get("simulated", True)],
            series=self.series(sim),
            budget=1.0 - objective,
            slo_name=avail.name if avail is not None else f"availability {100 * objective:g}%",
            alerts=list(summary.get("alerts") or []),
            failovers=list(fd.get("failovers") or []),
            events=sim.log.events,
            deployments=list(summary.get("deployments") or []),
            end=sc.duration,
        )
        summary["incidents"] = incidents
        summary["mttd_s"] = None if mttd is None else round(mttd, 6)
        summary["mttr_s"] = None if mttr is None else round(mttr, 6)
