"""Nodes and node pools: where pods run, and how much room they have.

The scenario's ``platform:`` (clouds -> regions -> zones, and each region's
``nodePools``) becomes a :class:`Cluster` of :class:`Node` objects. A pool's
``count`` nodes are spread round-robin over its ``zones`` (the region's zones
when not given). A node offers its instance type's *allocatable* CPU and
memory: the capacity in ``instance_types.yaml`` less what Kubernetes reserves
for the system, by GKE's documented formula (:func:`allocatable`), and at most
110 pods (the kubelet's ``--max-pods`` default).

Without ``platform:`` (or with no node pools) the cluster is one implicit
node, ``node-1`` in zone ``zone-a`` of region and cloud ``local``, with no
limits: every pod fits, as before nodes were modelled.

A pool is autoscaled (by :mod:`devopsim.control.cluster_autoscaler`) when it
has ``maxCount``; ``minCount`` then defaults to ``count``. A new node is ready
``provisioningTime`` after it is requested (default :data:`DEFAULT_PROVISIONING_TIME`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from devopsim.errors import Issue, ScenarioError

if TYPE_CHECKING:
    from devopsim.scenario.schema import Scenario

__all__ = [
    "DEFAULT_PROVISIONING_TIME",
    "MAX_PODS",
    "Cluster",
    "InstanceType",
    "Node",
    "NodePool",
    "allocatable",
    "instance_type",
    "instance_types",
]

MAX_PODS = 110  # kubelet --max-pods default
# From a cluster autoscaler's request to a node pods can be scheduled on. The cluster
# autoscaler FAQ ("How fast is HPA when combined with CA?"): "on GCE it usually takes 3 to
# 4 minutes from CA request to when pods can be scheduled on newly created nodes".
DEFAULT_PROVISIONING_TIME = 180.0
_GIB = 1024.0**3
_MIB = 1024.0**2


@dataclass(frozen=True)
class InstanceType:
    """A machine type: its cloud, vCPUs and memory (bytes)."""

    name: str
    cloud: str
    vcpu: float
    memory: float


@cache
def instance_types() -> dict[str, InstanceType]:
    """Every known instance type by name (package data ``model/instance_types.yaml``)."""
    text = resources.files("devopsim.model").joinpath("instance_types.yaml").read_text()
    data: dict[str, dict[str, dict[str, Any]]] = yaml.safe_load(text)
    out: dict[str, InstanceType] = {}
    for cloud, types in data.items():
        for name, spec in types.items():
            out[name] = InstanceType(name, cloud, float(spec["vcpu"]), float(spec["memory_gib"]) * _GIB)
    return out


def instance_type(name: str) -> InstanceType:
    """The instance type called ``name``.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    table = instance_types()
    if name not in table:
        raise KeyError(f"unknown instanceType {name!r}; known: {', '.join(sorted(table))}")
    return table[name]


def allocatable(vcpu: float, memory: float) -> tuple[float, float]:
    """Allocatable (cores, bytes) of a node, by GKE's documented reservations.

    CPU: 6 % of the first core, 1 % of the next, 0.5 % of the next two, 0.25 % of the
    rest. Memory: 25 % of the first 4 GiB, 20 % of the next 4, 10 % of the next 8,
    6 % of the next 112, 2 % above 128 GiB, plus the kubelet's 100 MiB eviction
    threshold (cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes).
    """
    cpu_res = 0.0
    for lo, hi, frac in ((0, 1, 0.06), (1, 2, 0.01), (2, 4, 0.005), (4, math.inf, 0.0025)):
        cpu_res += max(0.0, min(vcpu, hi) - lo) * frac
    gib = memory / _GIB
    mem_res = 0.0
    for lo, hi, frac in ((0, 4, 0.25), (4, 8, 0.20), (8, 16, 0.10), (16, 128, 0.06), (128, math.inf, 0.02)):
        mem_res += max(0.0, min(gib, hi) - lo) * frac
    return vcpu - cpu_res, max(0.0, memory - mem_res * _GIB - 100 * _MIB)


@dataclass(eq=False)
class Node:
    """One node: where it is, what it offers, and the requests of the pods bound to it."""

    name: str
    pool: str
    cloud: str
    region: str
    zone: str
    cpu: float
    memory: float
    max_pods: int = MAX_PODS
    created: float = 0.0
    cpu_used: float = 0.0
    mem_used: float = 0.0
    pods: dict[str, Any] = field(default_factory=dict)  # pod name -> Pod
    services: dict[str, int] = field(default_factory=dict)  # service -> pods of it here
    ready: bool = True
    failed: bool = False
    removed: bool = False
    unneeded_since: float | None = None

    @property
    def schedulable(self) -> bool:
        """Ready, not failed and not being removed."""
        return self.ready and not self.failed and not self.removed

    def fits(self, cpu: float, memory: float) -> bool:
        """Whether a pod with these requests fits in what is left."""
        return (
            len(self.pods) < self.max_pods
            and self.cpu_used + cpu <= self.cpu + 1e-9
            and self.mem_used + memory <= self.memory + 1e-6
        )

    def utilization(self) -> float:
        """The larger of the CPU and memory requests over allocatable (the cluster autoscaler's)."""
        u_cpu = self.cpu_used / self.cpu if self.cpu > 0 else 0.0
        u_mem = self.mem_used / self.memory if self.memory > 0 else 0.0
        return max(u_cpu, u_mem)

    def bind(self, pod: Any, cpu: float, memory: float) -> None:
        """Account a pod's requests on this node."""
        self.pods[pod.name] = pod
        self.services[pod.service] = self.services.get(pod.service, 0) + 1
        self.cpu_used += cpu
        self.mem_used += memory

    def unbind(self, pod: Any, cpu: float, memory: float) -> None:
        """Give a pod's requests back."""
        if self.pods.pop(pod.name, None) is None:
            return
        left = self.services.get(pod.service, 1) - 1
        if left:
            self.services[pod.service] = left
        else:
            self.services.pop(pod.service, None)
        self.cpu_used = max(0.0, self.cpu_used - cpu)
        self.mem_used = max(0.0, self.mem_used - memory)


@dataclass(eq=False)
class NodePool:
    """A node pool of one region: its instance type, size bounds and nodes."""

    key: str  # cloud/region/pool
    name: str
    cloud: str
    region: str
    zones: list[str]
    itype: InstanceType
    count: int
    min_count: int
    max_count: int
    autoscaled: bool
    provisioning_time: float
    nodes: list[Node] = field(default_factory=list)
    provisioning: list[tuple[str, float]] = field(default_factory=list)  # (zone, ready at)
    history: list[tuple[float, int, int]] = field(default_factory=list)  # (t, ready nodes, provisioning)
    added: int = 0
    removed: int = 0

    def live(self) -> list[Node]:
        """Nodes not removed (failed ones included: they still count against the pool size)."""
        return [n for n in self.nodes if not n.removed]

    def size(self) -> int:
        """Nodes that exist or are being provisioned."""
        return len(self.live()) + len(self.provisioning)

    def record(self, t: float) -> None:
        """Append the pool's node counts at ``t`` (one entry per instant)."""
        entry = (t, sum(1 for n in self.nodes if n.schedulable), len(self.provisioning))
        if self.history and self.history[-1][0] == t:
            self.history[-1] = entry
        elif not self.history or self.history[-1][1:] != entry[1:]:
            self.history.append(entry)


class Cluster:
    """Every node pool and node of the platform.

    Args:
        scenario: the validated scenario (its ``platform:``).
        source: the scenario file's name, for errors.

    Raises:
        ScenarioError: a node pool names an unknown instance type or zone.
    """

    def __init__(self, scenario: Scenario, source: str = "<scenario>") -> None:
        self.pools: dict[str, NodePool] = {}
        self.nodes: dict[str, Node] = {}
        self.failed_zones: set[tuple[str, str, str]] = set()  # (cloud, region, zone)
        self._seq = 0
        plat = scenario.platform
        issues: list[Issue] = []
        if plat is not None:
            for cname, cloud in plat.clouds.items():
                for rname, region in cloud.regions.items():
                    for i, np_ in enumerate(region.node_pools):
                        path = f"platform.clouds.{cname}.regions.{rname}.nodePools[{i}]"
                        try:
                            it = instance_type(np_.instance_type)
                        except KeyError as e:
                            issues.append(Issue(source, None, f"{path}.instanceType", str(e.args[0])))
                            continue
                        zones = list(np_.zones) if np_.zones else list(region.zones)
                        bad = [z for z in zones if z not in region.zones]
                        if bad:
                            issues.append(
                                Issue(
                                    source,
                                    None,
                                    f"{path}.zones",
                                    f"zones {bad} are not zones of region {rname} ({region.zones})",
                                )
                            )
                            continue
                        autoscaled = np_.max_count is not None
                        lo = np_.min_count if np_.min_count is not None else np_.count
                        hi = np_.max_count if np_.max_count is not None else np_.count
                        if autoscaled and not lo <= np_.count <= hi:
                            issues.append(
                                Issue(
                                    source,
                                    None,
                                    path,
                                    f"count {np_.count} must lie within minCount {lo} and maxCount {hi}",
                                )
                            )
                            continue
                        key = f"{cname}/{rname}/{np_.name}"
                        prov = (
                            np_.provisioning_time
                            if np_.provisioning_time is not None
                            else DEFAULT_PROVISIONING_TIME
                        )
                        pool = NodePool(
                            key, np_.name, cname, rname, zones, it, np_.count, lo, hi, autoscaled, prov
                        )
                        self.pools[key] = pool
                        for k in range(np_.count):
                            self.add_node(pool, zones[k % len(zones)], 0.0)
        if issues:
            raise ScenarioError(issues)
        self.implicit = not self.pools
        if self.implicit:
            it = InstanceType("implicit", "local", math.inf, math.inf)
            pool = NodePool(
                "local/local/default", "default", "local", "local", ["zone-a"], it, 1, 1, 1, False, 0.0
            )
            self.pools[pool.key] = pool
            node = Node("node-1", pool.key, "local", "local", "zone-a", math.inf, math.inf, max_pods=2**62)
            pool.nodes.append(node)
            self.nodes[node.name] = node
        for pool in self.pools.values():
            pool.record(0.0)

    def add_node(self, pool: NodePool, zone: str, t: float) -> Node:
        """Create a ready node of ``pool`` in ``zone`` at ``t``."""
        self._seq += 1
        cpu, mem = allocatable(pool.itype.vcpu, pool.itype.memory)
        name = f"node-{pool.cloud}-{pool.name}-{zone}-{self._seq}".lower()
        node = Node(name, pool.key, pool.cloud, pool.region, zone, cpu, mem, created=t)
        pool.nodes.append(node)
        self.nodes[name] = node
        return node

    def zone_failed(self, cloud: str, region: str, zone: str) -> bool:
        """Whether the zone is down (no node can be provisioned there)."""
        return (cloud, region, zone) in self.failed_zones

    def autoscaled(self) -> list[NodePool]:
        """The pools the cluster autoscaler manages."""
        return [p for p in self.pools.values() if p.autoscaled]

    def node_counts(self) -> dict[str, list[tuple[float, int, int]]]:
        """Each pool's (t, ready nodes, provisioning nodes) history."""
        return {k: list(p.history) for k, p in self.pools.items()}
