"""The chaos control loop: timeline faults and Chaos Toolkit experiments in a run.

Timeline ``fault`` entries are injected at their time (datastore faults stay
with the stateful loop, which owns them); ``chaos:`` experiments of the scenario,
and any given to the simulation from files (``sim.chaos_experiments``, set by
``devopsim chaos run``), play from their ``at`` (default: the end of the
warm-up, or 10 minutes in when there is none, so that 5-minute rate windows have
data). The summary gets ``faults[]`` and ``experiments[]``; the full journals
are on the loop (:attr:`ChaosLoop.runs`).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from devopsim.chaos.experiment import Experiment, parse_experiment
from devopsim.chaos.faults import CHAOS_PRIORITY, FaultInjector, simulated
from devopsim.chaos.runner import ExperimentRun
from devopsim.scenario.infra import Fault

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.infra import TimelineEntry

__all__ = ["ChaosLoop", "default_start"]

STATEFUL_KINDS = frozenset(
    {"db-primary-crash", "replication-break", "recover", "cache-flush", "cache-shard-loss", "broker-loss"}
)


def default_start(sim: Simulation) -> float:
    """When an experiment without ``at`` starts: the end of the warm-up, else 10 minutes in."""
    sc = sim.scenario
    t = sc.warmup if sc.warmup > 0 else 600.0
    return min(t, sc.duration / 2)


class ChaosLoop:
    """Injects the run's faults and plays its experiments."""

    name = "chaos"

    def __init__(self, experiments: list[Experiment] | None = None) -> None:
        self.extra = list(experiments or [])
        self.injector: FaultInjector | None = None
        self.runs: list[ExperimentRun] = []

    def attach(self, sim: Simulation) -> None:
        """Schedule the timeline's faults and the experiments."""
        sc = sim.scenario
        self.injector = inj = FaultInjector(sim)
        for i, entry in enumerate(sc.timeline):
            if entry.fault is not None and self._mine(sim, entry.fault):
                sim.clock.schedule(
                    entry.at, partial(self._inject, entry.fault, f"timeline[{i}]"), priority=CHAOS_PRIORITY
                )
        experiments: list[Experiment] = []
        for i, spec in enumerate(sc.chaos):
            raw = spec.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
            experiments.append(parse_experiment(raw, sim.loaded.source, ("chaos", i)))
        experiments.extend(self.extra)
        experiments.extend(getattr(sim, "chaos_experiments", None) or [])
        for i, exp in enumerate(experiments):
            at = exp.at if exp.at is not None else default_start(sim)
            if at >= sc.duration:
                sim.log.emit(
                    0.0, "chaos.experiment.skipped", title=exp.title, reason="starts after the run ends"
                )
                continue
            run = ExperimentRun(sim, inj, exp, at, i)
            self.runs.append(run)
            run.start()

    def _inject(self, f: Fault, source: str, t: float) -> None:
        assert self.injector is not None
        self.injector.inject(f, t, source, stateful=False)  # the stateful loop reads the timeline too

    @staticmethod
    def _mine(sim: Simulation, f: Fault) -> bool:
        if not simulated(f.kind):
            return False
        if f.target in sim.scenario.datastores and f.kind in STATEFUL_KINDS:
            # The stateful loop acts on these; a recover also ends our faults on the datastore.
            return f.kind == "recover"
        return True

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Timeline faults the chaos loop injects."""
        return entry.fault is not None and self._mine(sim, entry.fault)

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Add ``faults[]`` and ``experiments[]``."""
        for run in self.runs:
            run.close(sim.scenario.duration)
        if self.injector is not None and self.injector.faults:
            summary["faults"] = [af.record() for af in self.injector.faults]
        if self.runs:
            summary["experiments"] = [r.record() for r in self.runs]
