"""The kubelet side of a run: version misbehaviour, overload probes, OOM checks, and the pod summary.

* A timeline ``deploy`` with ``changes.memoryLeak`` (``10Mi/m``) or
  ``changes.crashOnStart`` registers that behaviour for the new version
  (:meth:`Platform.set_version_behaviour`) before its rollout creates pods.
* Services with an HTTP or gRPC readiness or liveness probe get an
  :class:`~devopsim.control.probes.OverloadProbe` run every ``periodSeconds`` over
  their steady pods: a probe that would wait longer than ``timeoutSeconds`` behind
  the replica's queue fails; readiness failures take the pod out of the
  load-balancing set, liveness failures restart it.
* Where requests in service could push a pod over its memory limit
  (``base + 256 KiB x concurrency > limit``), memory is checked every
  :data:`MEMORY_CHECK` seconds (a leak alone is scheduled exactly by the platform).
* ``finish`` adds ``pods`` (restarts, OOM kills, back-offs, pending time, phase
  counts) and ``nodes`` (each pool's node counts) to the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from devopsim.control.probes import OverloadProbe, failing, mean_service_time, queues_behind_requests
from devopsim.model.platform import MEMORY_PER_REQUEST, STATES, Pod, PodPhase, base_memory

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.infra import Deploy, TimelineEntry

__all__ = ["MAX_SERIES_POINTS", "MEMORY_CHECK", "PodsLoop", "step_series"]

MEMORY_CHECK = 5.0  # seconds between checks of in-service memory against limits
MAX_SERIES_POINTS = 2000  # summary time series longer than this are bucketed


def step_series(
    rows: Sequence[tuple[float, tuple[int, ...]]], end: float, max_points: int = MAX_SERIES_POINTS
) -> list[list[float]]:
    """A step function's change points as ``[t, v1, v2, ...]`` rows (each value holds until the next row).

    With more than ``max_points`` rows, the run is cut into ``max_points`` buckets of
    ``end / max_points`` seconds and each bucket with changes gives one row: its start, and
    the highest of each value in the bucket (the value entering it included), so no peak is
    lost; the bucket after it, if it has no change, gets the value actually held.
    """
    if len(rows) <= max_points:
        return [[t, *v] for t, v in rows]
    width = end / max_points
    out: list[list[float]] = []
    prev: tuple[int, ...] | None = None
    last = -1
    for t, v in rows:
        k = min(int(t // width), max_points - 1)
        if k == last:
            out[-1][1:] = [max(a, c) for a, c in zip(out[-1][1:], v, strict=True)]
        else:
            if prev is not None and k > last + 1:
                out.append([(last + 1) * width, *prev])
            start = v if prev is None else tuple(max(a, c) for a, c in zip(prev, v, strict=True))
            out.append([k * width, *start])
            last = k
        prev = v
    if prev is not None and last < max_points - 1:
        out.append([(last + 1) * width, *prev])
    return out


@dataclass
class _Batch:
    """The steady pods of a group of probes, end to end, with each pod's probe parameters."""

    steady: list[tuple[list[Pod], np.ndarray, dict[str, int]]]  # per probe: pods, slots, name -> index
    offsets: list[int]  # probe k's pods are rows offsets[k]:offsets[k + 1]
    slots: np.ndarray
    concurrency: np.ndarray
    service_time: np.ndarray
    timeout: np.ndarray


class PodsLoop:
    """Probes under load, memory limits and version behaviour, for every service."""

    name = "pods"

    def __init__(self) -> None:
        self.probes: list[tuple[str, OverloadProbe]] = []
        # Per service, at one platform generation: its steady pods, their slots, name -> index.
        self._cache: dict[str, tuple[int, list[Pod], np.ndarray, dict[str, int]]] = {}
        self._memory: list[str] = []
        # Probes by period: one clock event per period runs them all, in the order they were made.
        self._groups: dict[float, list[tuple[str, OverloadProbe]]] = {}
        self._group_cache: dict[float, tuple[int, _Batch]] = {}
        self._runs: dict[float, partial[None]] = {}  # per period: the clock's action that runs the group
        # Per period: whether a probe of the group counts failures or successes of some pod (only
        # _act changes that, so it is worked out again after the group acts).
        self._watching: dict[float, bool] = {}

    def attach(self, sim: Simulation) -> None:
        """Schedule version behaviour at deploys, the overload probes and the memory checks."""
        self.sim = sim
        for entry in sim.scenario.timeline:
            if entry.deploy is not None:
                sim.clock.schedule(entry.at, partial(self._behaviour, entry.deploy), priority=0)
        for name, svc in sim.scenario.services.items():
            s_time = mean_service_time(svc)
            for kind, probe in (("readiness", svc.readiness_probe), ("liveness", svc.liveness_probe)):
                if probe is None or not queues_behind_requests(probe) or s_time <= 0:
                    continue
                op = OverloadProbe(kind, probe, svc.concurrency, s_time)
                self.probes.append((name, op))
                period = float(probe.period_seconds)
                if period < sim.scenario.duration:
                    if period not in self._groups:
                        self._groups[period] = []
                        self._runs[period] = partial(self._probe_group, period)
                        sim.clock.schedule(period, self._runs[period], priority=2)
                    self._groups[period].append((name, op))
            limit = svc.resources.limits.memory
            if limit is not None and base_memory(svc) + MEMORY_PER_REQUEST * svc.concurrency > limit:
                self._memory.append(name)
        if self._memory and sim.scenario.duration > MEMORY_CHECK:
            sim.clock.schedule(MEMORY_CHECK, self._check_memory, priority=2)

    def _behaviour(self, spec: Deploy, t: float) -> None:
        ch = spec.changes
        if ch.memory_leak is None and not ch.crash_on_start:
            return
        self.sim.platform.set_version_behaviour(
            spec.service, spec.version, memory_leak=ch.memory_leak or 0.0, crash_on_start=ch.crash_on_start
        )
        self.sim.log.emit(
            t,
            "version.behaviour",
            service=spec.service,
            version=spec.version,
            memory_leak_bytes_per_s=ch.memory_leak or 0.0,
            crash_on_start=ch.crash_on_start,
        )

    def _steady(self, service: str) -> tuple[list[Pod], np.ndarray, dict[str, int]]:
        plat = self.sim.platform
        hit = self._cache.get(service)
        if hit is not None and hit[0] == plat.generation:
            return hit[1], hit[2], hit[3]
        pods = [
            p
            for p in plat.workloads[service].pods
            if p.steady and p.phase == PodPhase.RUNNING and p.container_started is not None
        ]
        slots = np.array([p.slot for p in pods], dtype=np.int64)
        pos = {p.name: i for i, p in enumerate(pods)}
        self._cache[service] = (plat.generation, pods, slots, pos)
        return pods, slots, pos

    def _batch(self, period: float) -> _Batch:
        """The steady pods of every probe of one period, end to end (made again when pods change)."""
        gen = self.sim.platform.generation
        hit = self._group_cache.get(period)
        if hit is not None and hit[0] == gen:
            return hit[1]
        items = self._groups[period]
        steady = [self._steady(service) for service, _ in items]
        sizes = [len(st[0]) for st in steady]
        offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        slots = np.concatenate([st[1] for st in steady]) if steady else np.zeros(0, dtype=np.int64)

        def per_pod(values: list[float]) -> np.ndarray:
            return np.repeat(np.array(values, dtype=np.float64), sizes)

        b = _Batch(
            steady,
            offsets.tolist(),
            slots.astype(np.int64),
            per_pod([float(op.concurrency) for _, op in items]),
            per_pod([op.service_time for _, op in items]),
            per_pod([float(op.probe.timeout_seconds) for _, op in items]),
        )
        self._group_cache[period] = (gen, b)
        return b

    def _probe_group(self, period: float, t: float) -> None:
        """Run every probe of this period on its service's steady pods, in the order they were made.

        The queues are read once for all of them (a probe's action changes only its own pods).
        """
        sim = self.sim
        hit = self._group_cache.get(period)
        b = hit[1] if hit is not None and hit[0] == sim.platform.generation else self._batch(period)
        fail: list[int] = []
        if b.slots.size:
            busy_now, qlen_now = sim.plane.queue_state()  # no simulation of a quiet stretch
            queued = qlen_now.take(b.slots)
            if max(queued.tolist()) > 0.5:  # else no probe waits behind a queue: none fails
                busy = np.asarray(busy_now[b.slots], dtype=np.float64)
                queued = np.asarray(queued, dtype=np.float64)
                fail = np.flatnonzero(
                    failing(busy, queued, b.concurrency, b.service_time, b.timeout)
                ).tolist()
        if fail or self._watching.get(period, False):
            items = self._groups[period]
            for k, (_, op) in enumerate(items):
                lo, hi = b.offsets[k], b.offsets[k + 1]
                mine = {i - lo for i in fail if lo <= i < hi}
                if mine or op.fails or op.down:
                    pods, _slots, pos = b.steady[k]
                    self._act(op, pods, pos, mine, t)
            self._watching[period] = any(op.fails or op.down for _, op in items)
        nxt = t + period
        if nxt < sim.scenario.duration:
            sim.clock.schedule(nxt, self._runs[period], priority=2)

    def _act(
        self, op: OverloadProbe, pods: list[Pod], pos: dict[str, int], fail_idx: set[int], t: float
    ) -> None:
        """One probe's results on the steady pods: ``fail_idx`` failed, the rest succeeded."""
        plat = self.sim.platform
        if pods:
            watch = {pos[n] for n in (*op.fails, *op.down) if n in pos}
            for i in sorted(fail_idx | watch):
                pod = pods[i]
                if pod.phase != PodPhase.RUNNING or pod.container_started is None:
                    continue
                if i in fail_idx:
                    op.oks.pop(pod.name, None)
                    n = op.fails.get(pod.name, 0) + 1
                    op.fails[pod.name] = n
                    if n >= op.probe.failure_threshold:
                        if op.kind == "liveness":
                            op.fails.pop(pod.name, None)
                            plat.probe_kill(pod, "Liveness", t)
                        elif pod.ready:
                            plat.probe_ready(pod, False, t)
                            op.down.add(pod.name)
                    continue
                op.fails.pop(pod.name, None)
                if pod.name in op.down:
                    n = op.oks.get(pod.name, 0) + 1
                    if n >= op.probe.success_threshold:
                        op.oks.pop(pod.name, None)
                        op.down.discard(pod.name)
                        plat.probe_ready(pod, True, t)
                    else:
                        op.oks[pod.name] = n

    def _check_memory(self, t: float) -> None:
        sim = self.sim
        plat = sim.platform
        rp = sim.plane.replicas
        for service in self._memory:
            spec = plat.workloads[service].spec
            limit = spec.resources.limits.memory
            assert limit is not None
            pods, slots, _ = self._steady(service)
            if not slots.size:
                continue
            busy = np.asarray(rp.busy[slots], dtype=np.float64)
            mem = base_memory(spec) + MEMORY_PER_REQUEST * busy
            if any(b.memory_leak for (svc, _), b in plat.behaviour.items() if svc == service):
                leak = np.array([plat.behaviour_of(p).memory_leak for p in pods])
                up = np.array([t - (p.container_started or t) for p in pods])
                mem = mem + leak * up
            for i in np.flatnonzero(mem > limit).tolist():
                plat.container_exit(pods[i], "OOMKilled", t)
        if t + MEMORY_CHECK < sim.scenario.duration:
            sim.clock.schedule(t + MEMORY_CHECK, self._check_memory, priority=2)

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Acts on no timeline entry by itself (deploys are the rollout loop's)."""
        return False

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Add ``pods`` and ``nodes`` to the summary."""
        plat = sim.platform
        end = sim.scenario.duration
        waits = list(plat.pending_waits) + [end - p.created for p in plat.pending_pods()]
        c = plat.counts
        per_service = {}
        for name, w in plat.workloads.items():
            per_service[name] = {
                "restarts": sum(p.restarts for p in w.pods),
                "oom_kills": sum(p.oom_kills for p in w.pods),
            }
        summary["pods"] = {
            "created": c["created"],
            "restarts": c["restarts"],
            "oom_kills": c["oom_kills"],
            "crash_loop_backoffs": c["crash_loop_backoffs"],
            "liveness_kills": c["liveness_kills"],
            "startup_probe_kills": c["startup_probe_kills"],
            "crashes": c["crashes"],
            "readiness_failures": c["readiness_failures"],
            "evicted": c["evicted"],
            "lost_with_node": c["lost"],
            "pending": {
                "pods": c["pending"],
                "still_pending": len(plat.pending_pods()),
                "wait_mean_s": sum(waits) / len(waits) if waits else 0.0,
                "wait_max_s": max(waits) if waits else 0.0,
            },
            "states_max": {
                s: max((h[1][k] for h in plat.phase_history), default=0) for k, s in enumerate(STATES)
            },
            "states_end": dict(plat.phase_counts),
            "services": per_service,
            "phases": {
                "states": list(STATES),
                "series": step_series(plat.phase_history, end),
            },
            "replicas": {
                name: step_series([(t, (r, n)) for t, r, n in w.history], end)
                for name, w in plat.workloads.items()
            },
        }
        cl = plat.cluster
        if cl.implicit:
            return
        nodes = {}
        for key, pool in cl.pools.items():
            ready = [h[1] for h in pool.history]
            nodes[key] = {
                "instance_type": pool.itype.name,
                "zones": pool.zones,
                "autoscaled": pool.autoscaled,
                "min_count": pool.min_count,
                "max_count": pool.max_count,
                "initial": pool.count,
                "final": sum(1 for n in pool.nodes if n.schedulable),
                "min": min(ready, default=0),
                "max": max(ready, default=0),
                "added": pool.added,
                "removed": pool.removed,
                "provisioning_time_s": pool.provisioning_time,
            }
        summary["nodes"] = nodes
