"""The Knative Pod Autoscaler (KPA) as a control loop (``reference/SEMANTICS.md`` 4.1).

Each service whose ``autoscaler`` is ``kind: knative`` gets one decider:

* **Metrics**: every second the loop reads the service's observed concurrency
  from the data plane, the requests in flight and queued in its pods
  averaged over that second (the time integral of the occupancy, what each
  pod's queue-proxy reports), or with ``metric: rps`` the responses per
  second. Each reading is one bucket.
* **Decision** every 2 s: the stable average is the mean of the buckets of the
  last ``stableWindow`` (60 s), the panic average that of the last
  ``stableWindow * panicWindowPercentage / 100`` (6 s; whole seconds, at least
  1); only buckets since the first reading count while the run is younger than
  a window. With ``target = max(0.01, total * targetUtilizationPercentage /
  100)`` (``total``: ``target`` if set, capped at ``containerConcurrency``; else
  ``containerConcurrency`` if > 0; else 100, or 200 for rps) and ``ready =
  max(1, ready pods)``: ``dspc = ceil(stable / target)``, ``dppc = ceil(panic /
  target)``, both clamped to ``[floor(ready / maxScaleDownRate),
  ceil(maxScaleUpRate * ready)]``. Panic starts when ``dppc / ready >=
  panicThresholdPercentage / 100`` and each such decision extends it; in panic
  the desired count is ``max(stable, panic)`` and never goes down (the highest
  value of the panic is held); panic ends once a full stable window passed
  with no decision over the threshold. ``scaleDownDelay`` holds the maximum
  desired count of that trailing window.
* **Reconcile**: bounded by ``minScale`` and ``maxScale`` (0: none). A desired
  count of 0 marks the revision inactive; it is scaled to zero once
  ``scaleToZeroGracePeriod`` (30 s) has passed since (strictly after), keeping
  one pod until then. ``initialScale`` sizes the revision at the start.

Simplification (the activator): at zero pods requests to the service fail
as unavailable (nothing buffers them); the activator's report is modelled as
those requests, each counting as one concurrent request for the second it
arrived in, which wakes the revision from zero.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devopsim.model.platform import PodPhase, Workload
from devopsim.model.program import ERROR_NAMES
from devopsim.scenario.controllers import Knative

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.infra import TimelineEntry

__all__ = ["DECIDER_PERIOD", "SCRAPE_PERIOD", "KnativeLoop", "kpa_target"]

DECIDER_PERIOD = 2.0  # seconds between decisions
SCRAPE_PERIOD = 1.0  # seconds between metric buckets


def kpa_target(spec: Knative) -> float:
    """The per-pod target: ``max(0.01, total * utilization)``."""
    cc = spec.container_concurrency
    default = 100.0 if spec.metric == "concurrency" else 200.0
    if spec.target is not None:
        total = min(spec.target, cc) if cc > 0 and spec.metric == "concurrency" else spec.target
    else:
        total = float(cc) if cc > 0 and spec.metric == "concurrency" else default
    return max(0.01, total * spec.target_utilization_percentage / 100.0)


@dataclass
class _KPA:
    service: str
    spec: Knative
    w: Workload
    target: float
    buckets: deque[tuple[float, float]] = field(default_factory=deque)  # (t, value)
    first: float | None = None
    last_occ: float = 0.0
    last_t: float = 0.0
    counts: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # pod -> slot, gen, served
    unavailable: float | None = None  # requests failed as unavailable so far (near zero)
    panic_time: float | None = None
    max_panic: int = 0
    inactive_since: float | None = None
    delay: deque[tuple[float, int]] = field(default_factory=deque)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    panics: list[list[float | None]] = field(default_factory=list)
    scales: int = 0
    min_seen: int | None = None
    max_seen: int = 0

    @property
    def panic_window(self) -> float:
        return float(max(1, round(self.spec.stable_window * self.spec.panic_window_percentage / 100.0)))


class KnativeLoop:
    """Every KPA of the scenario."""

    name = "knative"

    def __init__(self) -> None:
        self.kpas: list[_KPA] = []

    def attach(self, sim: Simulation) -> None:
        """Create the deciders and schedule the readings and the decisions."""
        self.sim = sim
        for name, svc in sim.scenario.services.items():
            a = svc.autoscaler
            if isinstance(a, Knative):
                self.kpas.append(_KPA(name, a, sim.platform.workloads[name], kpa_target(a)))
        if not self.kpas:
            return
        self._entry: dict[str, list[int]] = {}
        for k in self.kpas:
            self._entry[k.service] = [
                i
                for i, c in enumerate(sim.scenario.traffic.classes)
                if c.entries[0].split(".")[0] == k.service
            ]
            initial = max(k.spec.initial_scale, k.spec.min_scale)
            if k.spec.max_scale > 0:
                initial = min(initial, k.spec.max_scale)
            if initial != k.w.desired:
                sim.platform.scale(k.service, initial, 0.0, reason="kpa initial-scale")
            k.min_seen = k.max_seen = initial
        totals = sim.plane.service_totals(0.0)
        for k in self.kpas:
            k.last_occ = totals[k.w.index].occupancy
        sim.clock.schedule(SCRAPE_PERIOD, self._collect, priority=-20)
        sim.clock.schedule(DECIDER_PERIOD, self._decide, priority=-10)

    # --- metrics ---------------------------------------------------------------------------

    def _unavailable(self, k: _KPA) -> float:
        classes = self._entry[k.service]
        if not classes:
            return 0.0
        tot = self.sim.plane.stats.cls_tot
        col = 1 + ERROR_NAMES.index("unavailable")  # ok, then each error kind
        return float(sum(tot[c, col] for c in classes))

    def _served(self, k: _KPA) -> float:
        plane = self.sim.plane
        cnt = plane.replicas.cnt
        delta = 0.0
        seen: dict[str, tuple[int, int, float]] = {}
        for p in k.w.pods:
            if p.phase == PodPhase.GONE:
                continue
            gen = plane.slot_generation(p.slot)
            now = float(cnt[p.slot].sum())
            prev = k.counts.get(p.name)
            base = prev[2] if prev is not None and prev[:2] == (p.slot, gen) else 0.0
            delta += max(now - base, 0.0)
            seen[p.name] = (p.slot, gen, now)
        k.counts = seen
        return delta

    def _collect(self, t: float) -> None:
        sim = self.sim
        totals = sim.plane.service_totals(t)
        for k in self.kpas:
            dt = t - k.last_t
            occ = totals[k.w.index].occupancy
            if k.spec.metric == "concurrency":
                value = (occ - k.last_occ) / dt if dt > 0 else 0.0
            else:
                value = self._served(k) / dt if dt > 0 else 0.0
            ready = k.w.ready_count()
            if ready <= 1:  # near zero: watch what the activator would buffer
                una = self._unavailable(k)
                if ready == 0 and k.unavailable is not None:
                    value += max(una - k.unavailable, 0.0)
                k.unavailable = una
            else:
                k.unavailable = None
            k.last_occ, k.last_t = occ, t
            k.buckets.append((t, max(value, 0.0)))
            if k.first is None:
                k.first = t
            while k.buckets and k.buckets[0][0] <= t - k.spec.stable_window:
                k.buckets.popleft()
        if t + SCRAPE_PERIOD < sim.scenario.duration:
            sim.clock.schedule(t + SCRAPE_PERIOD, self._collect, priority=-20)

    # --- decisions -------------------------------------------------------------------------

    @staticmethod
    def _avg(k: _KPA, window: float, t: float) -> float | None:
        vals = [v for (bt, v) in k.buckets if bt > t - window]
        return sum(vals) / len(vals) if vals else None

    def _decide(self, t: float) -> None:
        for k in self.kpas:
            self._decide_one(k, t)
        if t + DECIDER_PERIOD < self.sim.scenario.duration:
            self.sim.clock.schedule(t + DECIDER_PERIOD, self._decide, priority=-10)

    def _decide_one(self, k: _KPA, t: float) -> None:
        s = k.spec
        stable = self._avg(k, s.stable_window, t)
        panic = self._avg(k, k.panic_window, t)
        if stable is None or panic is None:
            return  # no data yet
        w = k.w
        ready_pods = w.ready_count()
        ready = max(1, ready_pods)
        dspc = math.ceil(stable / k.target - 1e-9)
        dppc = math.ceil(panic / k.target - 1e-9)
        up = math.ceil(s.max_scale_up_rate * ready)
        down = math.floor(ready / s.max_scale_down_rate)
        d_stable = min(max(dspc, down), up)
        d_panic = min(max(dppc, down), up)
        over = dppc / ready >= s.panic_threshold_percentage / 100.0
        if k.panic_time is None and over:
            k.panic_time = t
            k.panics.append([t, None])
            self.sim.log.emit(t, "kpa.panic", service=k.service, panic=True, panic_concurrency=panic)
        elif over:
            k.panic_time = t
        elif k.panic_time is not None and k.panic_time + s.stable_window < t:
            k.panic_time = None
            k.max_panic = 0
            k.panics[-1][1] = t
            self.sim.log.emit(t, "kpa.panic", service=k.service, panic=False, stable_concurrency=stable)
        desired = d_stable
        if k.panic_time is not None:
            desired = max(desired, d_panic)
            k.max_panic = max(k.max_panic, desired)
            desired = k.max_panic
        if s.scale_down_delay > 0:
            k.delay.append((t, desired))
            while k.delay and k.delay[0][0] <= t - s.scale_down_delay:
                k.delay.popleft()
            desired = max(v for _, v in k.delay)
        want = self._bounds(k, desired, t)
        k.decisions.append(
            {
                "t": t,
                "stable": stable,
                "panic": panic,
                "ready": ready_pods,
                "desired": desired,
                "scale": want,
                "panicking": k.panic_time is not None,
            }
        )
        if want != w.desired:
            self.sim.log.emit(
                t,
                "kpa.scale",
                service=k.service,
                from_replicas=w.desired,
                to_replicas=want,
                panic=k.panic_time is not None,
            )
            k.scales += 1
            self.sim.platform.scale(k.service, want, t, reason="kpa")
        k.min_seen = want if k.min_seen is None else min(k.min_seen, want)
        k.max_seen = max(k.max_seen, want)

    def _bounds(self, k: _KPA, desired: int, t: float) -> int:
        s = k.spec
        want = max(desired, s.min_scale)
        if s.max_scale > 0:
            want = min(want, s.max_scale)
        if want > 0:
            k.inactive_since = None
            return want
        if k.inactive_since is None:
            k.inactive_since = t
            self.sim.log.emit(t, "kpa.inactive", service=k.service)
        if t > k.inactive_since + s.scale_to_zero_grace_period:
            return 0
        return 1 if k.w.desired > 0 else 0

    # --- results ---------------------------------------------------------------------------

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Acts on no timeline entry."""
        return False

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Add ``autoscalers.<service>`` for each KPA."""
        if not self.kpas:
            return
        out = summary.setdefault("autoscalers", {})
        for k in self.kpas:
            out[k.service] = {
                "kind": "knative",
                "target": k.target,
                "decisions": len(k.decisions),
                "rescales": k.scales,
                "panics": [{"start_s": a, "end_s": b} for a, b in k.panics],
                "replicas_min": k.min_seen,
                "replicas_max": k.max_seen,
            }
        self.decisions = {k.service: k.decisions for k in self.kpas}
