"""The HorizontalPodAutoscaler as a control loop of a run.

Each service whose ``autoscaler`` is ``kind: hpa`` gets one
:class:`~devopsim.control.hpa.HPAController`, synced every 15 s
(``--horizontal-pod-autoscaler-sync-period``) from t = 15 s. A sync reads what
the real controller reads: ``scale.spec.replicas`` (the workload's desired
replicas), the pods with their phase, readiness and start times, and the
metrics APIs: resource metrics from :class:`MetricsServer` (CPU averaged over
its 15 s resolution, so decisions lag the load), custom and external metrics
through PromQL on the twin's own scraped series the way prometheus-adapter
serves them. It acts only through ``Platform.scale`` and logs ``hpa.scale``
with ``from_replicas``, ``to_replicas`` and ``reason``. kube-state-metrics'
HPA series are recorded at every scrape:
``kube_horizontalpodautoscaler_spec_min_replicas``, ``..._spec_max_replicas``,
``..._status_current_replicas``, ``..._status_desired_replicas``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from devopsim.control.hpa import SYNC_PERIOD, Decision, HPAController
from devopsim.control.hpa_metrics import MetricReading, PodInfo, PodSample, aligned_proposal
from devopsim.control.metrics_server import MetricsServer
from devopsim.model.platform import PodPhase, Workload
from devopsim.scenario.controllers import HPA, MetricSpec, MetricTarget

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.infra import TimelineEntry

__all__ = ["AutoscalingLoop", "pod_infos"]

_KSM = (
    "kube_horizontalpodautoscaler_spec_min_replicas",
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas",
)


def apply_decision(
    sim: Simulation, t: float, service: str, current: int, d: Decision, reason: str, **extra: Any
) -> None:
    """Scale ``service`` as an HPA decision says, with its ``hpa.scale`` event (``extra``
    fields added to it); nothing when the decision keeps the count."""
    if not d.rescale:
        return
    sim.log.emit(
        t,
        "hpa.scale",
        service=service,
        from_replicas=current,
        to_replicas=d.desired,
        reason=d.reason or d.able_to_scale,
        **extra,
    )
    sim.platform.scale(service, d.desired, t, reason=reason)


def pod_infos(w: Workload, resource: str | None) -> list[PodInfo]:
    """The workload's pods as the HPA sees them (``resource`` picks the request reported)."""
    if resource == "cpu":
        request = w.spec.resources.requests.cpu
    elif resource == "memory":
        request = w.spec.resources.requests.memory
    else:
        request = None
    out = []
    for p in w.pods:
        if p.phase == PodPhase.GONE:
            continue
        out.append(
            PodInfo(
                name=p.name,
                phase="Pending" if p.k8s_phase == "Pending" else "Running",
                ready=p.ready,
                deleting=p.phase == PodPhase.TERMINATING,
                start=p.created,
                ready_since=p.created if p.ready_since is None else p.ready_since,
                request=request,
            )
        )
    return out


def _target(t: MetricTarget) -> tuple[Any, float]:
    if t.type == "Utilization":
        assert t.average_utilization is not None
        return "Utilization", float(t.average_utilization)
    value = t.average_value if t.type == "AverageValue" else t.value
    assert value is not None
    return t.type, float(value)


@dataclass
class _HPA:
    service: str
    spec: HPA
    ctl: HPAController
    decisions: list[Decision] = field(default_factory=list)
    desired: int = 0
    ksm_ids: np.ndarray | None = None
    resource: str | None = None  # the resource whose request the pods report (first resource metric)
    # Per metric: (type, resource, target type, target) of a metrics-server one, else None.
    reads: list[tuple[Any, str, Any, float] | None] = field(default_factory=list)
    # The only metric, when it is a metrics-server one: its read and the name a proposal of it
    # gives (see AutoscalingLoop._proposal).
    single: tuple[tuple[Any, str, Any, float], str] | None = None


def _resource_read(m: MetricSpec) -> tuple[Any, str, Any, float] | None:
    """(type, resource, target type, target) of a Resource or ContainerResource metric."""
    res = (
        m.resource
        if m.type == "Resource"
        else m.container_resource
        if m.type == "ContainerResource"
        else None
    )
    if res is None:
        return None
    ttype, target = _target(res.target)
    return m.type, res.name, ttype, target


class AutoscalingLoop:
    """Every HPA of the scenario, and the metrics-server they read."""

    name = "autoscaling"

    def __init__(self) -> None:
        self.hpas: list[_HPA] = []
        self.metrics = MetricsServer()
        self._engine: Any = None
        self._engine_error: str | None = None
        # Per service, made again only when the platform's pods change (its generation moves):
        self._pods: dict[str, tuple[int, str | None, list[PodInfo]]] = {}  # the pods as the HPA sees them
        self._live: dict[str, tuple[int, int]] = {}  # how many pods exist
        self._ksm_ids: np.ndarray | None = None  # every HPA's kube-state-metrics series, in order
        self._ksm_last: tuple[list[float], np.ndarray] = ([], np.zeros(0))  # their last values

    def attach(self, sim: Simulation) -> None:
        """Create one controller per ``kind: hpa`` autoscaler and schedule their syncs."""
        self.sim = sim
        for name, svc in sim.scenario.services.items():
            a = svc.autoscaler
            if isinstance(a, HPA):
                h = _HPA(name, a, HPAController.from_spec(a), desired=sim.platform.workloads[name].desired)
                h.reads = [_resource_read(m) for m in a.metrics]
                h.resource = next((r[1] for r in h.reads if r is not None), None)
                if len(h.reads) == 1 and h.reads[0] is not None:
                    what = h.reads[0]
                    h.single = (what, f"{what[1]} {what[0].lower()} metric")
                labels = {"namespace": "default", "horizontalpodautoscaler": name}
                h.ksm_ids = np.array([sim.store.series(m, labels) for m in _KSM], dtype=np.int64)
                self.hpas.append(h)
        if not self.hpas:
            return
        self.metrics.attach(sim, [h.service for h in self.hpas])
        sim.clock.schedule(SYNC_PERIOD, self._sync, priority=-10)
        sc = sim.scenario
        sim.clock.every(sc.monitoring.scrape_interval, sc.duration, self._record, priority=10)

    # --- metrics ---------------------------------------------------------------------------

    def _promql(self, expr: str, t: float) -> Any:
        if self._engine is None and self._engine_error is None:
            try:
                from devopsim.observe.promql import Engine  # type: ignore[import-not-found, unused-ignore]

                self._engine = Engine(self.sim.store)
            except ImportError:
                self._engine_error = "custom metrics need PromQL (devopsim.observe.promql), not available"
        if self._engine is None:
            raise LookupError(self._engine_error)
        return self._engine.instant(expr, t)

    def _reading(self, h: _HPA, m: MetricSpec, t: float, pods: list[PodInfo]) -> MetricReading:
        if m.type in ("Resource", "ContainerResource"):
            res = m.resource if m.type == "Resource" else m.container_resource
            assert res is not None
            ttype, target = _target(res.target)
            return self._resource_reading(h, (m.type, res.name, ttype, target), pods)
        sel = f'service="{h.service}"'
        try:
            if m.type == "Pods":
                assert m.pods is not None
                ttype, target = _target(m.pods.target)
                name = m.pods.metric.name
                res = self._promql(f"sum by (pod) (rate({name}_total{{{sel}}}[1m]))", t)
                per_pod = {s.labels["pod"]: PodSample(s.value, t, 60.0) for s in res if "pod" in s.labels}
                return MetricReading("Pods", name, ttype, target, samples=per_pod)
            spec = m.object if m.type == "Object" else m.external
            assert spec is not None
            ttype, target = _target(spec.target)
            name = spec.metric.name
            matchers = ", ".join(
                f'{k}="{v}"' for k, v in ((spec.metric.selector or {}).get("matchLabels") or {}).items()
            )
            res = self._promql(f"sum({name}{{{matchers}}})", t)
            if not res:
                raise LookupError(f"no series for {name}")
            return MetricReading(m.type, name, ttype, target, value=float(res[0].value))
        except LookupError as e:
            return MetricReading(m.type, m.type.lower(), "Value", 1.0, error=str(e))

    def _resource_reading(
        self, h: _HPA, what: tuple[Any, str, Any, float], pods: list[PodInfo]
    ) -> MetricReading:
        """A Resource or ContainerResource metric (type, resource, target type, target) from
        metrics-server: one value per pod of ``pods``, in their order."""
        kind, name, ttype, target = what
        return MetricReading(kind, name, ttype, target, samples=self.metrics.aligned(name, h.service, pods))

    # --- the loop -----------------------------------------------------------------------------

    def _pod_infos(self, w: Workload, resource: str | None) -> list[PodInfo]:
        gen = self.sim.platform.generation
        hit = self._pods.get(w.name)
        if hit is not None and hit[0] == gen and hit[1] == resource:
            return hit[2]
        pods = pod_infos(w, resource)
        self._pods[w.name] = (gen, resource, pods)
        return pods

    def _live_count(self, w: Workload) -> int:
        gen = self.sim.platform.generation
        hit = self._live.get(w.name)
        if hit is not None and hit[0] == gen:
            return hit[1]
        n = len(w.live())
        self._live[w.name] = (gen, n)
        return n

    def _proposal(self, h: _HPA, pods: list[PodInfo], current: int, t: float) -> int | None:
        """The proposal of an HPA whose only metric metrics-server serves, where every pod counts
        or is ignored: what ``reconcile`` works out from the reading (``aligned_proposal``), without
        the reading and its samples. None: the general path decides."""
        if h.single is None or not pods:
            return None
        kind, name, ttype, target = h.single[0]
        got = self.metrics.aligned_values(name, h.service, pods)
        if got is None:
            return None
        ctl = h.ctl
        return aligned_proposal(
            kind,
            name,
            ttype,
            target,
            pods,
            *got,
            current,
            ctl.tolerances(),
            t,
            ctl.cpu_initialization_period,
            ctl.initial_readiness_delay,
        )

    def _sync(self, t: float) -> None:
        sim = self.sim
        workloads = sim.platform.workloads
        aligned = self.metrics.aligned
        gen = sim.platform.generation
        cache = self._pods
        for h in self.hpas:
            w = workloads[h.service]
            hit = cache.get(h.service)
            if hit is not None and hit[0] == gen and hit[1] == h.resource:
                pods = hit[2]
            else:
                pods = self._pod_infos(w, h.resource)
            current = w.desired
            ctl = h.ctl
            # One metrics-server metric and pods that all count: its proposal straight from the
            # reading, then the rest of the sync (the same as reconcile gives).
            proposal = self._proposal(h, pods, current, t) if ctl.reads_metrics(current) else None
            if proposal is not None:
                assert h.single is not None
                d = ctl.decide(t, current, proposal, h.single[1])
            else:
                readings = [
                    self._reading(h, m, t, pods)
                    if what is None
                    else MetricReading(what[0], what[1], what[2], what[3], aligned(what[1], h.service, pods))
                    for m, what in zip(h.spec.metrics, h.reads, strict=True)
                ]
                d = ctl.reconcile(t, current, readings, pods, status_replicas=self._live_count(w))
            h.decisions.append(d)
            h.desired = d.desired
            if d.desired != current:
                apply_decision(sim, t, h.service, current, d, "hpa")
        if t + SYNC_PERIOD < sim.scenario.duration:
            sim.clock.schedule(t + SYNC_PERIOD, self._sync, priority=-10)

    def _record(self, t: float) -> None:
        """Every HPA's kube-state-metrics series at ``t``, in one append."""
        if self._ksm_ids is None:
            self._ksm_ids = np.concatenate([h.ksm_ids for h in self.hpas if h.ksm_ids is not None])
        plat = self.sim.platform
        workloads, gen, live = plat.workloads, plat.generation, self._live
        vals: list[float] = []
        for h in self.hpas:
            w = workloads[h.service]
            hit = live.get(h.service)
            n = hit[1] if hit is not None and hit[0] == gen else self._live_count(w)
            vals += [h.spec.min_replicas, h.spec.max_replicas, n, h.desired or w.desired]
        # The same values as the last time: the same array (the store copies what it is given).
        if vals != self._ksm_last[0]:
            self._ksm_last = (vals, np.array(vals, dtype=np.float64))
        self.sim.store.append(t, self._ksm_ids, self._ksm_last[1])

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Acts on no timeline entry."""
        return False

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Record the final HPA series and a per-HPA summary (``autoscalers.<service>``)."""
        if not self.hpas:
            return
        self._record(sim.scenario.duration)
        out = {}
        for h in self.hpas:
            scaled = [d for d in h.decisions if d.rescale]
            out[h.service] = {
                "kind": "hpa",
                "syncs": len(h.decisions),
                "rescales": len(scaled),
                "scale_ups": sum(1 for d in scaled if d.desired > d.current),
                "scale_downs": sum(1 for d in scaled if d.desired < d.current),
                "failed_syncs": sum(1 for d in h.decisions if not d.active),
            }
        summary["autoscalers"] = out
