"""Faults: what each kind does to the twin, acting through the model.

A :class:`FaultInjector` turns a scenario :class:`~devopsim.scenario.infra.Fault`
(Chaos Mesh's names where it has one) into actions on the platform, the data
plane and the traffic, and undoes them when the fault ends (its ``duration``
runs out, or a ``recover`` aimed at the same target arrives):

==================== =================================================================
kind                 effect
==================== =================================================================
pod-kill             pods are deleted with grace period 0 (what they hold fails); the
                     ReplicaSet replaces them at once (``Platform.delete_pod``)
pod-failure          the pod's app stops for ``duration`` (Chaos Mesh swaps in a pause
                     image): unready, what it held fails, a restart is counted; then the
                     image comes back and the pod is ready after the service's startup
container-kill       the container dies; the kubelet restarts it after the CrashLoopBackOff
                     delay (``Platform.kill_container``)
node/zone/region/    the platform's nodes there fail (``Platform.fail_*``); their pods are
cloud outage         evicted and replaced elsewhere after Kubernetes' eviction delay
network-delay        calls to the target take ``delay`` more (``set_impairment``)
network-loss         calls to the target fail with probability ``loss`` (connection error)
network-partition    every call to the target fails (loss 1)
network-bandwidth    each response to the target's callers takes ``size / bandwidth`` more
                     (``size``, default 4 KiB, the cost model's response size)
dns-failure          every call to the target fails at once (its name does not resolve)
cert-expiry          every TLS call to the target fails from now (until recovered)
cpu-stress           the target's replicas keep ``factor`` of their cores, or lose
                     ``cores`` (default: one worker at 100 %, one core)
dependency-slowdown  the target answers ``delay`` later, or its work takes ``factor``
                     times longer
memory-leak          the chosen pods' containers grow by ``leak`` (bytes/s) from the later
                     of the fault's start and their start; at the memory limit they are
                     OOMKilled and restart with back-off, and leak again until the end
disk-fill            the chosen pods' ephemeral storage fills up: the kubelet's eviction
                     manager (every 10 s) evicts them (reason Evicted, ephemeral-storage);
                     their ReplicaSet replaces them
traffic-spike/flood  extra arrivals (``rate``, a pattern) or ``factor`` x the traffic,
                     for the classes the target names (a class, an entry service, or all)
==================== =================================================================

Datastore faults (``db-primary-crash``, ``replication-break``, ``cache-flush``,
``cache-shard-loss``, ``broker-loss``) belong to the stateful loop; the injector
forwards them there. Locations that cover only part of a service's pods impair
that service in proportion (a partition of a zone holding a third of the pods
fails a third of its calls; a jitter adds a share of its variance). ``memory-stress``
OOM-kills the containers whose limit the stressor's ``memory`` pushes them over.
Network faults act on every call to the callee (``to:`` names it when given): a
caller/callee pair is not told apart, the data planes' impairment hook is per callee.
``network-bandwidth`` is the serialization time of one response at the cap; the queue
that forms when the offered bytes exceed the cap is not modelled. A ``memory-leak``'s
growth is not in the pods' memory series (the platform's working-set model knows only
a version's leak).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from devopsim.chaos.traffic import Boosted
from devopsim.errors import ChaosError
from devopsim.model.platform import Pod, PodPhase
from devopsim.scenario.infra import Fault
from devopsim.traffic.patterns import DAY, RatePattern

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation

__all__ = ["DATASTORE_KINDS", "NOT_SIMULATED", "ActiveFault", "FaultInjector", "simulated"]

DATASTORE_KINDS = frozenset(
    {"db-primary-crash", "replication-break", "cache-flush", "cache-shard-loss", "broker-loss"}
)
NOT_SIMULATED: dict[str, str] = {}
DEFAULT_RESPONSE_BYTES = 4 * 1024  # the cost model's response size (cost.loop.RESPONSE_BYTES)
EVICTION_MONITORING_S = 10.0  # the kubelet's eviction manager looks every 10 s
LEAK_POLL_S = 1.0  # how often a leak looks for a restarted container
# tc's rate units (Chaos Mesh bandwidth.rate): bit/kbit/... are bits per second, bps/kbps/...
# bytes per second, decimal prefixes.
_RATE_UNITS = {
    "bit": 1 / 8,
    "kbit": 1e3 / 8,
    "mbit": 1e6 / 8,
    "gbit": 1e9 / 8,
    "tbit": 1e12 / 8,
    "bps": 1.0,
    "kbps": 1e3,
    "mbps": 1e6,
    "gbps": 1e9,
    "tbps": 1e12,
}
LOCATION_KINDS = {
    "node-failure": "node",
    "zone-outage": "zone",
    "region-outage": "region",
    "cloud-outage": "cloud",
}
CHAOS_PRIORITY = 1  # timeline faults act right after the runner's own entries (0)


def parse_bandwidth(text: str) -> float:
    """Bytes per second from tc's notation (``1mbit`` = 125,000 B/s, ``1mbps`` = 1,000,000 B/s).

    Raises:
        ChaosError: not a number followed by one of tc's rate units.
    """
    t = text.strip().lower().replace(" ", "")
    for unit in sorted(_RATE_UNITS, key=len, reverse=True):
        if t.endswith(unit):
            try:
                v = float(t[: -len(unit)])
            except ValueError:
                break
            if v > 0:
                return v * _RATE_UNITS[unit]
            break
    raise ChaosError(
        f"network-bandwidth: bandwidth {text!r} is not a rate: write a positive number and one of "
        f"{', '.join(_RATE_UNITS)} (tc's units: bit = bits/s, bps = bytes/s), e.g. 10mbit"
    )


def simulated(kind: str) -> bool:
    """Whether faults of this kind change the twin."""
    return kind not in NOT_SIMULATED


@dataclass
class ActiveFault:
    """One injected fault, from start to end: what ``summary.faults[]`` records."""

    id: int
    kind: str
    target: str
    source: str
    start: float
    end: float | None = None
    affected: list[str] = field(default_factory=list)
    simulated: bool = True
    note: str | None = None
    ended_by: str | None = None
    undo: list[Any] = field(default_factory=list)  # callables (t) -> None, run at the end

    def record(self) -> dict[str, Any]:
        """The summary's view."""
        return {
            "kind": self.kind,
            "target": self.target,
            "source": self.source,
            "start_s": self.start,
            "end_s": self.end,
            "duration_s": None if self.end is None else self.end - self.start,
            "ended_by": self.ended_by,
            "affected": list(self.affected),
            "simulated": self.simulated,
            **({"note": self.note} if self.note else {}),
        }


@dataclass
class _Impair:
    delay: float = 0.0
    loss: float = 0.0
    cpu_factor: float = 1.0
    jitter: float = 0.0


class FaultInjector:
    """Injects faults into one simulation and ends them.

    Args:
        sim: the running simulation.
    """

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.faults: list[ActiveFault] = []
        self._impairs: dict[int, dict[int, _Impair]] = {}  # service -> fault id -> impairment
        self.rng = sim.streams.generator("chaos/faults")

    # --- targets -----------------------------------------------------------------------

    def _datastore_services(self, name: str) -> list[str]:
        comp = self.sim.program.datastores
        alias = comp.alias if comp is not None else {}
        return sorted({a.split(".")[0] for k, a in alias.items() if k.startswith(name + ".")}) or [name]

    def services_of(self, target: str) -> list[str]:
        """The services a service, datastore or ``service.endpoint`` target names (may be empty)."""
        sc = self.sim.scenario
        if target in sc.datastores:
            return self._datastore_services(target)
        if target in self.sim.program.services:
            return [target]
        head = target.split(".")[0]
        if head in self.sim.program.services:
            return [head]
        return []

    def _location_share(self, level: str, target: str) -> dict[str, float]:
        """Per service, the share of its live pods at location ``target`` (a node, zone, region or cloud)."""
        out: dict[str, float] = {}
        for name, w in self.sim.platform.workloads.items():
            live = [p for p in w.live() if p.phase != PodPhase.TERMINATING]
            if not live:
                continue
            n = sum(1 for p in live if getattr(p, level) == target)
            if n:
                out[name] = n / len(live)
        return out

    def location_level(self, target: str) -> str | None:
        """``node``, ``zone``, ``region`` or ``cloud`` when ``target`` names one in the scenario."""
        sc = self.sim.scenario
        if sc.platform is not None:
            for cname, cloud in sc.platform.clouds.items():
                if target == cname:
                    return "cloud"
                for rname, region in cloud.regions.items():
                    if target == rname:
                        return "region"
                    if target in region.zones:
                        return "zone"
        for p in self.sim.platform.pods():
            for level in ("node", "zone", "region", "cloud"):
                if getattr(p, level) == target:
                    return level
        return None

    # --- injecting -------------------------------------------------------------------------

    def inject(self, f: Fault, t: float, source: str, stateful: bool = True) -> ActiveFault:
        """Start fault ``f`` now (simulated time ``t``); schedule its end if it has a duration.

        ``stateful=False``: the stateful loop gets this fault itself (a timeline entry), so a
        ``recover`` aimed at a datastore is not handed to it again.

        Raises:
            ChaosError: the target names nothing this kind of fault can act on.
        """
        af = ActiveFault(len(self.faults), f.kind, f.target, source, t)
        if f.kind == "recover":
            self.recover(f.target, t, source)
            if stateful and f.target in self.sim.scenario.datastores:
                self.forward(f, af, t)
            af.end = t
            af.ended_by = "recover"
            self.faults.append(af)
            self.sim.log.emit(t, "chaos.recover", fault="recover", target=f.target, source=source)
            return af
        if not simulated(f.kind):
            af.simulated = False
            af.note = NOT_SIMULATED[f.kind]
            self.faults.append(af)
            self.sim.log.emit(t, "not_simulated", source=source, what=f"the {f.kind} fault", instead=af.note)
            return af
        if f.kind in DATASTORE_KINDS:
            if f.target not in self.sim.scenario.datastores:
                raise ChaosError(f"{f.kind}: {f.target!r} is not a datastore of the scenario")
            self.forward(f, af, t)
            af.end, af.ended_by = t, "stateful tier"  # the stateful loop carries it from here
        else:
            getattr(self, "_" + f.kind.replace("-", "_"))(f, af, t)
        self.faults.append(af)
        self.sim.log.emit(
            t,
            "chaos.fault.start",
            fault=f.kind,
            target=f.target,
            source=source,
            affected=list(af.affected),
            **({"duration_s": f.duration} if f.duration else {}),
        )
        if f.duration and af.end is None:
            self.sim.clock.schedule(t + f.duration, partial(self._expire, af), priority=CHAOS_PRIORITY)
        return af

    def open(self, kind: str, target: str, t: float, source: str, affected: list[str]) -> ActiveFault:
        """Record a fault that an activity carries out itself (e.g. chaosk8s' terminate_pods)."""
        af = ActiveFault(len(self.faults), kind, target, source, t, affected=list(affected))
        self.faults.append(af)
        self.sim.log.emit(
            t, "chaos.fault.start", fault=kind, target=target, source=source, affected=list(affected)
        )
        return af

    def close(self, af: ActiveFault, t: float, why: str) -> None:
        """End a fault recorded with :meth:`open`."""
        self.end(af, t, why)

    def _expire(self, af: ActiveFault, t: float) -> None:
        self.end(af, t, "duration")

    def end(self, af: ActiveFault, t: float, why: str) -> None:
        """End a fault now: undo what it did."""
        if af.end is not None:
            return
        af.end = t
        af.ended_by = why
        for fn in reversed(af.undo):
            fn(t)
        af.undo.clear()
        self.sim.log.emit(t, "chaos.fault.end", fault=af.kind, target=af.target, source=af.source, reason=why)

    def recover(self, target: str, t: float, source: str) -> list[ActiveFault]:
        """End every open fault aimed at ``target``."""
        ended = [af for af in self.faults if af.end is None and af.target == target and af.kind != "recover"]
        for af in ended:
            self.end(af, t, f"recover ({source})")
        return ended

    # --- pods ------------------------------------------------------------------------------------

    def _pick_pods(self, f: Fault) -> list[Pod]:
        services = self.services_of(f.target)
        if not services:
            loc = self.location_level(f.target)
            pods = [p for p in self.sim.platform.pods() if loc and getattr(p, loc) == f.target]
            if not pods:
                raise ChaosError(f"{f.kind}: target {f.target!r} is not a service, datastore or location")
        else:
            pods = [p for s in services for p in self.sim.platform.workloads[s].live()]
        pods = [p for p in pods if p.phase in (PodPhase.RUNNING, PodPhase.STARTING)]
        if not pods:
            return []
        n = max(1, math.floor(f.percent * len(pods) + 1e-9)) if f.percent is not None else (f.count or 1)
        n = min(n, len(pods))
        idx = np.sort(self.rng.choice(len(pods), size=n, replace=False))
        return [pods[int(i)] for i in idx]

    def kill_pod(self, pod: Pod, t: float, reason: str, grace: float | None = 0.0) -> None:
        """Delete the pod (grace 0: it dies now, what it holds fails); its ReplicaSet replaces it at once."""
        if pod.phase in (PodPhase.GONE, PodPhase.TERMINATING):
            return
        self.sim.platform.delete_pod(pod.name, t, grace=grace)

    def _pod_kill(self, f: Fault, af: ActiveFault, t: float) -> None:
        for pod in self._pick_pods(f):
            af.affected.append(pod.name)
            self.kill_pod(pod, t, "pod-kill")
        af.end = t  # instantaneous: the Deployment does the rest
        af.ended_by = "instant"

    def _pod_failure(self, f: Fault, af: ActiveFault, t: float) -> None:
        # Chaos Mesh swaps in a pause image: the app stops (what it holds fails, the pod is
        # unready, a restart is counted) and nothing serves until the fault ends; then the
        # real image starts again and the pod is ready after the service's startup.
        platform = self.sim.platform
        for pod in [p for p in self._pick_pods(f) if p.phase == PodPhase.RUNNING]:
            af.affected.append(pod.name)
            platform.container_exit(pod, "Killed", t)
            pod.epoch += 1  # the kubelet's restart would run the pause image: cancel it
            af.undo.append(partial(self._image_back, pod))

    def _image_back(self, pod: Pod, t: float) -> None:
        if pod.phase in (PodPhase.STARTING, PodPhase.RUNNING) and pod.container_started is None:
            self.sim.platform._start_container(pod, t)  # the platform's kubelet start (no public one)

    def _container_kill(self, f: Fault, af: ActiveFault, t: float) -> None:
        for pod in [p for p in self._pick_pods(f) if p.phase == PodPhase.RUNNING]:
            af.affected.append(pod.name)
            self.sim.platform.kill_container(pod.name, t)  # restarts after the CrashLoopBackOff delay
        af.end = t
        af.ended_by = "instant"

    # --- locations -------------------------------------------------------------------------------

    def _location(self, f: Fault, af: ActiveFault, t: float) -> None:
        level = LOCATION_KINDS[f.kind]
        platform = self.sim.platform
        where = f.target.split("/")[-1]
        af.affected.extend(
            p.name for p in platform.pods() if getattr(p, level) == where and p.phase != PodPhase.GONE
        )
        getattr(platform, f"fail_{level}")(f.target, t)
        self._tell_front_door(t)

        def undo(t2: float) -> None:
            getattr(platform, f"recover_{level}")(f.target, t2)
            self._tell_front_door(t2)

        af.undo.append(undo)

    def _tell_front_door(self, t: float) -> None:
        """Regions may have died or come back: the front door's losses change now, not at its next probe."""
        for loop in self.sim.loops:
            changed = getattr(loop, "changed", None) if loop.name == "frontdoor" else None
            if changed is not None:
                changed(self.sim, t)

    _node_failure = _location
    _zone_outage = _location
    _region_outage = _location
    _cloud_outage = _location

    # --- network and CPU -----------------------------------------------------------------------------

    def _apply(self, svc: int) -> None:
        parts = self._impairs.get(svc, {}).values()
        delay = sum(p.delay for p in parts)
        jitter = math.sqrt(sum(p.jitter**2 for p in parts))  # independent jitters add variances
        ok = 1.0
        cpu = 1.0
        for p in parts:
            ok *= 1.0 - p.loss
            cpu *= p.cpu_factor
        loss = min(1.0, max(0.0, 1.0 - ok))
        if jitter > 0:
            self.sim.plane.set_impairment(svc, delay=delay, loss=loss, cpu_factor=cpu, jitter=jitter)
        else:
            self.sim.plane.set_impairment(svc, delay=delay, loss=loss, cpu_factor=cpu)

    def _impair(self, af: ActiveFault, shares: dict[str, float], imp: _Impair) -> None:
        idx = {n: i for i, n in enumerate(self.sim.program.services)}
        touched = []
        for name, share in shares.items():
            s = idx[name]
            part = _Impair(
                imp.delay * share,
                imp.loss * share,
                1.0 - (1.0 - imp.cpu_factor) * share,
                imp.jitter * math.sqrt(share),
            )
            self._impairs.setdefault(s, {})[af.id] = part
            self._apply(s)
            touched.append(s)
            af.affected.append(name)

        def undo(t: float) -> None:
            for s in touched:
                self._impairs.get(s, {}).pop(af.id, None)
                self._apply(s)

        af.undo.append(undo)

    def _shares(self, f: Fault) -> dict[str, float]:
        """Which services a network/CPU fault reaches, and how much of each."""
        target = f.to or f.target
        services = self.services_of(target)
        if services:
            return dict.fromkeys(services, 1.0)
        level = self.location_level(target)
        if level is None:
            raise ChaosError(f"{f.kind}: target {target!r} is not a service, datastore or location")
        return self._location_share(level, target)

    def _network_delay(self, f: Fault, af: ActiveFault, t: float) -> None:
        if f.delay is None:
            raise ChaosError("network-delay needs 'delay' (e.g. delay: 100ms)")
        self._impair(af, self._shares(f), _Impair(delay=f.delay, jitter=f.jitter or 0.0))

    def _network_loss(self, f: Fault, af: ActiveFault, t: float) -> None:
        if f.loss is None:
            raise ChaosError("network-loss needs 'loss' (e.g. loss: 10%)")
        self._impair(af, self._shares(f), _Impair(loss=f.loss))

    def _network_partition(self, f: Fault, af: ActiveFault, t: float) -> None:
        self._impair(af, self._shares(f), _Impair(loss=1.0))

    _dns_failure = _network_partition
    _cert_expiry = _network_partition

    def _cpu_stress(self, f: Fault, af: ActiveFault, t: float) -> None:
        shares = self._shares(f)
        if f.factor is not None:
            factor = f.factor
        else:
            cores = f.cores if f.cores is not None else 1.0
            factor = 1.0
            for name in shares:
                own = self.sim.scenario.services[name].cores if name in self.sim.scenario.services else 1.0
                factor = min(factor, max(0.05, 1.0 - cores / max(own, 1e-9)))
        if not 0.0 < factor <= 1.0:
            raise ChaosError(f"cpu-stress leaves a factor in (0, 1] of the cores (got {factor})")
        self._impair(af, shares, _Impair(cpu_factor=factor))

    def _memory_stress(self, f: Fault, af: ActiveFault, t: float) -> None:
        # StressChaos memory {size}: a stressor in the container allocates ``size``. Over the
        # container's memory limit the kernel OOM-kills it (the stressor goes with the
        # container; the kubelet restarts it after its back-off). Under the limit nothing
        # happens: node memory pressure is not modelled.
        if f.memory is None:
            raise ChaosError("memory-stress needs 'memory' (the stressor's size, e.g. memory: 256Mi)")
        platform = self.sim.platform
        for pod in [p for p in self._pick_pods(f) if p.phase == PodPhase.RUNNING]:
            limit = platform.workloads[pod.service].spec.resources.limits.memory
            used = platform.memory(pod, t, float(self.sim.plane.outstanding(pod.slot)))
            if limit is not None and used + f.memory > limit:
                af.affected.append(pod.name)
                platform.container_exit(pod, "OOMKilled", t)
        if not af.affected:
            af.note = "the stressor fits under every memory limit: no effect (node pressure is not modelled)"
        af.end, af.ended_by = t, "instant"

    def _network_bandwidth(self, f: Fault, af: ActiveFault, t: float) -> None:
        # tc tbf at the cap: a response of ``size`` bytes takes size / rate on the wire.
        if f.bandwidth is None:
            raise ChaosError("network-bandwidth needs 'bandwidth' (tc's units, e.g. bandwidth: 10mbit)")
        rate = parse_bandwidth(f.bandwidth)
        size = f.size if f.size is not None else DEFAULT_RESPONSE_BYTES
        self._impair(af, self._shares(f), _Impair(delay=size / rate))
        if f.size is None:
            af.note = (
                f"responses of {DEFAULT_RESPONSE_BYTES} bytes (the default: no 'size' given) take "
                f"{size / rate:.6g} s at {rate:.6g} B/s"
            )

    def _memory_leak(self, f: Fault, af: ActiveFault, t: float) -> None:
        if f.leak is None or f.leak <= 0:
            raise ChaosError("memory-leak needs 'leak', the bytes leaked per second (e.g. leak: 10Mi/m)")
        platform = self.sim.platform
        no_limit = []
        for pod in self._pick_pods(f):
            af.affected.append(pod.name)
            if platform.workloads[pod.service].spec.resources.limits.memory is None:
                no_limit.append(pod.name)
                continue
            self._leak_watch(pod, af, float(f.leak), t)
        if no_limit:
            af.note = (
                f"{', '.join(no_limit)}: no memory limit, so no OOM kill "
                "(node memory pressure is not modelled)"
            )

    def _leak_watch(self, pod: Pod, af: ActiveFault, rate: float, t: float) -> None:
        """Schedule the OOM kill of the pod's current container, or look again for a restarted one."""
        if af.end is not None or pod.phase in (PodPhase.GONE, PodPhase.TERMINATING):
            return
        clock = self.sim.clock
        if pod.container_started is None:  # restarting (CrashLoopBackOff): look again soon
            clock.schedule(t + LEAK_POLL_S, partial(self._leak_watch, pod, af, rate), priority=CHAOS_PRIORITY)
            return
        platform = self.sim.platform
        limit = platform.workloads[pod.service].spec.resources.limits.memory
        assert limit is not None
        since = max(af.start, pod.container_started)
        used = platform.memory(pod, t, float(self.sim.plane.outstanding(pod.slot))) + rate * (t - since)
        grow = rate + platform.behaviour_of(pod).memory_leak
        at = t + max(0.0, limit - used) / grow
        clock.schedule(at, partial(self._leak_oom, pod, af, rate, pod.epoch), priority=CHAOS_PRIORITY)

    def _leak_oom(self, pod: Pod, af: ActiveFault, rate: float, epoch: int, t: float) -> None:
        if af.end is not None or pod.epoch != epoch:
            if af.end is None:
                self._leak_watch(pod, af, rate, t)  # the container changed meanwhile: start over
            return
        self.sim.platform.container_exit(pod, "OOMKilled", t)
        self._leak_watch(pod, af, rate, t)

    def _disk_fill(self, f: Fault, af: ActiveFault, t: float) -> None:
        # The filler writes until the pod's ephemeral storage is full; the kubelet's eviction
        # manager, which looks every 10 s, then evicts the pod at once (grace 0: over its
        # ephemeral-storage limit, or the node under DiskPressure with this pod the largest
        # user), and its ReplicaSet replaces it.
        pods = self._pick_pods(f)
        af.affected.extend(p.name for p in pods)
        at = t + EVICTION_MONITORING_S
        self.sim.clock.schedule(at, partial(self._evict_full, pods, af), priority=CHAOS_PRIORITY)
        af.end, af.ended_by = at, "eviction"

    def _evict_full(self, pods: list[Pod], af: ActiveFault, t: float) -> None:
        platform = self.sim.platform
        for pod in pods:
            if pod.phase not in (PodPhase.STARTING, PodPhase.RUNNING):
                continue
            self.sim.log.emit(
                t,
                "pod.evicted",
                pod=pod.name,
                service=pod.service,
                node=pod.node,
                reason="Evicted",
                message="ephemeral-storage: the pod's storage is full (disk-fill)",
            )
            platform.counts["evicted"] = platform.counts.get("evicted", 0) + 1
            platform.delete_pod(pod.name, t, grace=0.0)

    def _dependency_slowdown(self, f: Fault, af: ActiveFault, t: float) -> None:
        if f.delay is None and f.factor is None:
            raise ChaosError("dependency-slowdown needs 'delay' (added) or 'factor' (work x factor)")
        imp = _Impair(delay=f.delay or 0.0, cpu_factor=1.0 / f.factor if f.factor else 1.0)
        self._impair(af, self._shares(f), imp)

    # --- traffic ---------------------------------------------------------------------------------------

    def _classes(self, target: str) -> list[int]:
        classes = self.sim.program.classes
        users = getattr(self.sim.program, "user_classes", -1)
        users = len(classes) if users < 0 else users  # later classes are consumer groups' messages
        own = set(range(users, len(classes)))
        if target in ("*", "all", "traffic", "users"):
            return [i for i in range(len(classes)) if i not in own]
        if target in classes:
            return [classes.index(target)]
        out = []
        for i, c in enumerate(self.sim.scenario.traffic.classes):
            if any(e == target or e.split(".")[0] == target for e in c.entries):
                out.append(i)
        if not out:
            raise ChaosError(
                f"{target!r} names no request class, entry service or endpoint (or 'all') for a traffic fault"
            )
        return out

    def _traffic_spike(self, f: Fault, af: ActiveFault, t: float) -> None:
        if f.rate is None and f.factor is None:
            raise ChaosError(f"{f.kind} needs 'rate' (extra arrivals, e.g. rate: 2000/s) or 'factor'")
        gen = self.sim.traffic
        chosen = self._classes(f.target)
        factor = f.factor if f.factor is not None else 1.0
        total_share = sum(gen.shares[i] for i in chosen) or 1.0
        for i in chosen:
            stream = gen._streams[i]
            base, origin, clock0 = stream._pattern, stream._origin, stream._clock0
            if base is None:
                raise ChaosError("the traffic of this run has no pattern to add to")
            extra = f.rate.scaled(gen.shares[i] / total_share) if f.rate is not None else None
            offset = t - origin
            stream.set_pattern(Boosted(base, offset, factor, extra), t, (clock0 + offset) % DAY)
            af.affected.append(self.sim.program.classes[i])
            af.undo.append(partial(self._unboost, i, base, origin, clock0))

    _traffic_flood = _traffic_spike

    def _unboost(self, i: int, base: RatePattern, origin: float, clock0: float, t: float) -> None:
        stream = self.sim.traffic._streams[i]
        cur = stream._pattern
        if isinstance(cur, Boosted) and cur.base is base:
            stream.set_pattern(base, origin, clock0)  # exactly the pattern it had
        # else a timeline traffic change replaced the pattern meanwhile: leave it

    # --- datastores (the stateful loop's) ---------------------------------------------------------

    def forward(self, f: Fault, af: ActiveFault, t: float) -> None:
        """Hand a datastore fault to the stateful loop."""
        for loop in self.sim.loops:
            if loop.name == "stateful":
                inject = getattr(loop, "inject", None)
                if inject is not None:
                    inject(self.sim, f, t, af.source)
                else:
                    loop._fault(self.sim, f, af.id, t)  # type: ignore[attr-defined]
                af.affected.extend(self.services_of(f.target))
                return
        raise ChaosError(f"{f.kind} needs the stateful tier, which this run does not have")
