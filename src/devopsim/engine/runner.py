"""Play a scenario forward: the outer loop that interleaves control and data planes.

The control clock holds what happens at known times (scrapes, pods becoming
ready, timeline entries, the end of the warm-up); between two such moments
the data plane simulates every request on its own. Arrivals are generated
window by window from the traffic patterns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from devopsim.engine.clock import Clock
from devopsim.engine.flow.plane import FlowPlane
from devopsim.engine.loops import Loop, default_loops
from devopsim.engine.request.plane import RequestPlane
from devopsim.engine.streams import Streams
from devopsim.engine.totals import ServiceTotals
from devopsim.model.platform import Platform
from devopsim.model.program import Program, compile_program
from devopsim.observe.scrape import Scraper
from devopsim.observe.store import MetricStore, limits_for
from devopsim.results.events import EventLog
from devopsim.results.summary import SummaryInputs, build_summary
from devopsim.scenario.infra import TimelineEntry
from devopsim.scenario.loader import LoadedScenario
from devopsim.traffic.generator import TrafficGenerator

__all__ = ["RunOutput", "Simulation"]

ProgressFn = Callable[[float, float], None]  # (simulated seconds done, total)
MAX_ARRIVALS_PER_WINDOW = 250_000


@dataclass
class RunOutput:
    """What a run produced: the summary, the metric store and the event log."""

    summary: dict[str, Any]
    store: MetricStore
    log: EventLog
    program: Program
    extra: dict[str, Any] = field(default_factory=dict)


class Simulation:
    """One run of a scenario.

    Args:
        loaded: the validated scenario.
        seed: overrides the scenario's seed.
        progress: called with (simulated seconds done, total) as the run advances.
    """

    def __init__(
        self, loaded: LoadedScenario, seed: int | None = None, progress: ProgressFn | None = None
    ) -> None:
        self.loaded = loaded
        self.scenario = sc = loaded.scenario
        self.seed = sc.seed if seed is None else seed
        self.progress = progress
        self.streams = Streams(self.seed)
        self.program = compile_program(sc)
        self.traffic = TrafficGenerator(
            self.program.classes, self.program.class_shares, self.streams, sc.traffic.burstiness, sc.clock0
        )
        self.traffic.set_pattern(sc.traffic.rate, 0.0)
        self.plane: RequestPlane | FlowPlane
        if sc.plane == "flow":
            self.plane = FlowPlane(
                self.program,
                self.streams,
                sc.warmup,
                self.traffic,
                tick=sc.flow.tick,
                samples=sc.flow.samples,
                window=sc.monitoring.scrape_interval,
            )
        else:
            self.plane = RequestPlane(self.program, self.streams, sc.warmup)
        self.clock = Clock()
        self.log = EventLog()
        self.store = MetricStore(limits_for(sc.monitoring))
        self.platform = Platform(sc, self.program, self.plane, self.clock, self.log)
        self._peak = sc.traffic.rate.peak()
        for entry in sc.timeline:
            if entry.traffic is not None:
                self._peak = max(self._peak, entry.traffic.rate.peak())
        self.scraper: Scraper | None = None
        self._totals_warm: list[ServiceTotals] | None = None
        self.loops: list[Loop] = []

    def _schedule(self) -> None:
        sc = self.scenario
        self.clock.every(sc.monitoring.scrape_interval, sc.duration, self._scrape, priority=10)
        self.clock.schedule(sc.warmup, self._warmup_over, priority=5)
        for i, entry in enumerate(sc.timeline):
            self.clock.schedule(entry.at, partial(self._timeline, index=i, entry=entry), priority=0)

    def _scrape(self, t: float) -> None:
        assert self.scraper is not None
        self.scraper.scrape(t)

    def _warmup_over(self, t: float) -> None:
        self._totals_warm = self.plane.service_totals(t)
        if t > 0:
            self.log.emit(t, "warmup.end")

    def _timeline(self, t: float, *, index: int, entry: TimelineEntry) -> None:
        if entry.scale is not None:
            self.platform.scale(entry.scale.service, entry.scale.replicas, t, reason=f"timeline[{index}]")
        elif entry.traffic is not None:
            self.traffic.set_pattern(entry.traffic.rate, t)
            self.log.emit(t, "traffic.change", rate=str(entry.traffic.rate), source=f"timeline[{index}]")
        elif not any(loop.handles(self, entry) for loop in self.loops):
            self.log.emit(t, "not_simulated", source=f"timeline[{index}]", action=entry.action)

    def run(self) -> RunOutput:
        """Simulate the whole scenario and return what it produced."""
        sc = self.scenario
        self.log.emit(
            0.0, "run.start", scenario=sc.name, seed=self.seed, plane=self.plane.name, duration_s=sc.duration
        )
        for u in self.loaded.unsupported:
            self.log.emit(0.0, "not_simulated", path=u.path, what=u.what, instead=u.instead)
        self.platform.start()
        self.scraper = Scraper(self.store, self.program, self.platform, self.plane, sc)
        self._schedule()
        self.loops = default_loops(self)
        for loop in self.loops:
            loop.attach(self)
        max_window = max(1e-3, MAX_ARRIVALS_PER_WINDOW / max(self._peak, 1e-9))
        if isinstance(self.plane, FlowPlane):
            max_window = float("inf")
        # (the loop runs once per distinct event time, ~17,000 times a simulated day: its names
        # are looked up once)
        plane, peek, run_due, reap = self.plane, self.clock.peek, self.clock.run_due, self.platform.reap
        request = plane if isinstance(plane, RequestPlane) else None
        flow = plane if isinstance(plane, FlowPlane) else None
        duration, progress = sc.duration, self.progress
        t = 0.0
        while True:
            t_next = min(peek(), duration, t + max_window)
            if t_next > t:
                if request is not None:
                    arr_t, arr_c = self.traffic.window(t, t_next)
                    request.advance(t_next, arr_t, arr_c)
                else:
                    assert flow is not None
                    flow.advance(t_next)
                reap(t_next)
                t = t_next
            if t >= duration:
                break
            run_due(t)
            if progress is not None:
                progress(t, duration)
        self._scrape(sc.duration)
        if self._totals_warm is None:
            self._totals_warm = self.plane.service_totals(sc.warmup)
        end_totals = self.plane.service_totals(sc.duration)
        self.log.emit(sc.duration, "run.end", in_flight=self.plane.in_system)
        if self.progress is not None:
            self.progress(sc.duration, sc.duration)
        summary = build_summary(
            SummaryInputs(
                scenario=sc,
                seed=self.seed,
                program=self.program,
                plane=self.plane,
                platform=self.platform,
                totals_at_warmup=self._totals_warm,
                totals_at_end=end_totals,
                unsupported=self.loaded.unsupported,
            )
        )
        for loop in self.loops:
            loop.finish(self, summary)
        return RunOutput(summary=summary, store=self.store, log=self.log, program=self.program)
