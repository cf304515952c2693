"""The platform as plain objects: workloads (Deployments) and their pods.

The model owns the pod life cycle the foundation needs (created, starting,
ready, terminating, gone) and drives the data plane through its small
interface. Control loops of later capabilities (autoscalers, rollouts, chaos)
act here, never inside a data plane.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Protocol

from devopsim.engine.clock import Clock
from devopsim.model.program import Program
from devopsim.results.events import EventLog
from devopsim.scenario.schema import Scenario, Service

__all__ = ["DataPlane", "Platform", "Pod", "PodPhase", "Workload"]

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for generated names


def _token(text: str, n: int) -> str:
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")
    out = []
    for _ in range(n):
        digest, k = divmod(digest, len(_ALPHABET))
        out.append(_ALPHABET[k])
    return "".join(out)


class DataPlane(Protocol):
    """What the model needs from a data plane."""

    def add_replica(self, service: int, version: int, now: float, weight: float = 1.0) -> int: ...
    def set_ready(self, slot: int, ready: bool) -> None: ...
    def outstanding(self, slot: int) -> int: ...
    def kill(self, slot: int, now: float) -> None: ...
    def release(self, slot: int, now: float) -> None: ...


class PodPhase(StrEnum):
    """Where a pod is in its life."""

    STARTING = "Starting"
    RUNNING = "Running"
    TERMINATING = "Terminating"
    GONE = "Gone"


@dataclass
class Pod:
    """One replica of a workload, as Kubernetes would show it."""

    name: str
    service: str
    version: str
    slot: int
    created: float
    phase: PodPhase = PodPhase.STARTING
    ready: bool = False
    role: str = "stable"
    node: str = "node-1"
    zone: str = "zone-a"
    region: str = "local"
    cloud: str = "local"
    deleted: float | None = None
    ready_since: float | None = None  # the Ready condition's last transition time
    restarts: int = 0

    def labels(self) -> dict[str, str]:
        """The labels every series of this pod carries."""
        return {
            "namespace": "default",
            "service": self.service,
            "version": self.version,
            "role": self.role,
            "pod": self.name,
            "node": self.node,
            "zone": self.zone,
            "region": self.region,
            "cloud": self.cloud,
        }


@dataclass
class Workload:
    """A Deployment: desired replicas of one version of a service, and its pods."""

    name: str
    index: int
    spec: Service
    version: str
    version_index: int
    desired: int
    pods: list[Pod] = field(default_factory=list)
    history: list[tuple[float, int, int]] = field(default_factory=list)  # (t, ready, existing)
    rolling: bool = False  # a rollout controller sizes the ReplicaSets

    def live(self) -> list[Pod]:
        """Pods that exist (not yet gone)."""
        return [p for p in self.pods if p.phase != PodPhase.GONE]

    def ready_count(self) -> int:
        """Pods ready to serve."""
        return sum(1 for p in self.pods if p.ready)


class Platform:
    """All workloads, their pods, and the events of their lives.

    Args:
        scenario: the validated scenario.
        program: the compiled platform (indices of services and versions).
        plane: the data plane that serves the pods.
        clock: the control clock, to schedule start-ups and terminations.
        log: where life-cycle events go.
    """

    def __init__(
        self, scenario: Scenario, program: Program, plane: DataPlane, clock: Clock, log: EventLog
    ) -> None:
        self.scenario = scenario
        self.program = program
        self.plane = plane
        self.clock = clock
        self.log = log
        self._counter = 0
        # Bumped whenever a pod is created, changes readiness or goes: readers (the scraper,
        # the data plane's caches) rebuild what they derived from the pods only when it moves.
        self.generation = 0
        self._terminating: dict[str, Pod] = {}
        self.workloads: dict[str, Workload] = {}
        for i, name in enumerate(program.services):
            spec = scenario.services[name]
            self.workloads[name] = Workload(
                name=name,
                index=i,
                spec=spec,
                version=spec.version,
                version_index=program.ver_index[(name, spec.version)],
                desired=spec.replicas,
            )

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Bring up the initial replicas: they are running and ready at time 0."""
        for w in self.workloads.values():
            for _ in range(w.desired):
                pod = self._create(w, 0.0)
                self._become_ready(pod, 0.0)
            self._record(w, 0.0)

    def _create(self, w: Workload, now: float, version: str | None = None) -> Pod:
        version = w.version if version is None else version
        vi = self.program.ver_index[(w.name, version)]
        self._counter += 1
        rs = _token(f"{w.name}/{version}", 9)
        name = f"{w.name}-{rs}-{_token(f'{w.name}/{self._counter}', 5)}"
        weights = w.spec.weights
        k = len(w.live())
        weight = weights[k] if weights is not None and k < len(weights) else 1.0
        slot = self.plane.add_replica(w.index, vi, now, weight)
        pod = Pod(name=name, service=w.name, version=version, slot=slot, created=now)
        w.pods.append(pod)
        self.generation += 1
        self.log.emit(now, "pod.created", pod=name, service=w.name, version=version)
        return pod

    def _become_ready(self, pod: Pod, now: float) -> None:
        if pod.phase != PodPhase.STARTING:
            return
        pod.phase = PodPhase.RUNNING
        pod.ready = True
        pod.ready_since = now
        self.generation += 1
        self.plane.set_ready(pod.slot, True)
        self.log.emit(now, "pod.ready", pod=pod.name, service=pod.service)

    def scale(self, service: str, replicas: int, now: float, reason: str = "manual") -> None:
        """Set a workload's desired replicas: new pods start, surplus pods terminate gracefully.

        While a rollout controller owns the workload (``w.rolling``), only the desired count
        changes; the controller sizes the ReplicaSets at its next sync.
        """
        w = self.workloads[service]
        old = w.desired
        w.desired = replicas
        self.log.emit(now, "scale", service=service, from_replicas=old, to_replicas=replicas, reason=reason)
        if w.rolling:
            return
        self.scale_replicaset(service, w.version, replicas, now)

    def replicaset(self, service: str, version: str) -> list[Pod]:
        """The pods of one version (a ReplicaSet) that are starting or running."""
        return [
            p
            for p in self.workloads[service].pods
            if p.version == version and p.phase in (PodPhase.STARTING, PodPhase.RUNNING)
        ]

    def scale_replicaset(self, service: str, version: str, replicas: int, now: float) -> None:
        """Bring one version's pods to ``replicas``: create pods, or terminate the surplus."""
        w = self.workloads[service]
        active = self.replicaset(service, version)
        if len(active) < replicas:
            for _ in range(replicas - len(active)):
                pod = self._create(w, now, version)
                startup = w.spec.startup
                if startup <= 0:
                    self._become_ready(pod, now)
                else:
                    self.clock.schedule(now + startup, partial(self._ready_then_record, pod))
        elif len(active) > replicas:
            # Like a ReplicaSet: not-ready pods go first, then the newest.
            victims = sorted(active, key=lambda p: (p.ready, -p.created))[: len(active) - replicas]
            for pod in victims:
                self._terminate(pod, now)
        self._record(w, now)

    def set_template(self, service: str, version: str) -> None:
        """Point the workload's pod template at ``version`` (a registered version of the program)."""
        w = self.workloads[service]
        w.version = version
        w.version_index = self.program.ver_index[(service, version)]

    @staticmethod
    def available(pod: Pod, now: float, min_ready_seconds: float) -> bool:
        """Ready for at least ``minReadySeconds`` (the Deployment's notion of available)."""
        return pod.ready and pod.ready_since is not None and now - pod.ready_since >= min_ready_seconds

    def _ready_then_record(self, pod: Pod, now: float) -> None:
        self._become_ready(pod, now)
        self._record(self.workloads[pod.service], now)

    def _terminate(self, pod: Pod, now: float) -> None:
        pod.phase = PodPhase.TERMINATING
        if pod.ready:
            pod.ready_since = now
        pod.ready = False
        pod.deleted = now
        self.generation += 1
        self._terminating[pod.name] = pod
        self.plane.set_ready(pod.slot, False)
        self.log.emit(now, "pod.terminating", pod=pod.name, service=pod.service)
        grace = self.workloads[pod.service].spec.termination_grace_period_seconds
        self.clock.schedule(now + grace, partial(self._grace_over, pod))

    def _grace_over(self, pod: Pod, now: float) -> None:
        if pod.phase != PodPhase.TERMINATING:
            return
        if self.plane.outstanding(pod.slot) > 0:
            self.plane.kill(pod.slot, now)
            self.log.emit(now, "pod.killed", pod=pod.name, service=pod.service, reason="grace period over")
        self._gone(pod, now)

    def _gone(self, pod: Pod, now: float) -> None:
        pod.phase = PodPhase.GONE
        self.generation += 1
        self._terminating.pop(pod.name, None)
        self.plane.release(pod.slot, now)
        self.log.emit(now, "pod.deleted", pod=pod.name, service=pod.service)
        self._record(self.workloads[pod.service], now)

    def reap(self, now: float) -> None:
        """Remove terminating pods that have finished their work."""
        if not self._terminating:
            return
        for pod in list(self._terminating.values()):
            if pod.phase == PodPhase.TERMINATING and self.plane.outstanding(pod.slot) == 0:
                self._gone(pod, now)

    def _record(self, w: Workload, now: float) -> None:
        entry = (now, w.ready_count(), len(w.live()))
        if w.history and w.history[-1][0] == now:
            w.history[-1] = entry
        else:
            w.history.append(entry)

    def pods(self) -> list[Pod]:
        """Every pod that exists now."""
        return [p for w in self.workloads.values() for p in w.live()]
