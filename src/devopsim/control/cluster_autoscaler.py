"""The Kubernetes cluster autoscaler: nodes for Pending pods, and idle nodes removed.

Defaults are the cluster autoscaler's own flags (its FAQ and the AKS profile
that documents them):

* every ``--scan-interval`` (10 s) it looks at Pending pods; for each pod that
  would fit on a brand-new node of an autoscaled pool the placement allows
  (in a zone that is not down), it plans a node, packing further Pending pods
  onto planned nodes first, never past the pool's ``maxCount``. Among pools
  that fit it takes the one that leaves the least CPU and memory idle
  (``--expander=least-waste``; the real default, ``random``, is not
  reproducible) and, in a pool spanning zones, the zone with the fewest of the
  pod's service (then the fewest nodes). The node is Ready ``provisioningTime``
  later (``node.added``), and the scheduler binds Pending pods to it.
* A node is *unneeded* while the requests of its pods are below 50 % of its
  allocatable CPU and memory (``--scale-down-utilization-threshold`` 0.5) and
  its pods fit on other nodes. After 10 minutes unneeded
  (``--scale-down-unneeded-time``), and not within 10 minutes of a scale-up
  (``--scale-down-delay-after-add``), it is removed, never below ``minCount``:
  up to 10 empty nodes at once (``--max-empty-bulk-delete``), otherwise one
  node per scan. Its pods are evicted (graceful termination) and replaced on
  the remaining nodes (``node.removed``). A node whose Ready pods are more than a
  service's PodDisruptionBudget allows (``disruptionsAllowed``) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from devopsim.control.scheduler import allowed
from devopsim.model.nodes import Node, NodePool, allocatable

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.model.platform import Pod
    from devopsim.scenario.infra import TimelineEntry

__all__ = [
    "SCALE_DOWN_DELAY_AFTER_ADD",
    "SCALE_DOWN_UNNEEDED_TIME",
    "SCALE_DOWN_UTILIZATION",
    "SCAN_INTERVAL",
    "ClusterAutoscalerLoop",
]

SCAN_INTERVAL = 10.0  # --scan-interval
SCALE_DOWN_UTILIZATION = 0.5  # --scale-down-utilization-threshold
SCALE_DOWN_UNNEEDED_TIME = 600.0  # --scale-down-unneeded-time
SCALE_DOWN_DELAY_AFTER_ADD = 600.0  # --scale-down-delay-after-add
MAX_EMPTY_BULK_DELETE = 10  # --max-empty-bulk-delete


@dataclass
class _Planned:
    pool: NodePool
    zone: str
    cpu: float
    memory: float
    pods: int = 0


class ClusterAutoscalerLoop:
    """Scale-up for Pending pods and scale-down of unneeded nodes, for every autoscaled pool."""

    name = "cluster-autoscaler"

    def __init__(self) -> None:
        self.scale_ups = 0
        self.scale_downs = 0
        self.blocked_by_pdb = 0  # scans where a PodDisruptionBudget kept a node
        self.last_scale_up = -float("inf")

    def attach(self, sim: Simulation) -> None:
        """Start scanning if any node pool is autoscaled."""
        self.sim = sim
        if sim.platform.cluster.autoscaled():
            sim.clock.schedule(0.0, self._scan, priority=3)

    # --- scale-up ---------------------------------------------------------------------------

    def _options(self, pod: Pod) -> list[tuple[NodePool, str]]:
        plat = self.sim.platform
        cl = plat.cluster
        spec = plat.workloads[pod.service].spec
        out = []
        for pool in cl.autoscaled():
            if pool.size() >= pool.max_count:
                continue
            cpu, mem = allocatable(pool.itype.vcpu, pool.itype.memory)
            if pod.cpu_request > cpu or pod.mem_request > mem:
                continue
            for zone in pool.zones:
                if cl.zone_failed(pool.cloud, pool.region, zone):
                    continue
                probe = Node("", pool.key, pool.cloud, pool.region, zone, cpu, mem)
                if allowed(probe, spec.placement):
                    out.append((pool, zone))
        return out

    def _scale_up(self, t: float) -> None:
        plat = self.sim.platform
        pending = plat.pending_pods()
        if not pending:
            return
        planned: list[_Planned] = []
        # Nodes already on their way take Pending pods first.
        for pool in plat.cluster.autoscaled():
            cpu, mem = allocatable(pool.itype.vcpu, pool.itype.memory)
            planned += [_Planned(pool, zone, cpu, mem) for zone, _ in pool.provisioning]
        new: list[_Planned] = []
        extra: dict[str, int] = {}
        for pod in pending:
            spec = plat.workloads[pod.service].spec
            spot = next(
                (
                    p
                    for p in planned
                    if p.cpu >= pod.cpu_request
                    and p.memory >= pod.mem_request
                    and p.pods < 110
                    and allowed(
                        Node("", p.pool.key, p.pool.cloud, p.pool.region, p.zone, 1, 1), spec.placement
                    )
                ),
                None,
            )
            if spot is None:
                options = [
                    (pool, zone)
                    for pool, zone in self._options(pod)
                    if pool.size() + extra.get(pool.key, 0) < pool.max_count
                ]
                if not options:
                    continue
                pool, zone = min(options, key=lambda o: self._rank(o[0], o[1], pod, new))
                cpu, mem = allocatable(pool.itype.vcpu, pool.itype.memory)
                spot = _Planned(pool, zone, cpu, mem)
                planned.append(spot)
                new.append(spot)
                extra[pool.key] = extra.get(pool.key, 0) + 1
            spot.cpu -= pod.cpu_request
            spot.memory -= pod.mem_request
            spot.pods += 1
        for p in new:
            self._provision(p.pool, p.zone, t)

    def _rank(self, pool: NodePool, zone: str, pod: Pod, new: list[_Planned]) -> tuple[float, int, int, str]:
        cpu, mem = allocatable(pool.itype.vcpu, pool.itype.memory)
        waste = 0.5 * ((cpu - pod.cpu_request) / cpu + (mem - pod.mem_request) / mem)
        here = [n for n in pool.live() if n.zone == zone]
        same = sum(n.services.get(pod.service, 0) for n in here)
        same += sum(1 for p in new if p.pool is pool and p.zone == zone)
        nodes = len(here) + sum(1 for z, _ in pool.provisioning if z == zone)
        return (waste, same, nodes, f"{pool.key}/{zone}")

    def _provision(self, pool: NodePool, zone: str, t: float) -> None:
        sim = self.sim
        ready_at = t + pool.provisioning_time
        pool.provisioning.append((zone, ready_at))
        pool.record(t)
        self.scale_ups += 1
        self.last_scale_up = t
        sim.log.emit(
            t, "node.provisioning", pool=pool.key, zone=zone, instance_type=pool.itype.name, ready_at=ready_at
        )
        sim.clock.schedule(ready_at, partial(self._node_up, pool, zone, ready_at), priority=-5)

    def _node_up(self, pool: NodePool, zone: str, ready_at: float, t: float) -> None:
        if (zone, ready_at) not in pool.provisioning:
            return  # cancelled: its zone went down meanwhile
        pool.provisioning.remove((zone, ready_at))
        plat = self.sim.platform
        node = plat.cluster.add_node(pool, zone, t)
        pool.added += 1
        self.sim.log.emit(t, "node.added", node=node.name, pool=pool.key, zone=zone)
        plat.node_ready(node, t)

    # --- scale-down -------------------------------------------------------------------------

    def _movable(self, node: Node) -> bool:
        """Whether every pod of ``node`` fits on the other nodes (first fit, requests only)."""
        plat = self.sim.platform
        others = [n for n in plat.cluster.nodes.values() if n is not node and n.schedulable]
        room = {n.name: [n.cpu - n.cpu_used, n.memory - n.mem_used, n.max_pods - len(n.pods)] for n in others}
        for pod in node.pods.values():
            spec = plat.workloads[pod.service].spec
            fit = next(
                (
                    n
                    for n in others
                    if allowed(n, spec.placement)
                    and room[n.name][0] >= pod.cpu_request - 1e-9
                    and room[n.name][1] >= pod.mem_request - 1e-6
                    and room[n.name][2] >= 1
                ),
                None,
            )
            if fit is None:
                return False
            r = room[fit.name]
            r[0] -= pod.cpu_request
            r[1] -= pod.mem_request
            r[2] -= 1
        return True

    def _budget_allows(self, node: Node) -> bool:
        """Whether evicting the node's Ready pods keeps every PodDisruptionBudget (SEMANTICS 2.8)."""
        plat = self.sim.platform
        ready: dict[str, int] = {}
        for pod in node.pods.values():
            if pod.ready:
                ready[pod.service] = ready.get(pod.service, 0) + 1
        for service, k in ready.items():
            allowed_now = plat.disruptions_allowed(service)
            if allowed_now is not None and k > allowed_now:
                return False
        return True

    def _scale_down(self, t: float) -> None:
        plat = self.sim.platform
        candidates: list[Node] = []
        for pool in plat.cluster.autoscaled():
            for node in pool.live():
                if not node.schedulable:
                    node.unneeded_since = None
                    continue
                if node.utilization() < SCALE_DOWN_UTILIZATION:
                    if node.unneeded_since is None:
                        node.unneeded_since = t
                else:
                    node.unneeded_since = None
                if (
                    node.unneeded_since is not None
                    and t - node.unneeded_since >= SCALE_DOWN_UNNEEDED_TIME - 1e-9
                ):
                    candidates.append(node)
        if not candidates or t - self.last_scale_up < SCALE_DOWN_DELAY_AFTER_ADD - 1e-9:
            return
        candidates.sort(key=lambda n: (len(n.pods) > 0, n.utilization(), n.name))
        removed = 0
        for node in candidates:
            pool = plat.cluster.pools[node.pool]
            if len(pool.live()) <= pool.min_count:
                continue
            if node.pods:
                if removed or not self._movable(node):
                    continue
                if not self._budget_allows(node):
                    self.blocked_by_pdb += 1
                    continue
                self._remove(node, t)
                return
            self._remove(node, t)
            removed += 1
            if removed >= MAX_EMPTY_BULK_DELETE:
                return

    def _remove(self, node: Node, t: float) -> None:
        self.scale_downs += 1
        self.sim.platform.remove_node(node, t)

    # --- the loop ----------------------------------------------------------------------------

    def _scan(self, t: float) -> None:
        self._scale_up(t)
        if not self.sim.platform.pending_pods():
            self._scale_down(t)
        if t + SCAN_INTERVAL < self.sim.scenario.duration:
            self.sim.clock.schedule(t + SCAN_INTERVAL, self._scan, priority=3)

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Acts on no timeline entry."""
        return False

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Add ``cluster_autoscaler`` (nodes requested and removed) to the summary."""
        if not sim.platform.cluster.autoscaled():
            return
        summary["cluster_autoscaler"] = {
            "scale_ups": self.scale_ups,
            "scale_downs": self.scale_downs,
            "pending_at_end": len(sim.platform.pending_pods()),
            "scale_downs_blocked_by_pdb": self.blocked_by_pdb,
        }
