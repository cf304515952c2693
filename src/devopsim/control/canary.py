"""The Argo Rollouts canary strategy (``reference/SEMANTICS.md`` 3.1 and 3.2).

The steps run in order, each sync (every second, and at once when an
analysis run ends):

* ``setWeight: W``: with a traffic router (``trafficRouting`` set) the canary
  ReplicaSet is scaled to ``ceil(W * replicas / 100)`` (the stable one stays
  at ``replicas`` unless ``dynamicStableScale``) and, once the canary pods are
  available, ``W`` % of the service's requests go to them (per-replica
  weights, see :mod:`devopsim.control.progressive`). Without a router the
  weight is approximated by replica counts, as
  ``approximateWeightedCanaryStableReplicaCounts`` does (the ceiling, the
  floor and ``replicas + 1`` when surge is allowed, closest weight first),
  moving there within ``maxSurge`` / ``maxUnavailable``; the step is done when
  both ReplicaSets have their size and every pod is available.
* ``pause: {duration: D}`` waits ``D`` from when the step is reached;
  ``pause: {}`` waits for a person (``promote``): devopsim has no promote
  action, so the rollout stays paused to the end of the run.
* ``analysis``: an inline AnalysisRun; Successful goes on, Failed or Error
  aborts, Inconclusive pauses.
* ``setCanaryScale``: ``replicas``, ``weight`` or ``matchTrafficWeight`` sizes the
  canary independently of the traffic weight (router only).
* ``experiment`` steps are not simulated (logged and skipped).

Background analysis (``canary.analysis``) starts at ``startingStep`` (or at
once) and runs alongside; a failure aborts. After the last step the rollout
is promoted: without a router by a rolling update to the new version; with one,
the canary is scaled to ``replicas``, takes all traffic once available, and
the old ReplicaSet is scaled down ``scaleDownDelaySeconds`` later.

**Abort** (failed analysis, or the SLO burn-rate guard): the weight goes to 0
and all traffic to stable; the pod template returns to the stable version;
without a router a rolling update brings stable back and the canary down, with
one the stable ReplicaSet is scaled back up at once and the canary is scaled
down after ``abortScaleDownDelaySeconds`` (0: never). The rollout is reported
``Aborted`` with one automatic rollback.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from devopsim.control.analysis import AnalysisRun
from devopsim.control.progressive import EPS, Progressive
from devopsim.model.platform import PodPhase
from devopsim.scenario.controllers import Canary, CanaryStep, SetCanaryScale

if TYPE_CHECKING:
    from devopsim.control.rollout import RolloutLoop, _Deployment, _Rollout

__all__ = ["CanaryController", "basic_canary_counts"]


def _tied(weight: int, replicas: int) -> bool:
    frac = replicas * (weight / 100.0) % 1.0
    return frac == 0.5


def _delta(weight: int, canary: int, total: int) -> float:
    return abs(canary * 100.0 / total - weight)


def basic_canary_counts(replicas: int, weight: int, surge_allowed: bool) -> tuple[int, int]:
    """``approximateWeightedCanaryStableReplicaCounts``: (canary, stable) replicas nearest ``weight``."""
    if replicas == 0:
        return 0, 0
    ceil_c = math.ceil(replicas * weight / 100.0)
    floor_c = math.floor(replicas * weight / 100.0)
    tied = _tied(weight, replicas)
    zero_ok = weight == 0
    options: list[tuple[int, int]] = []
    if ceil_c < replicas or tied:
        options.append((ceil_c, replicas))
    if not tied and (zero_ok or floor_c != 0):
        options.append((floor_c, replicas))
    if surge_allowed:
        options.append((ceil_c, replicas + 1))
        if not _tied(weight, replicas + 1) and (zero_ok or floor_c != 0):
            options.append((floor_c, replicas + 1))
    if not options:
        return replicas, 0
    best = options[0]
    for o in options[1:]:
        if _delta(weight, *o) < _delta(weight, *best):
            best = o
    return best[0], best[1] - best[0]


class CanaryController(Progressive):
    """One canary rollout of one service."""

    strategy = "Canary"
    new_role = "canary"

    def __init__(self, loop: RolloutLoop, d: _Deployment, r: _Rollout, spec: Canary, t: float) -> None:
        super().__init__(loop, d, r)
        self.spec = spec
        self.steps: list[CanaryStep] = list(spec.steps or [])
        self.router = spec.traffic_routing is not None
        self.index = 0
        self.weight = 0  # the canary weight of the latest setWeight step
        self.traffic = 0  # the weight applied to traffic (router), once the canary is available
        self.scale_override: SetCanaryScale | None = None
        self.pause_start: float | None = None
        self.paused: str | None = None  # why the rollout waits for a person
        self.step_run: AnalysisRun | None = None
        self.background: AnalysisRun | None = None
        self.promote_done_at: float | None = None
        self.routing = {self.stable: 1.0, self.new: 0.0} if self.router else None
        r.steps = [{"t": t, "step": 0, "kind": "start"}]

    # --- replica counts -------------------------------------------------------------------

    def _fenceposts(self, replicas: int) -> tuple[int, int]:
        from devopsim.control.rollout import resolve_fenceposts

        return resolve_fenceposts(self.spec.max_surge, self.spec.max_unavailable, replicas)

    def _targets(self, replicas: int) -> tuple[int, int]:
        if self.router:
            o = self.scale_override
            c = math.ceil(self.weight * replicas / 100.0 - EPS)
            if o is not None and not o.match_traffic_weight:
                if o.replicas is not None:
                    c = o.replicas
                elif o.weight is not None:
                    c = math.ceil(o.weight * replicas / 100.0 - EPS)
            s = replicas
            if self.spec.dynamic_stable_scale:
                s = max(replicas - math.ceil(self.traffic * replicas / 100.0 - EPS), 0)
            return c, s
        surge, _ = self._fenceposts(replicas)
        return basic_canary_counts(replicas, self.weight, surge > 0)

    def _reconcile(self, t: float) -> bool:
        """Move the ReplicaSets toward the current weight; True once there and available."""
        replicas = self.w.desired
        c, s = self._targets(replicas)
        canary, stable = self.pods(self.new), self.pods(self.stable)
        if self.router:
            self.scale(self.new, c, t)
            self.scale(self.stable, s, t)
            canary = self.pods(self.new)
            ready = len(canary) == c and self.available(canary, t) == c
            if ready:
                self.traffic = self.weight
                self.routing = {self.stable: 1.0 - self.traffic / 100.0, self.new: self.traffic / 100.0}
            return ready and self.available(self.pods(self.stable), t) >= min(s, len(self.pods(self.stable)))
        surge, unavailable = self._fenceposts(replicas)
        cn, sn = len(canary), len(stable)
        if cn > c:
            self.scale(self.new, c, t)
        elif cn < c:
            room = replicas + surge - (cn + sn)
            if room > 0:
                self.scale(self.new, cn + min(room, c - cn), t)
        cn = len(self.pods(self.new))
        if sn < s:
            room = replicas + surge - (cn + sn)
            if room > 0:
                self.scale(self.stable, sn + min(room, s - sn), t)
        elif sn > s:
            avail = self.available(self.pods(self.new), t) + self.available(stable, t)
            can = avail - (replicas - unavailable)
            if can > 0:
                self.scale(self.stable, max(s, sn - can), t)
        canary, stable = self.pods(self.new), self.pods(self.stable)
        return (
            len(canary) == c
            and len(stable) == s
            and self.available(canary, t) == c
            and self.available(stable, t) == s
        )

    # --- the steps ------------------------------------------------------------------------------

    def _next(self, t: float) -> None:
        self.index += 1
        self.pause_start = None
        self.step_run = None
        kind = self._kind(self.steps[self.index]) if self.index < len(self.steps) else "end"
        self.r.steps.append({"t": t, "step": self.index, "kind": kind})
        self.sim.log.emit(t, "canary.step", service=self.service, step=self.index, step_kind=kind)

    @staticmethod
    def _kind(s: CanaryStep) -> str:
        if s.set_weight is not None:
            return f"setWeight {s.set_weight}"
        if s.pause is not None:
            return "pause" if s.pause.duration is None else f"pause {s.pause.duration:g}s"
        if s.analysis is not None:
            return "analysis"
        if s.set_canary_scale is not None:
            return "setCanaryScale"
        return "experiment"

    def _pause(self, t: float, why: str) -> None:
        if self.paused is None:
            self.paused = why
            self.sim.log.emit(t, "rollout.paused", service=self.service, step=self.index, reason=why)

    def _run_steps(self, t: float) -> None:
        while self.paused is None and self.index < len(self.steps):
            s = self.steps[self.index]
            if s.set_weight is not None:
                self.weight = s.set_weight
                if not self._reconcile(t):
                    return
                self._next(t)
            elif s.pause is not None:
                if s.pause.duration is None:
                    self._pause(t, "PauseStep")
                    return
                if self.pause_start is None:
                    self.pause_start = t
                end = self.pause_start + s.pause.duration
                if t + EPS < end:
                    self.loop.wake_at(self.service, end)
                    return
                self._next(t)
            elif s.analysis is not None:
                if self.step_run is None:
                    self.step_run = self.start_analysis("step", s.analysis, t)
                run = self.step_run
                if run.finished is None:
                    return
                if run.phase == "Successful":
                    self._next(t)
                elif run.phase == "Inconclusive":
                    self._pause(t, "InconclusiveAnalysis")
                    return
                else:
                    self._analysis_failed(t, run)
                    return
            elif s.set_canary_scale is not None:
                self.scale_override = s.set_canary_scale
                self._next(t)
            else:
                self.sim.log.emit(t, "not_simulated", service=self.service, what="a canary experiment step")
                self._next(t)

    def _analysis_failed(self, t: float, run: AnalysisRun) -> None:
        ar = self.w.spec.strategy.auto_rollback if self.w.spec.strategy is not None else None
        if ar is not None and not ar.on_analysis_failure:
            self._pause(t, f"analysis {run.phase}")
            return
        self.abort(t, f"analysis {run.name} {run.phase}")

    # --- the reconcile ------------------------------------------------------------------------

    def sync(self, t: float) -> None:
        """One reconcile of the rollout."""
        self.label()
        self.count()
        if self.aborted:
            self._sync_abort(t)
        elif self.promoted:
            self._sync_promoted(t)
        else:
            self.others_down(t)
            if not self.guard(t):
                self._progress(t)
            if self.aborted:
                self._sync_abort(t)
        self.route()

    def _progress(self, t: float) -> None:
        bg = self.spec.analysis
        if bg is not None and self.background is None and self.index >= (bg.starting_step or 0):
            self.background = self.start_analysis("background", bg, t)
        if self.background is not None and self.background.finished is not None:
            if self.background.phase in ("Failed", "Error"):
                self._analysis_failed(t, self.background)
                if self.aborted:
                    return
            elif self.background.phase == "Inconclusive":
                self._pause(t, "InconclusiveAnalysis")
        if self.index < len(self.steps):
            s = self.steps[self.index]
            if s.set_weight is None:
                self._reconcile(t)  # keep the sizes of the current weight (pods may come and go)
        self._run_steps(t)
        if self.paused is None and self.index >= len(self.steps):
            self._promote(t)

    def _promote(self, t: float) -> None:
        """After the last step: the new version becomes stable."""
        if self.router:
            replicas = self.w.desired
            self.weight = 100
            self.scale(self.new, replicas, t)
            canary = self.pods(self.new)
            if self.available(canary, t) < replicas:
                return
            self.routing = {self.new: 1.0}
            self.promoted = True
            self.promote_done_at = t + self.spec.scale_down_delay_seconds
            self.label()
            self.healthy(t)
            self.loop.wake_at(self.service, self.promote_done_at)
            return
        self.loop.rolling(self.w, self.new, t)
        self.label()
        if self._settled(self.new, t):
            self.promoted = True
            self.label()
            self.healthy(t)
            self.routing = None
            self.done = True

    def _settled(self, version: str, t: float) -> bool:
        pods = self.pods(version)
        n = self.w.desired
        old = any(p.version != version and p.phase != PodPhase.GONE for p in self.w.pods)
        return len(pods) == n and self.available(pods, t) == n and not old

    def _sync_promoted(self, t: float) -> None:
        assert self.promote_done_at is not None
        if t + EPS >= self.promote_done_at and self.pods(self.stable):
            self.scale(self.stable, 0, t)
        if not any(p.version != self.new and p.phase != PodPhase.GONE for p in self.w.pods):
            self.routing = None
            self.done = True

    def _sync_abort(self, t: float) -> None:
        replicas = self.w.desired
        if not self.router:
            self.routing = None
            self.loop.rolling(self.w, self.stable, t)
            self.label()
            if self._settled(self.stable, t):
                self.restored(t)
                self.done = True
            return
        self.abort_to_stable(replicas, t, self.spec.abort_scale_down_delay_seconds)

    def paused_at_end(self) -> str | None:
        """Why the rollout is still paused when the run ends."""
        return self.paused
