"""Playing an experiment on the simulated clock, and its Chaos Toolkit journal.

An experiment is a process (a generator, as in SimPy): it runs activities at the
current simulated time and yields the seconds to wait (pauses); the control
clock resumes it. The flow is Chaos Toolkit's:

1. the steady-state hypothesis before the method; if it is not met the method
   does not run (status ``completed``, or ``failed`` if a probe errored);
2. the method, activity by activity (``background`` ones as their own process);
3. the hypothesis after the method; not met sets ``deviated``;
4. the rollbacks, per ``runtime.rollbacks.strategy``.

Activities take no simulated time themselves; pauses do. Probes see the metrics
scraped up to their time. The journal has Chaos Toolkit's shape: ``status``,
``deviated``, ``steady_states.{before, after, during}``, ``run[]``,
``rollbacks[]``, each activity with ``start``, ``end``, ``duration``, ``output``,
``status`` and, for hypothesis probes, ``tolerance_met``; times are the simulated
wall clock (the scenario's ``start`` plus run time) with ``t_s`` the run time.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from devopsim.chaos.experiment import Activity, Experiment
from devopsim.chaos.providers import Context, run_provider
from devopsim.chaos.tolerance import within_tolerance
from devopsim.errors import DevopsimError

if TYPE_CHECKING:
    from devopsim.chaos.faults import FaultInjector
    from devopsim.engine.runner import Simulation

__all__ = ["EXPERIMENT_PRIORITY", "ExperimentRun"]

EXPERIMENT_PRIORITY = 30  # after the scrape (10) and the rules (20s) of the same instant
Process = Generator[float, None, None]


class ExperimentRun:
    """One experiment playing in one simulation.

    Args:
        sim: the simulation.
        injector: the run's fault injector.
        experiment: the parsed experiment.
        at: when it starts (run seconds).
        index: its position (``chaos[i]``), for event sources.
    """

    def __init__(
        self, sim: Simulation, injector: FaultInjector, experiment: Experiment, at: float, index: int
    ):
        self.sim = sim
        self.injector = injector
        self.exp = experiment
        self.at = at
        self.source = f"chaos[{index}]"
        self.status = "pending"
        self.deviated = False
        self.before: dict[str, Any] | None = None
        self.after: dict[str, Any] | None = None
        self.during: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self.rollback_runs: list[dict[str, Any]] = []
        self.t_end: float | None = None
        self._ctx: Context | None = None
        self._method_done = False

    # --- time --------------------------------------------------------------------------

    def start(self) -> None:
        """Schedule the experiment's start."""
        self.sim.clock.schedule(self.at, partial(self._begin), priority=EXPERIMENT_PRIORITY)

    def _begin(self, t: float) -> None:
        self.status = "running"
        self.sim.log.emit(t, "chaos.experiment.start", title=self.exp.title, source=self.source)
        self._drive(self._process(), t)

    def _drive(self, proc: Process, t: float) -> None:
        try:
            wait = next(proc)
        except StopIteration:
            return
        self.sim.clock.schedule(t + max(wait, 0.0), partial(self._resume, proc), priority=EXPERIMENT_PRIORITY)

    def _resume(self, proc: Process, t: float) -> None:
        self._drive(proc, t)

    def _now(self) -> float:
        return float(self.sim.clock.now)

    def _stamp(self, t: float) -> str:
        start = self.sim.scenario.start
        origin = start.astimezone(UTC) if start is not None else datetime(1970, 1, 1, tzinfo=UTC)
        return (origin + timedelta(seconds=t)).isoformat().replace("+00:00", "Z")

    # --- activities -----------------------------------------------------------------------

    def _context(self, t: float) -> Context:
        if self._ctx is None:
            self._ctx = Context(self.sim, self.injector, t, self.source)
        self._ctx.t = t
        return self._ctx

    def _run_activity(self, act: Activity, check_tolerance: bool = False) -> dict[str, Any]:
        t = self._now()
        run: dict[str, Any] = {"activity": act.raw, "status": "succeeded", "output": None}
        ctx = self._context(t)
        try:
            out = run_provider(ctx, act.provider)
            run["output"] = out
        except DevopsimError as exc:
            run["status"] = "failed"
            run["exception"] = [f"{type(exc).__name__}: {exc}"]
            out = None
        if check_tolerance or (act.type == "probe" and act.has_tolerance):
            met = False
            if run["status"] == "succeeded":
                try:
                    met = within_tolerance(act.tolerance, out, self._probe_tolerance)
                except DevopsimError as exc:
                    run["status"] = "failed"
                    run["exception"] = [f"{type(exc).__name__}: {exc}"]
            run["tolerance_met"] = met
        run.update(start=self._stamp(t), end=self._stamp(t), duration=0.0, t_s=t)
        self.sim.log.emit(
            t,
            "chaos.activity",
            source=self.source,
            activity=act.name,
            type=act.type,
            status=run["status"],
            **({"tolerance_met": run["tolerance_met"]} if "tolerance_met" in run else {}),
        )
        return run

    def _probe_tolerance(self, provider: dict[str, Any], value: Any) -> Any:
        prov = dict(provider)
        if prov.get("type") == "python":
            prov["arguments"] = {**(prov.get("arguments") or {}), "value": value}
        return run_provider(self._context(self._now()), prov)

    def _hypothesis(self) -> dict[str, Any]:
        h = self.exp.hypothesis
        assert h is not None
        probes = [self._run_activity(p, check_tolerance=True) for p in h.probes]
        met = all(r.get("tolerance_met") for r in probes)
        return {"steady_state_met": met, "probes": probes}

    def _activity(self, act: Activity, into: list[dict[str, Any]]) -> Process:
        if act.pause_before:
            yield act.pause_before
        into.append(self._run_activity(act))
        if act.pause_after:
            yield act.pause_after

    # --- the flow -------------------------------------------------------------------------

    def _process(self) -> Process:
        exp = self.exp
        hs = exp.hypothesis_strategy if exp.hypothesis is not None else "skip"
        if hs in ("default", "before-method-only", "continuous"):
            self.before = self._hypothesis()
            if not self.before["steady_state_met"]:
                errored = any(r["status"] == "failed" for r in self.before["probes"])
                self.status = "failed" if errored else "completed"
                self.sim.log.emit(
                    self._now(), "chaos.hypothesis", source=self.source, when="before", met=False
                )
                yield from self._rollbacks()
                self._finish()
                return
        if hs in ("during-method-only", "continuous"):
            self.sim.clock.schedule(
                self._now(), partial(self._resume, self._watch()), priority=EXPERIMENT_PRIORITY + 1
            )
        try:
            for act in exp.method:
                if act.background:
                    self._drive(self._activity(act, self.runs), self._now())
                else:
                    yield from self._activity(act, self.runs)
        except Exception as exc:  # an unexpected failure of the twin: Chaos Toolkit's "aborted"
            self.status = "aborted"
            self.runs.append({"activity": {"name": "<method>"}, "status": "failed", "exception": [repr(exc)]})
            self._finish()
            raise
        self._method_done = True
        self.status = "completed"
        if hs in ("default", "after-method-only", "continuous"):
            self.after = self._hypothesis()
            self.deviated = not self.after["steady_state_met"]
            self.sim.log.emit(
                self._now(), "chaos.hypothesis", source=self.source, when="after", met=not self.deviated
            )
        if any(d.get("steady_state_met") is False for d in self.during):
            self.deviated = True
        yield from self._rollbacks()
        self._finish()

    def _watch(self) -> Process:
        """Check the hypothesis every ``freq`` seconds while the method runs (during / continuous)."""
        while not self._method_done and self.status == "running":
            check = self._hypothesis()
            self.during.append(check)
            if self.exp.fail_fast and not check["steady_state_met"]:
                self.deviated = True
            yield self.exp.hypothesis_frequency

    def _rollbacks(self) -> Process:
        rs = self.exp.rollback_strategy
        run = (
            (rs == "default" and self.status not in ("failed", "interrupted"))
            or rs == "always"
            or (rs == "deviated" and self.deviated)
        )
        if not run:
            return
        for act in self.exp.rollbacks:
            yield from self._activity(act, self.rollback_runs)

    def _finish(self) -> None:
        t = self._now()
        self.t_end = t
        self.sim.log.emit(
            t,
            "chaos.experiment.end",
            title=self.exp.title,
            source=self.source,
            status=self.status,
            deviated=self.deviated,
        )

    # --- results --------------------------------------------------------------------------

    def close(self, t_run_end: float) -> None:
        """The run is over: an experiment still going was interrupted by its end."""
        if self.status in ("pending", "running"):
            self.status = "interrupted"
            self.t_end = t_run_end

    def journal(self) -> dict[str, Any]:
        """The Chaos Toolkit journal of this experiment."""
        from devopsim import __version__

        end = self.t_end if self.t_end is not None else self.at
        return {
            "chaoslib-version": None,
            "platform": f"devopsim {__version__} (simulated)",
            "node": f"devopsim:{self.sim.scenario.name}",
            "experiment": self.exp.raw,
            "start": self._stamp(self.at),
            "end": self._stamp(end),
            "duration": end - self.at,
            "status": self.status,
            "deviated": self.deviated,
            "steady_states": {"before": self.before, "after": self.after, "during": self.during},
            "run": self.runs,
            "rollbacks": self.rollback_runs,
            "notes": list(self.exp.notes),
            "t_start_s": self.at,
            "t_end_s": end,
            "scenario": self.sim.scenario.name,
            "seed": self.sim.seed,
        }

    def record(self) -> dict[str, Any]:
        """The summary's view: ``experiments[]``."""
        return {
            "title": self.exp.title,
            "source": self.source,
            "start_s": self.at,
            "end_s": self.t_end,
            "status": self.status,
            "deviated": self.deviated,
            "steady_state_before": None if self.before is None else self.before["steady_state_met"],
            "steady_state_after": None if self.after is None else self.after["steady_state_met"],
            "activities": len(self.runs),
            "failed_activities": sum(1 for r in self.runs if r["status"] == "failed"),
        }
