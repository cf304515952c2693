"""KEDA's Kafka scaler as a control loop of a run (reference/SEMANTICS.md section 4.2).

A service whose ``autoscaler`` is ``kind: keda-kafka`` gets a ScaledObject with one
kafka trigger, as KEDA builds it:

* **The HPA KEDA creates.** ``minReplicas = max(minReplicaCount, 1)``,
  ``maxReplicas = maxReplicaCount``, ``behavior`` from
  ``advanced.horizontalPodAutoscalerConfig`` (here ``behavior``), one External metric
  of target type ``AverageValue`` = ``lagThreshold``. It is the same controller as a
  ``kind: hpa`` autoscaler (:class:`~devopsim.control.hpa.HPAController`: tolerance,
  stabilisation, scale-up limits), synced every 15 s. KEDA's metrics adapter asks the
  scaler on every HPA request (``useCachedMetrics: false``, the default), so each sync
  reads the lag as it is then: ``desired = ceil(totalLag / lagThreshold)`` outside the
  10 % tolerance, where ``totalLag`` is capped at ``partitions x lagThreshold`` unless
  ``allowIdleConsumers`` (so never more replicas than partitions).
* **KEDA's own loop**, every ``pollingInterval`` (30 s) from t = 0: the trigger is
  active while the activation lag exceeds ``activationLagThreshold``. At 0 replicas an
  active trigger scales to ``max(minReplicaCount, 1)``; with ``minReplicaCount: 0`` an
  inactive trigger scales to 0 once ``cooldownPeriod`` (300 s) has passed since it was
  last active (strictly after, as KEDA compares times). At 0 replicas the HPA is idle.

Lag per partition is ``latestOffset - committedOffset`` of the consumer group, read
from the stateful loop's consumer-group model (committed = processed by the group's
members in the data plane), in whole messages. The group is assumed to have committed
offsets when the run starts (it existed before), so ``offsetResetPolicy`` and
``scaleToZeroOnInvalidOffset`` never come into play.

Series, at every scrape: ``keda_scaler_metrics_value`` and ``keda_scaler_active``
(labels ``namespace``, ``scaledObject``, ``scaler``, ``metric``), and
kube-state-metrics' HPA series for the HPA ``keda-hpa-<service>``. Events: ``keda.scale``
(KEDA's 0 <-> 1) and ``hpa.scale`` (the HPA it created). Summary:
``autoscalers.<service>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from devopsim.control.autoscaling import apply_decision, pod_infos
from devopsim.control.hpa import SYNC_PERIOD, Decision, HPAController, MetricReading, resolve_behavior
from devopsim.scenario.controllers import KedaKafka
from devopsim.stateful.kafka import KedaLag, keda_total_lag

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.infra import TimelineEntry
    from devopsim.stateful.loop import StatefulLoop

__all__ = ["KedaLoop", "ScaledObject"]

_KSM = (
    "kube_horizontalpodautoscaler_spec_min_replicas",
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas",
)


def _whole(lags: np.ndarray) -> np.ndarray:
    """Offsets are whole messages: round the partitions' fluid lags keeping their total.

    Each partition gets the floor of its lag, and the ones with the largest remainders one
    more, until the total is the rounded total (largest-remainder rounding).
    """
    base: np.ndarray = np.floor(lags)
    extra = round(float(lags.sum()) - float(base.sum()))
    if extra > 0:
        base[np.argsort(-(lags - base), kind="stable")[:extra]] += 1.0
    return base


@dataclass
class ScaledObject:
    """One service's ScaledObject: its spec, the HPA it created and what it saw.

    Attributes:
        service: the scaled service.
        consumer: the service whose consumer group's lag drives it.
        spec: the scenario's ``autoscaler`` section.
        hpa: the HPA's reconcile logic.
        last_active: the last poll at which the trigger was active (-inf: never).
        prev_committed: each partition's committed offset at the last read (excludePersistentLag).
    """

    service: str
    consumer: str
    spec: KedaKafka
    hpa: HPAController
    last_active: float = -math.inf
    prev_committed: np.ndarray | None = None
    decisions: list[Decision] = field(default_factory=list)
    activations: int = 0
    deactivations: int = 0
    lag: KedaLag = field(default_factory=lambda: KedaLag(0.0, 0.0))
    active: bool = False
    desired: int = 0
    ids: np.ndarray | None = None


class KedaLoop:
    """Every ``keda-kafka`` autoscaler of the scenario."""

    name = "keda"

    def __init__(self) -> None:
        self.objects: list[ScaledObject] = []
        self._stateful: StatefulLoop | None = None

    def attach(self, sim: Simulation) -> None:
        """Create one ScaledObject per ``keda-kafka`` autoscaler; schedule the polls and the syncs."""
        from devopsim.stateful.loop import StatefulLoop

        self.sim = sim
        self._stateful = next((lp for lp in sim.loops if isinstance(lp, StatefulLoop)), None)
        for name, svc in sim.scenario.services.items():
            a = svc.autoscaler
            if not isinstance(a, KedaKafka) or self._stateful is None:
                continue
            consumer = self._consumer(sim, name, a)
            if consumer is None:
                sim.log.emit(
                    0.0, "not_simulated", path=f"services.{name}.autoscaler", what="no consumer group"
                )
                continue
            hpa = HPAController(max(a.min_replicas, 1), a.max_replicas, resolve_behavior(a.behavior))
            so = ScaledObject(name, consumer, a, hpa, desired=sim.platform.workloads[name].desired)
            labels = {"namespace": "default", "horizontalpodautoscaler": f"keda-hpa-{name}"}
            so.ids = np.array([sim.store.series(m, labels) for m in _KSM], dtype=np.int64)
            self.objects.append(so)
            poll = partial(self._poll, so)
            sim.clock.every(float(a.polling_interval), sim.scenario.duration, poll, priority=-10)
        if not self.objects:
            return
        sim.clock.schedule(SYNC_PERIOD, self._sync, priority=-10)
        sc = sim.scenario
        sim.clock.every(sc.monitoring.scrape_interval, sc.duration, self._record, priority=10)

    @staticmethod
    def _consumer(sim: Simulation, service: str, spec: KedaKafka) -> str | None:
        """The service whose consumer group the trigger watches.

        The trigger's ``topic`` and ``consumerGroup`` name it; unset, they default to the
        scaled service's own ``consume`` section.
        """
        sc = sim.scenario
        own = sc.services[service].consume
        topic = spec.topic or (own.topic if own else None)
        group = spec.consumer_group or (own.group if own else None)
        if topic is None or group is None:
            return None
        if own is not None and own.topic == topic and own.group == group:
            return service
        for name, svc in sc.services.items():
            c = svc.consume
            if c is not None and c.topic == topic and c.group == group:
                return name
        return None

    # --- the scaler -------------------------------------------------------------------------

    def _read(self, so: ScaledObject, t: float) -> KedaLag:
        """What the scaler's GetMetricsAndActivity returns now."""
        assert self._stateful is not None
        lags = self._stateful.consumer_lag(self.sim, so.consumer, t)
        committed = self._stateful.consumer_committed(so.consumer)
        assert lags is not None and committed is not None
        lags = _whole(np.maximum(lags, 0.0))
        persistent = None
        if so.spec.exclude_persistent_lag and so.prev_committed is not None:
            persistent = (np.abs(committed - so.prev_committed) < 0.5) & (lags > 0)
        so.prev_committed = committed
        s = so.spec
        so.lag = keda_total_lag(
            lags,
            float(s.lag_threshold),
            allow_idle_consumers=s.allow_idle_consumers,
            limit_to_partitions_with_lag=s.limit_to_partitions_with_lag,
            persistent=persistent,
        )
        if s.ensure_even_distribution_of_partitions and not s.allow_idle_consumers:
            n = lags.size
            want = math.ceil(so.lag.scaling / s.lag_threshold)
            factor = next((f for f in range(max(want, 1), n + 1) if n % f == 0), want)
            so.lag = KedaLag(float(factor * s.lag_threshold), so.lag.activation)
        return so.lag

    def _poll(self, so: ScaledObject, t: float) -> None:
        """KEDA's polling loop: activation (0 -> 1) and, after the cooldown, deactivation (-> 0)."""
        sim = self.sim
        lag = self._read(so, t)
        w = sim.platform.workloads[so.service]
        current = w.desired
        s = so.spec
        so.active = lag.activation > s.activation_lag_threshold
        if so.active:
            so.last_active = t
            if current == 0:
                to = max(s.min_replicas, 1)
                so.activations += 1
                sim.log.emit(
                    t, "keda.scale", service=so.service, from_replicas=0, to_replicas=to, reason="active"
                )
                sim.platform.scale(so.service, to, t, reason="keda")
        elif s.min_replicas == 0 and current > 0 and so.last_active + s.cooldown_period < t:
            so.deactivations += 1
            sim.log.emit(
                t, "keda.scale", service=so.service, from_replicas=current, to_replicas=0, reason="cooldown"
            )
            sim.platform.scale(so.service, 0, t, reason="keda")

    def _sync(self, t: float) -> None:
        """The HPA KEDA created, one sync: its External metric is the scaler's lag now."""
        sim = self.sim
        for so in self.objects:
            w = sim.platform.workloads[so.service]
            current = w.desired
            if current == 0:
                continue  # scaling is KEDA's at zero (the HPA reports ScalingDisabled)
            lag = self._read(so, t)
            reading = MetricReading(
                "External",
                f"s0-kafka-{so.spec.topic or so.consumer}",
                "AverageValue",
                float(so.spec.lag_threshold),
                value=lag.scaling,
            )
            d = so.hpa.reconcile(t, current, [reading], pod_infos(w, None), status_replicas=len(w.live()))
            so.decisions.append(d)
            so.desired = d.desired
            apply_decision(sim, t, so.service, current, d, "keda-hpa", lag=lag.scaling)
        if t + SYNC_PERIOD < sim.scenario.duration:
            sim.clock.schedule(t + SYNC_PERIOD, self._sync, priority=-10)

    def _record(self, t: float) -> None:
        sim = self.sim
        for so in self.objects:
            w = sim.platform.workloads[so.service]
            assert so.ids is not None
            vals = [so.hpa.min_replicas, so.spec.max_replicas, len(w.live()), so.desired or w.desired]
            sim.store.append(t, so.ids, np.array(vals, dtype=np.float64))
            lab = {
                "namespace": "default",
                "scaledObject": so.service,
                "scaler": "kafkaScaler",
                "metric": f"s0-kafka-{so.spec.topic or so.consumer}",
            }
            ids = np.array(
                [
                    sim.store.series("keda_scaler_metrics_value", lab),
                    sim.store.series("keda_scaler_active", lab),
                ],
                dtype=np.int64,
            )
            sim.store.append(t, ids, np.array([so.lag.scaling, float(so.active)], dtype=np.float64))

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Acts on no timeline entry."""
        return False

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """A summary per ScaledObject under ``autoscalers.<service>``."""
        if not self.objects:
            return
        self._record(sim.scenario.duration)
        out = summary.setdefault("autoscalers", {})
        for so in self.objects:
            scaled = [d for d in so.decisions if d.rescale]
            out[so.service] = {
                "kind": "keda-kafka",
                "syncs": len(so.decisions),
                "rescales": len(scaled),
                "scale_ups": sum(1 for d in scaled if d.desired > d.current),
                "scale_downs": sum(1 for d in scaled if d.desired < d.current),
                "activations": so.activations,
                "deactivations": so.deactivations,
                "last_lag": so.lag.scaling,
            }
