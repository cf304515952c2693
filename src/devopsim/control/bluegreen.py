"""The Argo Rollouts blue-green strategy (``reference/SEMANTICS.md`` 3.3).

1. The new ReplicaSet (``role: preview``) is scaled to ``previewReplicaCount``
   (``replicas`` when unset); the ``previewService`` points at it and takes no
   user traffic (its pods carry load-balancing weight 0), the
   ``activeService`` still sends everything to the old ReplicaSet.
2. When the preview is fully available, ``prePromotionAnalysis`` starts and the
   rollout pauses if ``autoPromotionEnabled`` is false (until a person promotes:
   devopsim has no promote action, so it stays paused) or promotes
   ``autoPromotionSeconds`` after the pause began (a pre-promotion analysis
   still running then is marked Successful). Otherwise it promotes as soon as
   the analysis (if any) succeeds. A failed analysis aborts.
3. Promotion scales the new ReplicaSet to ``replicas``, then switches the
   active service: all traffic to the new pods. ``postPromotionAnalysis`` runs;
   if it fails the rollout aborts and traffic returns to the old pods, which
   are scaled down ``scaleDownDelaySeconds`` (default 30 s) after the switch,
   or after the post-promotion analysis succeeded.
4. An abort (or the SLO burn-rate guard) keeps or puts traffic on the old
   ReplicaSet and scales the preview down after ``abortScaleDownDelaySeconds``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devopsim.control.analysis import AnalysisRun
from devopsim.control.progressive import EPS, Progressive
from devopsim.model.platform import PodPhase
from devopsim.scenario.controllers import BlueGreen

if TYPE_CHECKING:
    from devopsim.control.rollout import RolloutLoop, _Deployment, _Rollout

__all__ = ["BlueGreenController"]


class BlueGreenController(Progressive):
    """One blue-green rollout of one service."""

    strategy = "BlueGreen"
    new_role = "preview"

    def __init__(self, loop: RolloutLoop, d: _Deployment, r: _Rollout, spec: BlueGreen, t: float) -> None:
        super().__init__(loop, d, r)
        self.spec = spec
        self.routing = {self.stable: 1.0}
        self.pause_start: float | None = None
        self.paused: str | None = None
        self.pre: AnalysisRun | None = None
        self.post: AnalysisRun | None = None
        self.switched_at: float | None = None
        self.scale_down_at: float | None = None
        r.steps = [{"t": t, "step": 0, "kind": "preview"}]

    def _mark(self, t: float, kind: str) -> None:
        self.r.steps.append({"t": t, "step": len(self.r.steps), "kind": kind})
        self.sim.log.emit(t, f"bluegreen.{kind}", service=self.service, version=self.new)

    def sync(self, t: float) -> None:
        """One reconcile of the rollout."""
        self.label()
        self.count()
        if self.aborted:
            self._sync_abort(t)
        elif self.switched_at is not None:
            self._sync_switched(t)
        else:
            self.others_down(t)
            if not self.guard(t):
                self._sync_preview(t)
            if self.aborted:
                self._sync_abort(t)
        self.route()

    def _failed(self, run: AnalysisRun | None) -> bool:
        return run is not None and run.finished is not None and run.phase in ("Failed", "Error")

    def _sync_preview(self, t: float) -> None:
        replicas = self.w.desired
        n = self.spec.preview_replica_count if self.spec.preview_replica_count is not None else replicas
        self.scale(self.stable, replicas, t)
        if self.pause_start is None:
            self.scale(self.new, n, t)
            if self.available(self.pods(self.new), t) < n:
                return
            self.pause_start = t
            self._mark(t, "preview-ready")
            if self.spec.pre_promotion_analysis is not None:
                self.pre = self.start_analysis("prePromotion", self.spec.pre_promotion_analysis, t)
        if self._failed(self.pre):
            assert self.pre is not None
            self.abort(t, f"analysis {self.pre.name} {self.pre.phase}")
            return
        if self.pre is not None and self.pre.finished is not None and self.pre.phase == "Inconclusive":
            self._pause(t, "InconclusiveAnalysis")
            return
        if not self.spec.auto_promotion_enabled:
            self._pause(t, "BlueGreenPause")
            return
        if self.spec.auto_promotion_seconds is not None:
            due = self.pause_start + self.spec.auto_promotion_seconds
            if t + EPS < due:
                self.loop.wake(self.service, due)
                return
            if self.pre is not None and self.pre.finished is None:
                self.pre.terminate(t)  # still running at auto-promotion: marked Successful
        elif self.pre is not None and self.pre.finished is None:
            return
        self._promote(t, replicas)

    def _pause(self, t: float, why: str) -> None:
        if self.paused is None:
            self.paused = why
            self.sim.log.emit(t, "rollout.paused", service=self.service, reason=why)

    def _promote(self, t: float, replicas: int) -> None:
        self.scale(self.new, replicas, t)
        if self.available(self.pods(self.new), t) < replicas:
            return
        self.routing = {self.new: 1.0}
        self.switched_at = t
        self.promoted = True
        self.label()
        self._mark(t, "promoted")
        if self.spec.post_promotion_analysis is not None:
            self.post = self.start_analysis("postPromotion", self.spec.post_promotion_analysis, t)
        else:
            self._schedule_scale_down(t)

    def _schedule_scale_down(self, t: float) -> None:
        self.scale_down_at = t + self.spec.scale_down_delay_seconds
        self.healthy(t)
        self.loop.wake(self.service, self.scale_down_at)

    def _sync_switched(self, t: float) -> None:
        if self.guard(t):
            self._sync_abort(t)
            return
        if self.post is not None and self.scale_down_at is None:
            if self.post.finished is not None and self.post.phase != "Successful":
                self.abort(t, f"analysis {self.post.name} {self.post.phase}")
                self._sync_abort(t)
                return
            if self.post.finished is None:
                return
            self._schedule_scale_down(t)
        assert self.scale_down_at is not None
        if t + EPS >= self.scale_down_at and self.pods(self.stable):
            self.scale(self.stable, 0, t)
            self._mark(t, "old-scaled-down")
        if not any(p.version != self.new and p.phase != PodPhase.GONE for p in self.w.pods):
            self.routing = None
            self.done = True

    def abort(self, t: float, reason: str) -> None:
        """Abort: the active service (back) on the old ReplicaSet."""
        super().abort(t, reason)
        self.promoted = False
        self.label()

    def _sync_abort(self, t: float) -> None:
        replicas = self.w.desired
        self.abort_to_stable(replicas, t, self.spec.abort_scale_down_delay_seconds)

    def paused_at_end(self) -> str | None:
        """Why the rollout is still paused when the run ends."""
        return self.paused
