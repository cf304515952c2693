"""The Deployment controller: RollingUpdate and Recreate rollouts, revisions and rollback.

A timeline ``deploy`` registers the new version (its error rate and latency
factor, :meth:`Program.add_version` and the plane's ``set_version``), points the
pod template at it (a new revision) and rolls it out with the service's
strategy, as ``pkg/controller/deployment`` does (``reference/SEMANTICS.md``
section 2):

* **RollingUpdate**: ``maxSurge`` rounds up, ``maxUnavailable`` down (both 0
  resolves to 1 unavailable); each sync first scales the new ReplicaSet up to
  ``replicas + surge - total``, otherwise scales old ReplicaSets down (unhealthy
  old pods first, then by ``available - (replicas - unavailable)``, oldest
  first). A pod is available once Ready for ``minReadySeconds``. The controller
  syncs every second while a rollout runs (the real one is woken by pod status
  changes).
* **Recreate**: old pods are scaled to 0; once they are gone, the new
  ReplicaSet is scaled to ``replicas``: an outage between the two.
* ``progressDeadlineSeconds`` without progress sets ``ProgressDeadlineExceeded``
  (an event); as in Kubernetes nothing is rolled back automatically.
* A timeline ``rollback`` (``kubectl rollout undo [--to-revision]``) copies an
  older revision's template back as the newest revision and rolls it out.

Canary and BlueGreen strategies (Argo Rollouts) are driven by
:class:`~devopsim.control.canary.CanaryController` and
:class:`~devopsim.control.bluegreen.BlueGreenController`, with their
AnalysisRuns (:mod:`devopsim.control.analysis`). ``strategy.autoRollback.sloBurnRate``
arms the burn-rate guard (:mod:`devopsim.control.slo_guard`) for any strategy: a
RollingUpdate or Recreate that trips it is marked ``RolledBack`` and rolled back
to the previous revision; a canary or blue-green is aborted.

Each rollout is reported in ``deployments[]`` and the run's DORA metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from devopsim.control.progressive import VersionCounter
from devopsim.control.slo_guard import SloBurnGuard, availability_objective
from devopsim.errors import Issue, ScenarioError
from devopsim.model.platform import Pod, PodPhase, Workload
from devopsim.scenario.infra import Deploy, Rollback, TimelineEntry

if TYPE_CHECKING:
    from devopsim.control.analysis import AnalysisRun
    from devopsim.control.progressive import Progressive
    from devopsim.engine.runner import Simulation

__all__ = ["RolloutLoop", "resolve_fenceposts"]

SYNC = 1.0  # seconds between syncs while a rollout runs
GUARD_PRIORITY = 20  # the SLO guard runs after the scrape of the same instant (priority 10)


def _resolve(value: int | str, replicas: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    frac = float(value.rstrip("%")) / 100.0 * replicas
    return math.ceil(frac - 1e-9) if round_up else math.floor(frac + 1e-9)


def resolve_fenceposts(max_surge: int | str, max_unavailable: int | str, replicas: int) -> tuple[int, int]:
    """``ResolveFenceposts``: (surge, unavailable) for ``replicas``; surge rounds up, unavailable down."""
    surge = _resolve(max_surge, replicas, True)
    unavailable = _resolve(max_unavailable, replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas) if replicas else unavailable


@dataclass
class _Rollout:
    service: str
    kind: str  # deploy | rollback
    from_version: str
    to_version: str
    revision: int
    strategy: str
    started: float
    finished: float | None = None
    outcome: str = "in-progress"
    last_progress: float = 0.0
    progress_key: tuple[int, ...] = ()
    deadline_exceeded: bool = False
    min_available_seen: int | None = None
    max_total_seen: int = 0
    rollbacks: int = 0  # automatic rollbacks (abort, SLO burn)
    abort_reason: str | None = None
    aborted_s: float | None = None
    new_requests: float = 0.0
    new_errors: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)
    analysis_runs: list[AnalysisRun] = field(default_factory=list)
    controller: Progressive | None = None
    paused: str | None = None
    counter: VersionCounter | None = None

    def count(self, plane: Any, pods: list[Pod]) -> None:
        """Bring ``requests_new_version`` / ``errors_new_version`` up to date."""
        if self.counter is None:
            self.counter = VersionCounter(self.to_version, self.started)
        self.new_requests, self.new_errors = self.counter.update(plane, pods)

    def record(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "kind": self.kind,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "revision": self.revision,
            "strategy": self.strategy,
            "started_s": self.started,
            "finished_s": self.finished,
            "duration_s": None if self.finished is None else self.finished - self.started,
            "outcome": self.outcome,
            "progress_deadline_exceeded": self.deadline_exceeded,
            "min_available": self.min_available_seen,
            "max_pods": self.max_total_seen,
            "rollbacks": self.rollbacks,
            "abort_reason": self.abort_reason,
            "aborted_s": self.aborted_s,
            "paused": self.paused,
            "requests_new_version": self.new_requests,
            "errors_new_version": self.new_errors,
            "steps": self.steps,
            "analysis_runs": [run.summary() for run in self.analysis_runs],
        }


@dataclass
class _Deployment:
    w: Workload
    revisions: list[tuple[int, str]] = field(default_factory=list)  # (revision, version), oldest first
    active: _Rollout | None = None
    token: int = 0  # the periodic sync that is current (a new rollout starts a new chain)


class RolloutLoop:
    """Deploys, rollbacks and the rollouts they start, for every service."""

    name = "rollouts"

    def __init__(self) -> None:
        self.deployments: dict[str, _Deployment] = {}
        self.rollouts: list[_Rollout] = []
        self.guards: dict[str, SloBurnGuard] = {}
        self._engine: Any = None

    def attach(self, sim: Simulation) -> None:
        """Register the current revisions and schedule the timeline's deploys and rollbacks."""
        self.sim = sim
        sim.platform.on_gone.append(self._pod_gone)
        sc = sim.scenario
        for name, w in sim.platform.workloads.items():
            self.deployments[name] = _Deployment(w, [(1, w.version)])
            st = w.spec.strategy
            ar = st.auto_rollback if st is not None else None
            if ar is not None and ar.slo_burn_rate is not None:
                objective = availability_objective(sc.slos)
                if objective is None:
                    path = ("services", name, "strategy", "autoRollback", "sloBurnRate")
                    raise ScenarioError(
                        [
                            sim.loaded.source.issue(
                                path,
                                f"sloBurnRate {ar.slo_burn_rate:g} needs an availability SLO "
                                "(an entry of 'slos' without 'latency') to budget against",
                            )
                        ]
                    )
                self.guards[name] = SloBurnGuard(
                    name, ar, objective, sc.monitoring.scrape_interval, self.promql
                )
        if self.guards:
            sim.clock.schedule(0.0, self._guard_tick, priority=GUARD_PRIORITY)
        self._check_templates()
        for entry in sim.scenario.timeline:
            if entry.deploy is not None:
                sim.clock.schedule(entry.at, partial(self._deploy, entry.deploy), priority=1)
            elif entry.rollback is not None:
                sim.clock.schedule(entry.at, partial(self._rollback, entry.rollback), priority=1)

    def _check_templates(self) -> None:
        """Conditions and queries of the analysis templates parse (else a ScenarioError at its line)."""
        from devopsim.control.analysis import ExprError, parse_condition

        issues: list[Issue] = []
        src = self.sim.loaded.source
        for name, tpl in self.sim.scenario.analysis_templates.items():
            for i, m in enumerate(tpl.metrics):
                base = ("analysisTemplates", name, "metrics", i)
                for key, text in (
                    ("successCondition", m.success_condition),
                    ("failureCondition", m.failure_condition),
                ):
                    if not text:
                        continue
                    try:
                        parse_condition(text)
                    except ExprError as e:
                        file, line = src.where((*base, key))
                        issues.append(
                            Issue(
                                file, line, f"analysisTemplates.{name}.metrics[{i}].{key}", f"{text!r}: {e}"
                            )
                        )
                prom = m.provider.prometheus
                if prom is not None and "{{" not in prom.query:
                    from devopsim.observe.promql import PromQLError, check

                    try:
                        check(prom.query)
                    except PromQLError as e:
                        file, line = src.where((*base, "provider", "prometheus", "query"))
                        path = f"analysisTemplates.{name}.metrics[{i}].provider.prometheus.query"
                        issues.append(Issue(file, line, path, str(e)))
        if issues:
            raise ScenarioError(issues)

    # --- helpers the progressive controllers use ---------------------------------------------

    def promql(self, expr: str, t: float) -> Any:
        """Evaluate PromQL on the run's metric store at simulated time ``t``."""
        if self._engine is None:
            from devopsim.observe.promql import Engine

            self._engine = Engine(self.sim.store)
        return self._engine.instant(expr, t)

    def wake(self, service: str, t: float) -> None:
        """Run one extra sync of ``service``'s rollout at ``t`` (an analysis ended, a pause is over)."""
        if t < self.sim.scenario.duration:
            self.sim.clock.schedule(t, partial(self._sync, service), priority=1)

    wake_at = wake

    def rolling(self, w: Workload, version: str, t: float) -> None:
        """One RollingUpdate step toward ``version`` (the canary's basic promotion and abort)."""
        self._rolling(w, version, t, float(w.spec.min_ready_seconds))

    def _schedule_sync(self, service: str, at: float) -> None:
        d = self.deployments[service]
        if at < self.sim.scenario.duration:
            self.sim.clock.schedule(at, partial(self._tick, service, d.token), priority=1)

    def _tick(self, service: str, token: int, t: float) -> None:
        d = self.deployments[service]
        if token == d.token:
            self._sync(service, t)
            if token == d.token and d.active is not None:
                self._schedule_sync(service, t + SYNC)

    def _guard_tick(self, t: float) -> None:
        """At each scrape: the SLO burn-rate guard of every service with a rollout to watch.

        A canary or blue-green is watched while it is in progress (a trip aborts it); a
        RollingUpdate or Recreate deploy while it rolls out and for one long window after it
        completed (a trip marks it RolledBack and rolls back to the previous version).
        """
        for service, guard in self.guards.items():
            d = self.deployments[service]
            r = d.active
            if r is not None and r.controller is not None:
                if r.kind == "deploy" and not r.controller.aborted and not r.controller.promoted:
                    reason = guard.check(t)
                    if reason is not None:
                        r.controller.abort(t, f"slo-burn: {reason}")
                        self.wake(service, t)
                continue
            last = next((x for x in reversed(self.rollouts) if x.service == service), None)
            if last is None or last.kind != "deploy" or last.controller is not None:
                continue
            if last.outcome not in ("in-progress", "complete"):
                continue
            if last.finished is not None and t > last.finished + guard.spec.window:
                continue
            reason = guard.check(t)
            if reason is None:
                continue
            last.outcome, last.rollbacks = "RolledBack", 1
            last.abort_reason, last.aborted_s = f"slo-burn: {reason}", t
            if last.finished is None:
                last.finished = t
            self.sim.log.emit(
                t, "rollout.aborted", service=service, revision=last.revision, reason=last.abort_reason
            )
            d.active = None
            self._start(service, last.from_version, t, "rollback")
        nxt = t + self.sim.scenario.monitoring.scrape_interval
        if nxt < self.sim.scenario.duration:
            self.sim.clock.schedule(nxt, self._guard_tick, priority=GUARD_PRIORITY)

    # --- starting rollouts ------------------------------------------------------------------

    def _deploy(self, spec: Deploy, t: float) -> None:
        sim = self.sim
        svc = sim.scenario.services[spec.service]
        ch = spec.changes
        err = svc.error_rate if ch.error_rate is None else ch.error_rate
        lat = svc.latency_factor if ch.latency_factor is None else ch.latency_factor
        vi = sim.program.add_version(spec.service, spec.version, err, lat)
        sim.plane.set_version(vi, err, lat)
        sim.log.emit(
            t, "deploy", service=spec.service, version=spec.version, error_rate=err, latency_factor=lat
        )
        self._start(spec.service, spec.version, t, "deploy")

    def _rollback(self, spec: Rollback, t: float) -> None:
        d = self.deployments[spec.service]
        current = d.revisions[-1]
        if spec.to_revision is None:
            older = [r for r in d.revisions if r[1] != current[1]]
            target = older[-1] if older else None
        else:
            target = next((r for r in d.revisions if r[0] == spec.to_revision), None)
        if target is None:
            self.sim.log.emit(
                t, "rollback.failed", service=spec.service, reason="no such revision in the history"
            )
            return
        self.sim.log.emit(t, "rollback", service=spec.service, to_revision=target[0], version=target[1])
        r = d.active
        ctl = r.controller if r is not None else None
        if ctl is not None and not ctl.aborted and not ctl.promoted and target[1] == ctl.stable:
            # Going back to the current stable ReplicaSet mid-rollout skips the steps (Argo):
            # the same as an abort.
            ctl.abort(t, "rollback to the stable version")
            self.wake(spec.service, t)
            return
        self._start(spec.service, target[1], t, "rollback")

    def _pod_gone(self, pod: Pod, now: float) -> None:
        """Read a going pod's counters into the rollouts to its version, before its slot is reused."""
        for r in self.rollouts:
            if r.service == pod.service and r.to_version == pod.version:
                r.count(self.sim.plane, [pod])

    def _start(self, service: str, version: str, t: float, kind: str) -> None:
        sim = self.sim
        d = self.deployments[service]
        w = d.w
        if d.active is not None:
            if d.active.finished is None:
                d.active.outcome = "superseded"
                d.active.finished = t
            if d.active.controller is not None:
                d.active.controller.terminate_runs(t)
        from_version = w.version
        revision = d.revisions[-1][0] + 1
        d.revisions = [r for r in d.revisions if r[1] != version] + [(revision, version)]
        limit = w.spec.revision_history_limit
        if len(d.revisions) > limit + 1:
            d.revisions = d.revisions[-(limit + 1) :]
        sim.platform.set_template(service, version)
        st = w.spec.strategy
        strategy = "RollingUpdate" if st is None else st.type
        if from_version == version:
            strategy = "RollingUpdate" if strategy in ("Canary", "BlueGreen") else strategy
        r = _Rollout(service, kind, from_version, version, revision, strategy, t, last_progress=t)
        d.active = r
        d.token += 1
        self.rollouts.append(r)
        w.rolling = True
        if strategy == "Canary" and st is not None and st.canary is not None:
            from devopsim.control.canary import CanaryController

            r.controller = CanaryController(self, d, r, st.canary, t)
        elif strategy == "BlueGreen" and st is not None and st.blue_green is not None:
            from devopsim.control.bluegreen import BlueGreenController

            r.controller = BlueGreenController(self, d, r, st.blue_green, t)
        sim.log.emit(
            t,
            "rollout.start",
            service=service,
            strategy=strategy,
            from_version=from_version,
            to_version=version,
            revision=revision,
        )
        self._tick(service, d.token, t)

    # --- the controller ---------------------------------------------------------------------

    def _sizes(self, w: Workload) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in w.pods:
            if p.phase in (PodPhase.STARTING, PodPhase.RUNNING):
                out[p.version] = out.get(p.version, 0) + 1
        return out

    def _available(self, pods: list[Pod], t: float, min_ready: float) -> int:
        return sum(1 for p in pods if self.sim.platform.available(p, t, min_ready))

    def _sync(self, service: str, t: float) -> None:
        d = self.deployments[service]
        r = d.active
        if r is None:
            return
        w = d.w
        if r.controller is not None:
            r.controller.sync(t)
            r.paused = r.controller.paused_at_end()
            avail = sum(
                1
                for p in w.pods
                if p.phase == PodPhase.RUNNING and self.sim.platform.available(p, t, w.spec.min_ready_seconds)
            )
            live = sum(1 for p in w.pods if p.phase in (PodPhase.STARTING, PodPhase.RUNNING))
            r.min_available_seen = avail if r.min_available_seen is None else min(r.min_available_seen, avail)
            r.max_total_seen = max(r.max_total_seen, live)
            if r.controller.done:
                d.active = None
                w.rolling = False
            return
        plat = self.sim.platform
        new = w.version
        r.count(self.sim.plane, w.pods)
        min_ready = float(w.spec.min_ready_seconds)
        if r.strategy == "Recreate":
            self._recreate(w, new, t)
        else:
            self._rolling(w, new, t, min_ready)
        sizes = self._sizes(w)
        new_pods = plat.replicaset(service, new)
        new_avail = self._available(new_pods, t, min_ready)
        all_avail = sum(1 for p in w.pods if p.phase == PodPhase.RUNNING and plat.available(p, t, min_ready))
        r.min_available_seen = (
            all_avail if r.min_available_seen is None else min(r.min_available_seen, all_avail)
        )
        r.max_total_seen = max(r.max_total_seen, sum(sizes.values()))
        key = (sizes.get(new, 0), new_avail, sum(sizes.values()))
        if key != r.progress_key:
            r.progress_key, r.last_progress = key, t
        elif not r.deadline_exceeded and t - r.last_progress >= w.spec.progress_deadline_seconds:
            r.deadline_exceeded = True
            self.sim.log.emit(
                t,
                "rollout.progress_deadline_exceeded",
                service=service,
                revision=r.revision,
                reason="ProgressDeadlineExceeded",
            )
        old_left = any(p.version != new and p.phase != PodPhase.GONE for p in w.pods)
        if sizes.get(new, 0) == w.desired and new_avail == w.desired and not old_left:
            r.outcome, r.finished = "complete", t
            d.active = None
            w.rolling = False
            self.sim.log.emit(
                t,
                "rollout.complete",
                service=service,
                revision=r.revision,
                version=new,
                duration_s=t - r.started,
            )

    def _recreate(self, w: Workload, new: str, t: float) -> None:
        plat = self.sim.platform
        for version in {p.version for p in w.pods if p.version != new}:
            if plat.replicaset(w.name, version):
                plat.scale_replicaset(w.name, version, 0, t)
        if any(p.version != new and p.phase != PodPhase.GONE for p in w.pods):
            return  # wait until every old pod has terminated
        if len(plat.replicaset(w.name, new)) != w.desired:
            plat.scale_replicaset(w.name, new, w.desired, t)

    def _rolling(self, w: Workload, new: str, t: float, min_ready: float) -> None:
        plat = self.sim.platform
        st = w.spec.strategy
        ru = st.rolling_update if st is not None and st.rolling_update is not None else None
        surge_spec = ru.max_surge if ru is not None else "25%"
        unavail_spec = ru.max_unavailable if ru is not None else "25%"
        if st is not None and st.canary is not None:
            surge_spec, unavail_spec = st.canary.max_surge, st.canary.max_unavailable
        replicas = w.desired
        surge, unavailable = resolve_fenceposts(surge_spec, unavail_spec, replicas)
        sizes = self._sizes(w)
        new_size = sizes.get(new, 0)
        total = sum(sizes.values())
        # Scale up the new ReplicaSet (NewRSNewReplicas).
        if new_size > replicas:
            plat.scale_replicaset(w.name, new, replicas, t)
            return
        max_total = replicas + surge
        if total < max_total and new_size < replicas:
            plat.scale_replicaset(w.name, new, new_size + min(max_total - total, replicas - new_size), t)
            return
        # Scale down old ReplicaSets (reconcileOldReplicaSets), oldest first.
        olds = sorted(
            (v for v in sizes if v != new and sizes[v] > 0),
            key=lambda v: min(p.created for p in plat.replicaset(w.name, v)),
        )
        if not olds:
            return
        min_available = replicas - unavailable
        new_pods = plat.replicaset(w.name, new)
        new_unavailable = new_size - self._available(new_pods, t, min_ready)
        max_scaled_down = total - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        cleaned = 0
        for v in olds:
            pods = plat.replicaset(w.name, v)
            unhealthy = len(pods) - self._available(pods, t, min_ready)
            n = min(unhealthy, max_scaled_down - cleaned)
            if n > 0:
                plat.scale_replicaset(w.name, v, len(pods) - n, t)
                cleaned += n
            if cleaned >= max_scaled_down:
                return
        available = sum(1 for p in w.pods if p.phase == PodPhase.RUNNING and plat.available(p, t, min_ready))
        budget = available - min_available
        for v in olds:
            if budget <= 0:
                break
            pods = plat.replicaset(w.name, v)
            n = min(len(pods), budget)
            if n > 0:
                plat.scale_replicaset(w.name, v, len(pods) - n, t)
                budget -= n

    # --- results -------------------------------------------------------------------------------

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Deploys and rollbacks are this loop's."""
        return entry.deploy is not None or entry.rollback is not None

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Add ``deployments[]`` and ``dora`` to the summary."""
        for r in self.rollouts:
            r.count(sim.plane, self.deployments[r.service].w.pods)
            if r.controller is not None:
                r.paused = r.controller.paused_at_end()
        summary["deployments"] = [r.record() for r in self.rollouts]
        deploys = [r for r in self.rollouts if r.kind == "deploy"]
        failed: list[tuple[_Rollout, _Rollout]] = []
        aborted = [r for r in deploys if r.outcome == "Aborted"]
        for i, r in enumerate(deploys):
            if r.outcome == "Aborted":
                continue
            undo = next(
                (
                    x
                    for x in self.rollouts
                    if x.kind == "rollback" and x.service == r.service and x.started >= r.started
                ),
                None,
            )
            later = next((x for x in deploys[i + 1 :] if x.service == r.service), None)
            if undo is not None and (later is None or undo.started <= later.started):
                failed.append((r, undo))
        restore = [
            (u.finished if u.finished is not None else sim.scenario.duration) - r.started for r, u in failed
        ] + [(r.finished if r.finished is not None else sim.scenario.duration) - r.started for r in aborted]
        days = sim.scenario.duration / 86400.0
        summary["dora"] = {
            "deployments": len(deploys),
            "deployment_frequency_per_day": len(deploys) / days if days > 0 else 0.0,
            "change_failure_rate": (len(failed) + len(aborted)) / len(deploys) if deploys else None,
            "mean_time_to_restore_s": sum(restore) / len(restore) if restore else None,
            "mean_rollout_duration_s": (
                sum(r.finished - r.started for r in deploys if r.finished is not None)
                / max(1, sum(1 for r in deploys if r.finished is not None))
                if deploys
                else None
            ),
        }
