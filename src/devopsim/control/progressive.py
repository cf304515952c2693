"""What the canary and blue-green controllers share: pods by version, traffic weights, analysis.

A progressive rollout (Argo Rollouts) keeps two ReplicaSets of one service up
at once: the stable version and the new one (``role`` label ``canary`` or
``preview``; ``stable`` once promoted). Traffic between them is split by the
replicas' load-balancing weights (``plane.set_weight``): version ``v`` with
share ``s_v`` and ``n_v`` ready pods gives each of its pods weight
``s_v * N / n_v`` (``N`` the ready pods of the routed versions), so that the
version receives the share ``s_v`` of the service's requests, split by
weighted random as a service mesh routes between two subsets. Without a
traffic split every weight is 1 and the service's own policy applies.

The controller also counts what the new version served (requests and the
5xx responses it gave, read from the data plane's per-replica counters) and
starts the AnalysisRuns its strategy asks for.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from devopsim.control.analysis import AnalysisRun
from devopsim.model.platform import Pod, PodPhase
from devopsim.scenario.controllers import RolloutAnalysis

if TYPE_CHECKING:
    from devopsim.control.rollout import RolloutLoop, _Deployment, _Rollout

__all__ = ["EPS", "Progressive", "VersionCounter"]

EPS = 1e-9
ANALYSIS_PRIORITY = 20  # after the scrape of the same instant (priority 10)


class VersionCounter:
    """Requests one version's pods answered, and their 5xx, from the planes' per-replica counters.

    Counted from ``since`` on: a pod that existed before counts from its first reading. A
    replica's counters stay readable after it is gone, until its slot is given to a new
    replica; reading at every sync and at the end of the run misses nothing in practice.
    """

    def __init__(self, version: str, since: float) -> None:
        self.version = version
        self.since = since
        self._seen: dict[str, tuple[int, int]] = {}  # pod -> (slot, generation)
        self._base: dict[str, tuple[float, float]] = {}  # pods older than ``since``: counts then
        self._counts: dict[str, tuple[float, float]] = {}  # pod -> (requests, 5xx) since

    def update(self, plane: Any, pods: list[Pod]) -> tuple[float, float]:
        """Read the counters of the version's pods among ``pods``: (requests, 5xx) so far."""
        cnt = plane.replicas.cnt
        for p in pods:
            if p.version != self.version:
                continue
            key = self._seen.setdefault(p.name, (p.slot, plane.slot_generation(p.slot)))
            if plane.slot_generation(key[0]) != key[1]:
                continue
            c = cnt[key[0]]
            now = (float(c.sum()), float(c[:, 1:].sum()))
            base = self._base.setdefault(p.name, now if p.created < self.since else (0.0, 0.0))
            self._counts[p.name] = (now[0] - base[0], now[1] - base[1])
        return sum(a for a, _ in self._counts.values()), sum(b for _, b in self._counts.values())


class Progressive(ABC):
    """Base of the canary and blue-green controllers of one rollout.

    Args:
        loop: the rollout loop (clock, PromQL, the rolling-update helper).
        d: the service's deployment state.
        r: the rollout's record.
    """

    strategy = "Progressive"
    new_role = "canary"

    def __init__(self, loop: RolloutLoop, d: _Deployment, r: _Rollout) -> None:
        self.loop = loop
        self.sim = loop.sim
        self.d = d
        self.w = d.w
        self.r = r
        self.service = d.w.name
        self.new = r.to_version
        self.stable = r.from_version
        self.done = False  # no more syncs needed
        self.aborted = False
        self.promoted = False
        self.routing: dict[str, float] | None = None  # version -> traffic share; None: no split
        self._weights: dict[int, tuple[int, float]] = {}  # slot -> (generation, weight set)

    # --- pods -------------------------------------------------------------------------------

    def pods(self, version: str) -> list[Pod]:
        """The version's pods that are starting or running."""
        return self.sim.platform.replicaset(self.service, version)

    def available(self, pods: list[Pod], t: float) -> int:
        """How many of ``pods`` are available (Ready for minReadySeconds)."""
        mr = float(self.w.spec.min_ready_seconds)
        return sum(1 for p in pods if self.sim.platform.available(p, t, mr))

    def scale(self, version: str, n: int, t: float) -> None:
        """Size one version's ReplicaSet (when it differs) and label its pods."""
        if len(self.pods(version)) != n:
            self.sim.platform.scale_replicaset(self.service, version, n, t)
        self.label()

    def role(self, version: str) -> str:
        """The ``role`` label of a version's pods."""
        return self.new_role if version == self.new and not self.promoted else "stable"

    def label(self) -> None:
        """Give every pod its role label (the platform's generation moves so scrapes see it)."""
        changed = False
        for p in self.w.pods:
            if p.phase != PodPhase.GONE and p.version in (self.new, self.stable):
                role = self.role(p.version)
                if p.role != role:
                    p.role = role
                    changed = True
        if changed:
            self.sim.platform.generation += 1

    def others_down(self, t: float) -> None:
        """Scale away versions that are neither stable nor new (an earlier rollout's leftovers)."""
        for v in {p.version for p in self.w.live()} - {self.new, self.stable}:
            if self.pods(v):
                self.sim.platform.scale_replicaset(self.service, v, 0, t)

    # --- traffic ----------------------------------------------------------------------------

    def route(self) -> None:
        """Apply ``self.routing`` as per-replica load-balancing weights."""
        plane = self.sim.plane
        live = [p for p in self.w.pods if p.phase != PodPhase.GONE]
        want: dict[int, float] = {}
        if self.routing is None:
            want = {p.slot: 1.0 for p in live}
        else:
            ready = {v: sum(1 for p in live if p.ready and p.version == v) for v in self.routing}
            total = sum(n for v, n in ready.items() if self.routing[v] > 0)
            for p in live:
                share = self.routing.get(p.version, 0.0)
                n = ready.get(p.version, 0)
                want[p.slot] = share * total / n if n > 0 and share > 0 else 0.0
        for slot, weight in want.items():
            gen = plane.slot_generation(slot)
            if self._weights.get(slot) != (gen, weight):
                plane.set_weight(slot, weight)
                self._weights[slot] = (gen, weight)

    # --- what the new version served ----------------------------------------------------------

    def count(self) -> None:
        """Read what the new version's pods answered so far into the rollout's record."""
        self.r.count(self.sim.plane, self.w.pods)

    # --- analysis ---------------------------------------------------------------------------

    def start_analysis(self, kind: str, spec: RolloutAnalysis, t: float) -> AnalysisRun:
        """Start an AnalysisRun of the strategy's templates."""
        sc = self.sim.scenario
        templates = [(ref.template_name, sc.analysis_templates[ref.template_name]) for ref in spec.templates]
        args = {a.name: a.value for a in spec.args or [] if a.value is not None}
        name = f"{self.service}-{self.r.revision}-{kind}-{len(self.r.analysis_runs) + 1}"
        clock = self.sim.clock

        def schedule(at: float, fn: Any) -> None:
            if at < sc.duration:
                clock.schedule(at, fn, priority=ANALYSIS_PRIORITY)

        run = AnalysisRun(name, kind, templates, args, t, self.loop.promql, schedule, self._analysis_done)
        self.r.analysis_runs.append(run)
        self.sim.log.emit(t, "analysis.start", service=self.service, run=name, run_kind=kind)
        return run

    def _analysis_done(self, run: AnalysisRun, t: float) -> None:
        self.sim.log.emit(t, "analysis.complete", service=self.service, run=run.name, phase=run.phase)
        if self.d.active is self.r:
            self.loop.wake(self.service, t)

    def terminate_runs(self, t: float) -> None:
        """Terminate every run still going (its rollout completed or aborted)."""
        for run in self.r.analysis_runs:
            run.terminate(t)

    # --- abort --------------------------------------------------------------------------------

    def guard(self, t: float) -> bool:
        """Whether the rollout was aborted (the SLO guard runs at scrapes, from the rollout loop)."""
        return self.aborted

    def abort(self, t: float, reason: str) -> None:
        """Abort: traffic back to stable, the pod template back to stable (automatic rollback)."""
        if self.aborted:
            return
        self.aborted = True
        self.r.outcome = "Aborted"
        self.r.rollbacks += 1
        self.r.abort_reason = reason
        self.r.aborted_s = t
        self.terminate_runs(t)
        self.routing = {self.stable: 1.0}
        self.sim.platform.set_template(self.service, self.stable)
        self.sim.log.emit(
            t,
            "rollout.aborted",
            service=self.service,
            revision=self.r.revision,
            version=self.new,
            reason=reason,
        )

    def abort_to_stable(self, replicas: int, t: float, delay: float) -> None:
        """One sync of an aborted rollout: all traffic to the stable version, scaled back up;
        the new version's pods go ``delay`` (``abortScaleDownDelaySeconds``) after the abort."""
        self.routing = {self.stable: 1.0}
        self.scale(self.stable, replicas, t)
        if self.available(self.pods(self.stable), t) == replicas:
            self.restored(t)
        aborted = self.r.aborted_s if self.r.aborted_s is not None else t
        if delay > 0:
            if t + EPS >= aborted + delay:
                if self.pods(self.new):
                    self.scale(self.new, 0, t)
            else:
                self.loop.wake(self.service, aborted + delay)
        gone = not any(p.version == self.new and p.phase != PodPhase.GONE for p in self.w.pods)
        if self.r.finished is not None and (delay == 0 or gone):
            if gone:
                self.routing = None
            self.done = True

    def restored(self, t: float) -> None:
        """The stable version serves everything again (the end of an aborted rollout)."""
        if self.r.finished is None:
            self.r.finished = t
            self.sim.log.emit(
                t, "rollout.rolled_back", service=self.service, revision=self.r.revision, version=self.stable
            )

    def healthy(self, t: float) -> None:
        """The new version is the stable one (the end of a successful rollout)."""
        if self.r.finished is None:
            self.r.outcome = "Healthy"
            self.r.finished = t
            self.terminate_runs(t)
            self.sim.log.emit(
                t,
                "rollout.complete",
                service=self.service,
                revision=self.r.revision,
                version=self.new,
                duration_s=t - self.r.started,
            )

    @abstractmethod
    def sync(self, t: float) -> None:
        """One reconcile of the rollout at ``t`` (each strategy's own steps)."""

    def paused_at_end(self) -> str | None:
        """Why the rollout is still paused when the run ends (None: it is not)."""
        return None
