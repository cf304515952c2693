"""Predictive and learned autoscaling policies: the plug-in point, and a seasonal-naive policy.

A service whose ``autoscaler`` is ``kind: predictive`` (its ``model``) or
``kind: rl`` (its ``policy``, else its ``algorithm``) is scaled by the policy
registered under that name. A policy is any object with
``recommend(now, history) -> int`` (:class:`AutoscalerPolicy`); it is built once
per service by a factory ``factory(spec, service) -> AutoscalerPolicy``
(:data:`PolicyFactory`), found by name:

1. among those given to :func:`register_policy` (the built-in ``seasonal-naive``
   is registered this way), then
2. among the package entry points of the group ``devopsim.autoscalers``
   (``[project.entry-points."devopsim.autoscalers"] my-model = "pkg.mod:factory"``).

A name found nowhere leaves the autoscaler reported "not simulated"
(:mod:`devopsim.scenario.support`). :class:`PolicyLoop` runs every such policy:
every 15 s from t = 15 s it appends what the service's pods used to the
service's :class:`History` (CPU from metrics-server, averaged over its 15 s
resolution as an HPA sees it; replicas wanted; pods ready), asks the policy,
clamps the answer to ``[minReplicas, maxReplicas]`` and scales through
``Platform.scale`` (``reason="predictive"``), logging ``autoscaler.scale``.

**seasonal-naive** forecasts the CPU the service will use as the CPU it used one
``season`` earlier: the seasonal naive method, ``y(T + h) = y(T + h - m)`` for
``h <= m`` (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*,
section 5.2). At ``now`` it provisions for the highest CPU observed in
``(now - season, now - season + horizon]``, so it scales up ``horizon`` seconds
before a load that repeats and down as it ends::

    replicas = ceil(peak_cpu / (cpu_request x targetUtilization))

Before a full season of history exists the window is empty and it falls back to
the naive forecast (the latest CPU observed). What pods used is capped by what
they could serve, so a saturated past under-forecasts the next season.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from devopsim.control.metrics_server import MetricsServer
from devopsim.errors import ScenarioError
from devopsim.scenario.controllers import Learned, Predictive

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.infra import TimelineEntry
    from devopsim.scenario.schema import Service

__all__ = [
    "ENTRY_POINT_GROUP",
    "SYNC_PERIOD",
    "AutoscalerPolicy",
    "History",
    "Observation",
    "PolicyFactory",
    "PolicyLoop",
    "SeasonalNaive",
    "policy_factory",
    "policy_name",
    "register_policy",
    "registered_policies",
]

ENTRY_POINT_GROUP = "devopsim.autoscalers"
SYNC_PERIOD = 15.0  # as the HPA's --horizontal-pod-autoscaler-sync-period


@dataclass(frozen=True)
class Observation:
    """What one sync saw of a service.

    Attributes:
        t: simulated time of the sync.
        cpu: CPU cores its pods used over metrics-server's last 15 s window.
        replicas: replicas the Deployment wanted (``spec.replicas``) before this sync.
        ready: pods Ready.
    """

    t: float
    cpu: float
    replicas: int
    ready: int


@dataclass
class History:
    """A service's observations, oldest first (appended once per sync)."""

    observations: list[Observation] = field(default_factory=list)
    _times: list[float] = field(default_factory=list)

    def append(self, obs: Observation) -> None:
        """Add the newest observation."""
        self.observations.append(obs)
        self._times.append(obs.t)

    def between(self, t0: float, t1: float) -> list[Observation]:
        """Observations with ``t0 < t <= t1``."""
        lo = bisect.bisect_right(self._times, t0)
        hi = bisect.bisect_right(self._times, t1)
        return self.observations[lo:hi]

    def latest(self) -> Observation | None:
        """The newest observation, if any."""
        return self.observations[-1] if self.observations else None


@runtime_checkable
class AutoscalerPolicy(Protocol):
    """A scaling policy: the replicas a service should have now, given what was seen so far."""

    def recommend(self, now: float, history: History) -> int:
        """Replicas wanted at ``now`` (the loop clamps them to min/max replicas)."""
        ...


PolicyFactory = Callable[[Predictive | Learned, "Service"], AutoscalerPolicy]
_REGISTRY: dict[str, PolicyFactory] = {}


def register_policy(name: str, factory: PolicyFactory) -> None:
    """Make ``factory`` the policy for ``model: NAME`` (predictive) or ``policy: NAME`` (rl)."""
    _REGISTRY[name] = factory


def policy_name(spec: Predictive | Learned) -> str:
    """The name a spec asks for: a predictive ``model``, an rl ``policy`` or else its ``algorithm``."""
    if isinstance(spec, Predictive):
        return spec.model
    return spec.policy or spec.algorithm


def registered_policies() -> list[str]:
    """Names with a policy: those registered, and the ``devopsim.autoscalers`` entry points."""
    return sorted({*_REGISTRY, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def policy_factory(name: str) -> PolicyFactory | None:
    """The factory registered under ``name``, or an entry point of ``devopsim.autoscalers``, else None."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            factory: PolicyFactory = ep.load()
            _REGISTRY[name] = factory
            return factory
    return None


@dataclass
class SeasonalNaive:
    """The seasonal naive forecast of CPU, sized by the CPU request and target utilization.

    Args:
        season: seconds of one season (``season``).
        horizon: how far ahead it provisions (``horizon``).
        per_pod: CPU cores one pod should use (``cpu_request x targetUtilization``).
    """

    season: float
    horizon: float
    per_pod: float

    def forecast(self, now: float, history: History) -> float:
        """The highest CPU expected in ``(now, now + horizon]``."""
        past = history.between(now - self.season, now - self.season + self.horizon)
        if past:
            return max(o.cpu for o in past)
        last = history.latest()
        return last.cpu if last is not None else 0.0

    def recommend(self, now: float, history: History) -> int:
        """``ceil(forecast / per_pod)``."""
        return math.ceil(self.forecast(now, history) / self.per_pod - 1e-9)


def _seasonal_naive(spec: Predictive | Learned, service: Service) -> AutoscalerPolicy:
    assert isinstance(spec, Predictive)
    cpu = service.resources.requests.cpu
    assert cpu is not None  # PolicyLoop.attach checks it
    return SeasonalNaive(spec.season, spec.horizon, cpu * spec.target_utilization)


register_policy("seasonal-naive", _seasonal_naive)


@dataclass
class _Scaler:
    service: str
    spec: Predictive | Learned
    policy: AutoscalerPolicy
    history: History = field(default_factory=History)
    scales: int = 0
    trace: list[tuple[float, int]] = field(default_factory=list)


class PolicyLoop:
    """Every predictive or learned autoscaler whose policy is registered."""

    name = "policies"

    def __init__(self) -> None:
        self.scalers: list[_Scaler] = []
        self.metrics = MetricsServer()

    def attach(self, sim: Simulation) -> None:
        """Build each service's policy and schedule the syncs.

        Raises:
            ScenarioError: ``seasonal-naive`` on a service without a CPU request.
        """
        self.sim = sim
        for name, svc in sim.scenario.services.items():
            a = svc.autoscaler
            if not isinstance(a, Predictive | Learned):
                continue
            factory = policy_factory(policy_name(a))
            if factory is None:
                continue
            if factory is _seasonal_naive and not svc.resources.requests.cpu:
                path = ("services", name, "resources", "requests", "cpu")
                raise ScenarioError(
                    [
                        sim.loaded.source.issue(
                            path, "the seasonal-naive autoscaler sizes pods by their CPU request: set one"
                        )
                    ]
                )
            self.scalers.append(_Scaler(name, a, factory(a, svc)))
        if not self.scalers:
            return
        self.metrics.attach(sim)
        sim.clock.schedule(SYNC_PERIOD, self._sync, priority=-10)

    def _sync(self, t: float) -> None:
        plat = self.sim.platform
        cpu = self.metrics.cpu
        for s in self.scalers:
            w = plat.workloads[s.service]
            used = sum(cpu[p.name].value for p in w.pods if p.name in cpu)
            s.history.append(Observation(t, used, w.desired, w.ready_count()))
            want = int(s.policy.recommend(t, s.history))
            want = max(s.spec.min_replicas, min(s.spec.max_replicas, want))
            s.trace.append((t, want))
            if want != w.desired:
                s.scales += 1
                self.sim.log.emit(
                    t,
                    "autoscaler.scale",
                    service=s.service,
                    autoscaler=s.spec.kind,
                    policy=policy_name(s.spec),
                    from_replicas=w.desired,
                    to_replicas=want,
                )
                plat.scale(s.service, want, t, reason=s.spec.kind)
        if t + SYNC_PERIOD < self.sim.scenario.duration:
            self.sim.clock.schedule(t + SYNC_PERIOD, self._sync, priority=-10)

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Acts on no timeline entry."""
        return False

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Add ``autoscalers.<service>``: kind, policy, syncs, rescales and the replicas wanted per sync."""
        if not self.scalers:
            return
        out = summary.setdefault("autoscalers", {})
        for s in self.scalers:
            out[s.service] = {
                "kind": s.spec.kind,
                "policy": policy_name(s.spec),
                "syncs": len(s.trace),
                "rescales": s.scales,
                "desired": [[t, n] for t, n in s.trace],
            }
