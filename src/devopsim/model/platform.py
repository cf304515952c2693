"""The platform as plain objects: workloads (Deployments), their pods, and the nodes they run on.

The model owns the pod life cycle and drives the data plane through its small
interface. Control loops (autoscalers, rollouts, chaos, the cluster autoscaler)
act here, never inside a data plane.

A pod's life (docs/control.md, "Pods and probes" and "Nodes and scheduling"):

* **Pending** until the scheduler (:mod:`devopsim.control.scheduler`) binds it to
  a node with room for its requests (``pod.pending`` with the scheduler's
  ``FailedScheduling`` message while nothing fits; ``pod.scheduled`` when it is
  bound after waiting). Pending pods are retried whenever room appears.
* **Starting**: its container starts when it is bound; the process is up
  ``startup`` seconds later; probes (:mod:`devopsim.control.probes`) decide when
  it turns **Ready** and joins the load-balancing set, or kill it.
* A container that exits (crash on start, a failed startup or liveness probe,
  an OOM kill) is restarted after the CrashLoopBackOff delay: 10 s, doubling,
  capped at 300 s, reset once a container ran 10 minutes.
* Memory (:meth:`Platform.memory`) is ``base + MEMORY_PER_REQUEST x requests in
  service + leak x uptime``; over the memory limit the container is OOMKilled.
* **Terminating** for up to ``terminationGracePeriodSeconds``, then gone.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Protocol

from devopsim.control.probes import plan
from devopsim.control.replicaset import deletion_order
from devopsim.control.scheduler import place
from devopsim.engine.clock import Clock
from devopsim.errors import ChaosError
from devopsim.model.nodes import Cluster, Node
from devopsim.model.program import Program
from devopsim.results.events import EventLog
from devopsim.scenario.schema import Scenario, Service

__all__ = [
    "BACKOFF_CAP",
    "BACKOFF_INITIAL",
    "BACKOFF_RESET",
    "DEFAULT_BASE_MEMORY",
    "DEFAULT_TOLERATION_SECONDS",
    "EVICTION_DELAY",
    "MEMORY_PER_REQUEST",
    "NODE_MONITOR_GRACE_PERIOD",
    "DataPlane",
    "Platform",
    "Pod",
    "PodPhase",
    "VersionBehaviour",
    "Workload",
    "base_memory",
]

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for generated names

MEMORY_PER_REQUEST = 256 * 1024  # bytes a request in service holds (working-set model)
DEFAULT_BASE_MEMORY = 64 * 1024**2  # working set of an idle pod with no memory request
BACKOFF_INITIAL = 10.0  # kubelet CrashLoopBackOff: first delay
BACKOFF_CAP = 300.0  # ... doubling, capped at five minutes
BACKOFF_RESET = 600.0  # ... reset once a container ran 10 minutes
# Pods on a node that stops answering are replaced after the node controller marks it
# NotReady (kube-controller-manager --node-monitor-grace-period: 50 s since Kubernetes 1.32,
# kubernetes/kubernetes#126287; 40 s before) and the default NoExecute toleration for
# node.kubernetes.io/unreachable expires (tolerationSeconds 300, DefaultTolerationSeconds).
# Change it per call with the fail_* methods' eviction_delay.
NODE_MONITOR_GRACE_PERIOD = 50.0
DEFAULT_TOLERATION_SECONDS = 300.0
EVICTION_DELAY = NODE_MONITOR_GRACE_PERIOD + DEFAULT_TOLERATION_SECONDS


def _token(text: str, n: int) -> str:
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")
    out = []
    for _ in range(n):
        digest, k = divmod(digest, len(_ALPHABET))
        out.append(_ALPHABET[k])
    return "".join(out)


def base_memory(spec: Service) -> float:
    """Working set of an idle pod: 60 % of its memory request, else 64 MiB."""
    req = spec.resources.requests.memory
    return 0.6 * req if req else float(DEFAULT_BASE_MEMORY)


class DataPlane(Protocol):
    """What the model needs from a data plane."""

    def add_replica(self, service: int, version: int, now: float, weight: float = 1.0) -> int: ...
    def set_ready(self, slot: int, ready: bool) -> None: ...
    def outstanding(self, slot: int) -> int: ...
    def kill(self, slot: int, now: float) -> None: ...
    def release(self, slot: int, now: float) -> None: ...


class PodPhase(StrEnum):
    """Where a pod is in its life (``Starting`` covers Pending and never-yet-Ready pods)."""

    STARTING = "Starting"
    RUNNING = "Running"
    TERMINATING = "Terminating"
    GONE = "Gone"


STATES = ("Pending", "ContainerCreating", "Ready", "NotReady", "CrashLoopBackOff", "Terminating", "Unknown")


@dataclass
class Pod:
    """One replica of a workload, as Kubernetes would show it.

    ``node``, ``zone``, ``region`` and ``cloud`` are empty while the pod is
    Pending. ``state`` is the finer status :data:`STATES` counts: Pending
    (unscheduled), ContainerCreating (container starting, never Ready since),
    Ready, NotReady (running, a probe failing), CrashLoopBackOff (waiting to
    restart), Terminating, Unknown (its node failed).
    """

    name: str
    service: str
    version: str
    slot: int
    created: float
    phase: PodPhase = PodPhase.STARTING
    ready: bool = False
    role: str = "stable"
    node: str = ""
    zone: str = ""
    region: str = ""
    cloud: str = ""
    deleted: float | None = None
    ready_since: float | None = None  # the Ready condition's last transition time
    restarts: int = 0
    state: str = "Pending"
    cpu_request: float = 0.0
    mem_request: float = 0.0
    scheduled: float | None = None
    container_started: float | None = None
    steady: bool = False  # its container passed start-up and initial readiness: probed every period
    epoch: int = 0  # bumped by every container start and stop: stale callbacks check it
    backoff: float = 0.0
    oom_kills: int = 0
    deletion_cost: int = 0  # the controller.kubernetes.io/pod-deletion-cost annotation
    uid: str = ""  # metadata.uid (a hash of the name: deterministic, arbitrary among equals)

    def __post_init__(self) -> None:
        if not self.uid:
            self.uid = _token(f"uid/{self.name}", 12)

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

    @property
    def k8s_phase(self) -> str:
        """The pod phase kube-state-metrics reports: Pending (not bound to a node), Running or Unknown.

        A restarting (CrashLoopBackOff) pod stays Running, as in Kubernetes.
        """
        if self.state == "Unknown":
            return "Unknown"
        return "Pending" if self.scheduled is None else "Running"


@dataclass
class VersionBehaviour:
    """How a version of a service misbehaves (set by timeline deploys' ``changes``)."""

    memory_leak: float = 0.0  # bytes per second of container uptime
    crash_on_start: bool = False


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
    """All workloads, their pods and nodes, and the events of their lives.

    Args:
        scenario: the validated scenario.
        program: the compiled platform (indices of services and versions).
        plane: the data plane that serves the pods.
        clock: the control clock, to schedule start-ups and terminations.
        log: where life-cycle events go.
        source: the scenario's file name, for errors about its node pools.
    """

    def __init__(
        self,
        scenario: Scenario,
        program: Program,
        plane: DataPlane,
        clock: Clock,
        log: EventLog,
        source: str = "<scenario>",
    ) -> None:
        self.scenario = scenario
        self.program = program
        self.plane = plane
        self.clock = clock
        self.log = log
        self.cluster = Cluster(scenario, source)
        # Datastores' synthetic services run off the node pools (managed, or on dedicated
        # nodes the stateful tier models): their pods bind to one unlimited virtual node.
        stores = program.datastores
        self.off_pool: set[str] = set(scenario.datastores)
        if stores is not None:
            self.off_pool |= {v.split(".", 1)[0] for v in stores.alias.values()}
        self._managed = Node("datastores", "", "", "", "", math.inf, math.inf, max_pods=2**62)
        self._counter = 0
        # Bumped whenever a pod is created, is bound, changes readiness or goes: readers (the
        # scraper, the data plane's caches) rebuild what they derived from the pods only when it moves.
        self.generation = 0
        self._terminating: dict[str, Pod] = {}
        self._stopping: dict[str, tuple[Pod, str]] = {}  # containers SIGTERMed by a probe kill
        # Called with (pod, now) as a pod goes, before its data-plane slot is released (and
        # may be given to another replica): last chance to read its per-replica counters.
        self.on_gone: list[Callable[[Pod, float], None]] = []
        self._pending: dict[str, Pod] = {}
        self.behaviour: dict[tuple[str, str], VersionBehaviour] = {}
        self.phase_counts: dict[str, int] = dict.fromkeys(STATES, 0)
        self.phase_history: list[tuple[float, tuple[int, ...]]] = []
        self.counts: dict[str, int] = {
            "created": 0,
            "restarts": 0,
            "oom_kills": 0,
            "crash_loop_backoffs": 0,
            "liveness_kills": 0,
            "startup_probe_kills": 0,
            "crashes": 0,
            "readiness_failures": 0,
            "pending": 0,
            "evicted": 0,
            "lost": 0,
        }
        self.pending_waits: list[float] = []
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

    # --- state bookkeeping --------------------------------------------------------------

    def _set_state(self, pod: Pod, state: str, now: float) -> None:
        old = pod.state
        if old == state:
            return
        if old in self.phase_counts and old != "Gone":
            self.phase_counts[old] -= 1
        pod.state = state
        if state != "Gone":
            self.phase_counts[state] += 1
        entry = (now, tuple(self.phase_counts[s] for s in STATES))
        if self.phase_history and self.phase_history[-1][0] == now:
            self.phase_history[-1] = entry
        else:
            self.phase_history.append(entry)

    def set_version_behaviour(
        self, service: str, version: str, memory_leak: float = 0.0, crash_on_start: bool = False
    ) -> None:
        """Say how a version misbehaves: a memory leak (bytes/s of uptime) or a crash on start.

        Containers started from then on follow it (a timeline deploy sets it before its
        rollout creates pods).
        """
        self.behaviour[(service, version)] = VersionBehaviour(memory_leak, crash_on_start)

    def behaviour_of(self, pod: Pod) -> VersionBehaviour:
        """How the pod's version behaves (no leak, no crash unless a deploy said so)."""
        return self.behaviour.get((pod.service, pod.version)) or _NO_MISBEHAVIOUR

    def memory(self, pod: Pod, now: float, in_service: float) -> float:
        """A pod's working set (bytes): ``base + MEMORY_PER_REQUEST x in_service + leak x uptime``."""
        spec = self.workloads[pod.service].spec
        up = 0.0 if pod.container_started is None else max(0.0, now - pod.container_started)
        return base_memory(spec) + MEMORY_PER_REQUEST * in_service + self.behaviour_of(pod).memory_leak * up

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Bring up the initial replicas: those that fit on a node are running and ready at time 0."""
        for w in self.workloads.values():
            for _ in range(w.desired):
                pod = self._create(w, 0.0)
                self._admit(pod, 0.0, initial=True)
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
        res = w.spec.resources
        cpu = res.requests.cpu if res.requests.cpu is not None else (res.limits.cpu or 0.0)
        mem = res.requests.memory if res.requests.memory is not None else (res.limits.memory or 0.0)
        pod = Pod(
            name=name,
            service=w.name,
            version=version,
            slot=slot,
            created=now,
            state="",
            cpu_request=cpu,
            mem_request=mem,
        )
        w.pods.append(pod)
        self.generation += 1
        self.counts["created"] += 1
        self.log.emit(now, "pod.created", pod=name, service=w.name, version=version)
        return pod

    def _admit(self, pod: Pod, now: float, initial: bool = False) -> None:
        """Schedule a new pod: bind it and start its container, or leave it Pending."""
        cl = self.cluster
        if cl.implicit:
            node: Node | None = next(iter(cl.nodes.values()))
            why = ""
        elif pod.service in self.off_pool:
            node = self._managed
            why = ""
        else:
            spec = self.workloads[pod.service].spec
            node, why = place(cl, pod.service, pod.cpu_request, pod.mem_request, spec.placement)
        if node is None:
            self._pending[pod.name] = pod
            self.counts["pending"] += 1
            self._set_state(pod, "Pending", now)
            self.log.emit(
                now, "pod.pending", pod=pod.name, service=pod.service, reason="FailedScheduling", message=why
            )
            return
        self._bind(pod, node, now)
        self._start_container(pod, now, initial=initial)

    def _bind(self, pod: Pod, node: Node, now: float) -> None:
        node.bind(pod, pod.cpu_request, pod.mem_request)
        pod.node, pod.zone, pod.region, pod.cloud = node.name, node.zone, node.region, node.cloud
        pod.scheduled = now
        self.generation += 1
        if self._pending.pop(pod.name, None) is not None:
            self.pending_waits.append(now - pod.created)
            self.log.emit(
                now,
                "pod.scheduled",
                pod=pod.name,
                service=pod.service,
                node=node.name,
                waited_s=now - pod.created,
            )

    def retry_pending(self, now: float) -> None:
        """Try to schedule every Pending pod again (room appeared: a node, or a pod went)."""
        if not self._pending or self.cluster.implicit:
            return
        failed: set[tuple[str, float, float]] = set()
        for pod in list(self._pending.values()):
            key = (pod.service, pod.cpu_request, pod.mem_request)
            if key in failed:
                continue
            spec = self.workloads[pod.service].spec
            node, _ = place(self.cluster, pod.service, pod.cpu_request, pod.mem_request, spec.placement)
            if node is None:
                failed.add(key)
                continue
            self._bind(pod, node, now)
            self._start_container(pod, now)

    def pending_pods(self) -> list[Pod]:
        """Pods waiting for a node, oldest first."""
        return list(self._pending.values())

    # --- containers -------------------------------------------------------------------

    def _start_container(self, pod: Pod, now: float, initial: bool = False) -> None:
        pod.epoch += 1
        e = pod.epoch
        pod.container_started = now
        pod.steady = False
        w = self.workloads[pod.service]
        beh = self.behaviour_of(pod)
        if initial:
            self._become_ready(pod, now)
            pod.steady = True
            exit_at: float | None = None
        else:
            self._set_state(pod, "ContainerCreating" if pod.phase == PodPhase.STARTING else "NotReady", now)
            p = plan(w.spec, now, beh.crash_on_start)
            exit_at = p.exit
            if p.ready is not None:
                if p.ready <= now:
                    self._ready_then_record(pod, e, now)
                else:
                    self.clock.schedule(p.ready, partial(self._ready_then_record, pod, e))
            if p.exit is not None:
                self.clock.schedule(p.exit, partial(self._exit_event, pod, e, p.reason))
        limit = w.spec.resources.limits.memory
        if beh.memory_leak > 0 and limit is not None:
            t_oom = now + max(0.0, limit - base_memory(w.spec)) / beh.memory_leak
            if exit_at is None or t_oom < exit_at:
                self.clock.schedule(t_oom, partial(self._exit_event, pod, e, "OOMKilled"))

    def _exit_event(self, pod: Pod, epoch: int, reason: str, now: float) -> None:
        if pod.epoch == epoch:
            if reason in ("Liveness", "StartupProbe"):
                self.probe_kill(pod, reason, now)
            else:
                self.container_exit(pod, reason, now)

    def probe_kill(self, pod: Pod, reason: str, now: float) -> None:
        """A liveness (``Liveness``) or startup (``StartupProbe``) probe failed: the container is stopped.

        It gets SIGTERM with the probe's ``terminationGracePeriodSeconds``, else the pod's
        (SEMANTICS 2.6/2.7): it leaves the load-balancing set, finishes what it holds and
        exits, or is SIGKILLed when the grace period ends (what it still holds fails). Then
        it restarts as :meth:`container_exit` says.
        """
        if pod.phase in (PodPhase.TERMINATING, PodPhase.GONE) or pod.container_started is None:
            return
        if pod.name in self._stopping:
            return
        spec = self.workloads[pod.service].spec
        probe = spec.liveness_probe if reason == "Liveness" else spec.startup_probe
        grace = probe.termination_grace_period_seconds if probe is not None else None
        if grace is None:
            grace = spec.termination_grace_period_seconds
        self.log.emit(
            now, "pod.container_stopping", pod=pod.name, service=pod.service, reason=reason, grace_s=grace
        )
        if grace <= 0 or self.plane.outstanding(pod.slot) == 0:
            self.container_exit(pod, reason, now)
            return
        pod.epoch += 1  # its pending ready/exit events no longer apply
        pod.steady = False
        if pod.ready:
            pod.ready = False
            pod.ready_since = now
            self.plane.set_ready(pod.slot, False)
            self._set_state(pod, "NotReady", now)
            self._record(self.workloads[pod.service], now)
        self.generation += 1
        self._stopping[pod.name] = (pod, reason)
        self.clock.schedule(now + grace, partial(self._stop_over, pod, pod.epoch, reason))

    def _stop_over(self, pod: Pod, epoch: int, reason: str, now: float) -> None:
        if pod.epoch == epoch and self._stopping.pop(pod.name, None) is not None:
            self.container_exit(pod, reason, now)

    def container_exit(self, pod: Pod, reason: str, now: float) -> None:
        """The pod's container stops (``reason``: Error, OOMKilled, Liveness, StartupProbe, Killed).

        What it holds fails at once; the kubelet restarts it after the CrashLoopBackOff delay
        (10 s doubling to 300 s, reset after 10 minutes of running).
        """
        self._stopping.pop(pod.name, None)
        if pod.phase in (PodPhase.TERMINATING, PodPhase.GONE) or pod.container_started is None:
            return
        ran = now - pod.container_started
        pod.epoch += 1
        pod.steady = False
        pod.container_started = None
        self.plane.kill(pod.slot, now)
        if pod.ready:
            pod.ready = False
            pod.ready_since = now
        self.generation += 1
        pod.restarts += 1
        self.counts["restarts"] += 1
        key = {
            "OOMKilled": "oom_kills",
            "Liveness": "liveness_kills",
            "StartupProbe": "startup_probe_kills",
            "Error": "crashes",
        }.get(reason)
        if key is not None:
            self.counts[key] += 1
        if reason == "OOMKilled":
            pod.oom_kills += 1
            self.log.emit(now, "pod.oom_killed", pod=pod.name, service=pod.service, restarts=pod.restarts)
        else:
            self.log.emit(
                now,
                "pod.container_exit",
                pod=pod.name,
                service=pod.service,
                reason=reason,
                restarts=pod.restarts,
            )
        if ran >= BACKOFF_RESET:
            pod.backoff = 0.0
        pod.backoff = BACKOFF_INITIAL if pod.backoff <= 0 else min(2 * pod.backoff, BACKOFF_CAP)
        self.counts["crash_loop_backoffs"] += 1
        self._set_state(pod, "CrashLoopBackOff", now)
        self.log.emit(
            now,
            "pod.crash_loop_backoff",
            pod=pod.name,
            service=pod.service,
            back_off_s=pod.backoff,
            restarts=pod.restarts,
        )
        self.clock.schedule(now + pod.backoff, partial(self._restart, pod, pod.epoch))
        self._record(self.workloads[pod.service], now)

    def _restart(self, pod: Pod, epoch: int, now: float) -> None:
        if pod.epoch != epoch or pod.phase in (PodPhase.TERMINATING, PodPhase.GONE):
            return
        self._start_container(pod, now)

    def _become_ready(self, pod: Pod, now: float) -> None:
        if pod.phase not in (PodPhase.STARTING, PodPhase.RUNNING) or pod.ready:
            return
        pod.phase = PodPhase.RUNNING
        pod.ready = True
        pod.ready_since = now
        pod.steady = True
        self.generation += 1
        self.plane.set_ready(pod.slot, True)
        self._set_state(pod, "Ready", now)
        self.log.emit(now, "pod.ready", pod=pod.name, service=pod.service)

    def _ready_then_record(self, pod: Pod, epoch: int, now: float) -> None:
        if pod.epoch != epoch:
            return
        self._become_ready(pod, now)
        self._record(self.workloads[pod.service], now)

    def probe_ready(self, pod: Pod, ready: bool, now: float) -> None:
        """A readiness probe changed the pod's Ready condition (it leaves or rejoins the set)."""
        if pod.phase != PodPhase.RUNNING or pod.container_started is None or pod.ready == ready:
            return
        if ready:
            self._become_ready(pod, now)
        else:
            pod.ready = False
            pod.ready_since = now
            self.generation += 1
            self.counts["readiness_failures"] += 1
            self.plane.set_ready(pod.slot, False)
            self._set_state(pod, "NotReady", now)
            self.log.emit(
                now, "pod.not_ready", pod=pod.name, service=pod.service, reason="Readiness probe failed"
            )
        self._record(self.workloads[pod.service], now)

    # --- scaling ----------------------------------------------------------------------

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
        """The pods of one version (a ReplicaSet) that are pending, starting or running."""
        return [
            p
            for p in self.workloads[service].pods
            if p.version == version and p.phase in (PodPhase.STARTING, PodPhase.RUNNING)
        ]

    def scale_replicaset(self, service: str, version: str, replicas: int, now: float) -> None:
        """Bring one version's pods to ``replicas``: create pods, or terminate the surplus.

        The surplus is chosen as the Kubernetes ReplicaSet controller chooses it
        (:func:`devopsim.control.replicaset.deletion_order`).
        """
        w = self.workloads[service]
        active = self.replicaset(service, version)
        if len(active) < replicas:
            for _ in range(replicas - len(active)):
                pod = self._create(w, now, version)
                self._admit(pod, now)
        elif len(active) > replicas:
            # The ReplicaSet controller's choice (control/replicaset.py): unassigned, Pending,
            # not ready, cheaper, crowded nodes, recently ready, restarted, newer pods first.
            diff = len(active) - replicas
            victims = active if diff == len(active) else deletion_order(active, w.pods, now, diff)
            for pod in victims[:diff]:
                self._terminate(pod, now)
        self._record(w, now)

    def set_template(self, service: str, version: str) -> None:
        """Point the workload's pod template at ``version`` (a registered version of the program)."""
        w = self.workloads[service]
        w.version = version
        w.version_index = self.program.ver_index[(service, version)]

    def disruptions_allowed(self, service: str) -> int | None:
        """The service's PodDisruptionBudget ``disruptionsAllowed`` now (``None``: no budget).

        As the disruption controller computes it (SEMANTICS 2.8): an integer
        ``minAvailable`` counts against the service's pods, otherwise against the
        Deployment's scale; percentages round up; ``currentHealthy`` is the Ready pods.
        """
        w = self.workloads[service]
        pdb = w.spec.pod_disruption_budget
        if pdb is None:
            return None
        pods = [p for p in w.pods if p.phase in (PodPhase.STARTING, PodPhase.RUNNING)]
        healthy = sum(1 for p in pods if p.ready)

        def pct(v: str, n: int) -> int:
            return math.ceil(float(v.rstrip("%")) / 100.0 * n - 1e-9)

        lo, hi = pdb.min_available, pdb.max_unavailable
        if lo is not None:
            desired = lo if isinstance(lo, int) else pct(lo, w.desired)
        else:
            assert hi is not None
            desired = max(0, w.desired - (hi if isinstance(hi, int) else pct(hi, w.desired)))
        return max(0, healthy - desired)

    @staticmethod
    def available(pod: Pod, now: float, min_ready_seconds: float) -> bool:
        """Ready for at least ``minReadySeconds`` (the Deployment's notion of available)."""
        return pod.ready and pod.ready_since is not None and now - pod.ready_since >= min_ready_seconds

    # --- termination ------------------------------------------------------------------

    def _terminate(self, pod: Pod, now: float, grace: float | None = None) -> None:
        self._stopping.pop(pod.name, None)
        pod.epoch += 1
        pod.steady = False
        if pod.scheduled is None:  # never bound: nothing runs, it simply goes
            pod.phase = PodPhase.TERMINATING
            pod.deleted = now
            self._pending.pop(pod.name, None)
            self._gone(pod, now)
            return
        pod.phase = PodPhase.TERMINATING
        if pod.ready:
            pod.ready_since = now
        pod.ready = False
        pod.deleted = now
        self.generation += 1
        self._terminating[pod.name] = pod
        self.plane.set_ready(pod.slot, False)
        self._set_state(pod, "Terminating", now)
        self.log.emit(now, "pod.terminating", pod=pod.name, service=pod.service)
        if grace is None:
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
        pod.ready = False
        pod.epoch += 1
        self.generation += 1
        self._terminating.pop(pod.name, None)
        self._pending.pop(pod.name, None)
        node = self.cluster.nodes.get(pod.node) if pod.node else None
        if node is not None:
            node.unbind(pod, pod.cpu_request, pod.mem_request)
        for hook in self.on_gone:
            hook(pod, now)
        self.plane.release(pod.slot, now)
        self._set_state(pod, "Gone", now)
        self.log.emit(now, "pod.deleted", pod=pod.name, service=pod.service)
        self._record(self.workloads[pod.service], now)
        if self._pending and node is not None:
            self.retry_pending(now)

    def reap(self, now: float) -> None:
        """Remove terminating pods, and exit stopping containers, that have finished their work."""
        if self._stopping:
            for pod, reason in list(self._stopping.values()):
                if self.plane.outstanding(pod.slot) == 0:
                    self.container_exit(pod, reason, now)
        if not self._terminating:
            return
        for pod in list(self._terminating.values()):
            if pod.phase == PodPhase.TERMINATING and self.plane.outstanding(pod.slot) == 0:
                self._gone(pod, now)

    def _replace(self, pod: Pod, now: float) -> None:
        """The ReplicaSet replaces a pod that was deleted without being scaled away."""
        w = self.workloads[pod.service]
        new = self._create(w, now, pod.version)
        self._admit(new, now)
        self._record(w, now)

    def _find(self, name: str) -> Pod:
        for w in self.workloads.values():
            for p in w.pods:
                if p.name == name and p.phase != PodPhase.GONE:
                    return p
        raise ChaosError(f"no pod named {name!r}")

    def delete_pod(self, name: str, now: float, grace: float | None = 0.0) -> None:
        """Delete a pod (Chaos Mesh ``pod-kill``): it terminates and its ReplicaSet replaces it at once.

        Args:
            name: the pod's name.
            now: simulated time.
            grace: grace period in seconds (0: killed at once, what it holds fails;
                ``None``: the pod's ``terminationGracePeriodSeconds``).

        Raises:
            ChaosError: no such pod.
        """
        pod = self._find(name)
        if pod.phase == PodPhase.TERMINATING:
            return
        self._terminate(pod, now, grace)
        if grace == 0.0 and pod.name in self._terminating:
            self._grace_over(pod, now)
        self._replace(pod, now)

    def kill_container(self, name: str, now: float) -> None:
        """Kill a pod's container (Chaos Mesh ``container-kill``): it restarts with back-off.

        Raises:
            ChaosError: no such pod.
        """
        self.container_exit(self._find(name), "Killed", now)

    def evict(self, pod: Pod, now: float) -> None:
        """Evict a pod (node drain by the cluster autoscaler): graceful termination, replaced at once."""
        if pod.phase not in (PodPhase.STARTING, PodPhase.RUNNING):
            return
        self.counts["evicted"] += 1
        self.log.emit(now, "pod.evicted", pod=pod.name, service=pod.service, node=pod.node)
        self._terminate(pod, now)
        self._replace(pod, now)

    # --- nodes ------------------------------------------------------------------------

    def node_ready(self, node: Node, now: float) -> None:
        """A node joined (or came back): record it and schedule Pending pods."""
        self.cluster.pools[node.pool].record(now)
        self.retry_pending(now)

    def remove_node(self, node: Node, now: float) -> None:
        """Take a node away (scale-down): its pods are evicted and rescheduled elsewhere."""
        node.removed = True
        for pod in list(node.pods.values()):
            self.evict(pod, now)
        pool = self.cluster.pools[node.pool]
        pool.removed += 1
        pool.record(now)
        self.log.emit(now, "node.removed", node=node.name, pool=node.pool, zone=node.zone)

    def _nodes_matching(self, kind: str, target: str) -> list[Node]:
        out = []
        for n in self.cluster.nodes.values():
            if n.removed:
                continue
            if (
                (kind == "node" and n.name == target)
                or (kind == "zone" and target in (n.zone, f"{n.region}/{n.zone}"))
                or (kind == "region" and target in (n.region, f"{n.cloud}/{n.region}"))
                or (kind == "cloud" and n.cloud == target)
            ):
                out.append(n)
        if not out and not self._target_exists(kind, target):
            known = sorted(
                {getattr(n, kind if kind != "node" else "name") for n in self.cluster.nodes.values()}
            )
            raise ChaosError(f"no {kind} named {target!r}; known: {', '.join(known)}")
        return out

    def _target_exists(self, kind: str, target: str) -> bool:
        plat = self.scenario.platform
        if kind == "node" or plat is None:
            return False
        for cname, cloud in plat.clouds.items():
            if kind == "cloud" and cname == target:
                return True
            for rname, region in cloud.regions.items():
                if kind == "region" and target in (rname, f"{cname}/{rname}"):
                    return True
                if kind == "zone" and any(target in (z, f"{rname}/{z}") for z in region.zones):
                    return True
        return False

    def _fail(self, nodes: list[Node], now: float, eviction_delay: float | None) -> None:
        delay = EVICTION_DELAY if eviction_delay is None else eviction_delay
        for node in nodes:
            if node.failed:
                continue
            node.failed = True
            self.cluster.pools[node.pool].record(now)
            self.log.emit(
                now, "node.failed", node=node.name, zone=node.zone, region=node.region, cloud=node.cloud
            )
            for pod in list(node.pods.values()):
                if pod.phase in (PodPhase.GONE,):
                    continue
                pod.epoch += 1
                pod.steady = False
                if pod.container_started is not None or pod.phase == PodPhase.TERMINATING:
                    self.plane.kill(pod.slot, now)
                pod.container_started = None
                if pod.ready:
                    pod.ready = False
                    pod.ready_since = now
                self.generation += 1
                self.counts["lost"] += 1
                self._stopping.pop(pod.name, None)
                self._set_state(pod, "Unknown", now)
                self._record(self.workloads[pod.service], now)
                if pod.phase == PodPhase.TERMINATING:
                    self._gone(pod, now)
                else:
                    self.clock.schedule(now + delay, partial(self._evict_lost, pod, pod.epoch))

    def _evict_lost(self, pod: Pod, epoch: int, now: float) -> None:
        if pod.epoch != epoch or pod.phase == PodPhase.GONE:
            return
        self.log.emit(now, "pod.evicted", pod=pod.name, service=pod.service, node=pod.node, reason="NodeLost")
        self.counts["evicted"] += 1
        pod.phase = PodPhase.TERMINATING
        pod.deleted = now
        self._gone(pod, now)
        self._replace(pod, now)

    def _recover(self, nodes: list[Node], now: float) -> None:
        for node in nodes:
            if not node.failed:
                continue
            node.failed = False
            self.log.emit(
                now, "node.recovered", node=node.name, zone=node.zone, region=node.region, cloud=node.cloud
            )
            for pod in list(node.pods.values()):
                if pod.state == "Unknown" and pod.phase != PodPhase.GONE:
                    self._start_container(pod, now)  # the kubelet is back before the eviction
            self.node_ready(node, now)

    def fail_node(self, name: str, now: float, eviction_delay: float | None = None) -> None:
        """A node dies (Chaos Mesh / Litmus ``node-failure``).

        Its pods stop at once (what they hold fails as ``unavailable``, they leave the
        load-balancing set, state ``Unknown``); like Kubernetes, they are evicted and
        replaced on other nodes only ``eviction_delay`` seconds later (default
        :data:`EVICTION_DELAY`: 50 s node-monitor grace period + the 300 s
        ``node.kubernetes.io/unreachable`` toleration; pass 0 to replace at once).
        Replacements stay Pending while nothing else fits.

        Raises:
            ChaosError: no such node.
        """
        self._fail(self._nodes_matching("node", name), now, eviction_delay)

    def fail_zone(self, zone: str, now: float, eviction_delay: float | None = None) -> None:
        """Every node of a zone dies (``zone-outage``); no node is provisioned there until it recovers.

        ``zone`` is a zone as the scenario names it (``us-east-1a``) or ``REGION/ZONE``
        (for zone names shared by several regions, like Azure's ``1``). Pods as in
        :meth:`fail_node`.

        Raises:
            ChaosError: no such zone.
        """
        self._fail_domain("zone", zone, now, eviction_delay)

    def fail_region(self, region: str, now: float, eviction_delay: float | None = None) -> None:
        """Every node of a region (``REGION`` or ``CLOUD/REGION``) dies (``region-outage``).

        See :meth:`fail_zone`.

        Raises:
            ChaosError: no such region.
        """
        self._fail_domain("region", region, now, eviction_delay)

    def fail_cloud(self, cloud: str, now: float, eviction_delay: float | None = None) -> None:
        """Every node of a cloud dies (``cloud-outage``); see :meth:`fail_zone`.

        Raises:
            ChaosError: no such cloud.
        """
        self._fail_domain("cloud", cloud, now, eviction_delay)

    def recover_node(self, name: str, now: float) -> None:
        """A failed node comes back, empty of replaced pods; Pending pods may go to it.

        Pods on it not yet evicted restart their containers (the kubelet is back in time).

        Raises:
            ChaosError: no such node.
        """
        self._recover(self._nodes_matching("node", name), now)

    def recover_zone(self, zone: str, now: float) -> None:
        """A failed zone comes back (its nodes, and provisioning there). Raises ChaosError if unknown."""
        self._recover_domain("zone", zone, now)

    def recover_region(self, region: str, now: float) -> None:
        """A failed region comes back. Raises ChaosError if unknown."""
        self._recover_domain("region", region, now)

    def recover_cloud(self, cloud: str, now: float) -> None:
        """A failed cloud comes back. Raises ChaosError if unknown."""
        self._recover_domain("cloud", cloud, now)

    def _fail_domain(self, level: str, target: str, now: float, eviction_delay: float | None) -> None:
        """Every node of a zone, region or cloud dies; nothing is provisioned there until it recovers."""
        nodes = self._nodes_matching(level, target)
        self.cluster.failed_zones.update(self._zone_keys(target, level=level))
        self._cancel_provisioning(now)
        self._fail(nodes, now, eviction_delay)

    def _recover_domain(self, level: str, target: str, now: float) -> None:
        """A failed zone, region or cloud comes back (its nodes, and provisioning there)."""
        nodes = self._nodes_matching(level, target)
        self.cluster.failed_zones.difference_update(self._zone_keys(target, level=level))
        self._recover(nodes, now)

    def _zone_keys(self, target: str, level: str = "zone") -> list[tuple[str, str, str]]:
        plat = self.scenario.platform
        out: list[tuple[str, str, str]] = []
        if plat is None:
            return out
        for cname, cloud in plat.clouds.items():
            for rname, region in cloud.regions.items():
                for z in region.zones:
                    if (
                        (level == "zone" and target in (z, f"{rname}/{z}"))
                        or (level == "region" and target in (rname, f"{cname}/{rname}"))
                        or (level == "cloud" and target == cname)
                    ):
                        out.append((cname, rname, z))
        return out

    def _cancel_provisioning(self, now: float) -> None:
        for pool in self.cluster.pools.values():
            keep = [
                (z, t)
                for z, t in pool.provisioning
                if not self.cluster.zone_failed(pool.cloud, pool.region, z)
            ]
            if len(keep) != len(pool.provisioning):
                pool.provisioning = keep
                pool.record(now)

    # --- results ----------------------------------------------------------------------

    def _record(self, w: Workload, now: float) -> None:
        entry = (now, w.ready_count(), len(w.live()))
        if w.history and w.history[-1][0] == now:
            w.history[-1] = entry
        else:
            w.history.append(entry)

    def pods(self) -> list[Pod]:
        """Every pod that exists now."""
        return [p for w in self.workloads.values() for p in w.live()]


_NO_MISBEHAVIOUR = VersionBehaviour()
