"""The scheduler: which node a pod goes to, or why it stays Pending.

It follows kube-scheduler's default profile, reduced to what a service's
scenario says:

* **Filter** (``NodeResourcesFit``, ``NodeAffinity``, node readiness): the node
  is ready and not failed, lies in the ``placement``'s clouds, regions, zones
  and ``nodePool``, has room for the pod's CPU and memory *requests* and for one
  more pod (``--max-pods`` 110).
* **Topology spread** (``placement.spread: zone | region | cloud``) as a
  ``topologySpreadConstraints`` entry with ``maxSkew: 1`` and
  ``whenUnsatisfiable: DoNotSchedule``: a pod may go to a domain only if, after
  it, that domain holds at most one more pod of the service than the emptiest
  eligible domain. Eligible domains are those with a schedulable node the
  placement allows (a failed zone stops counting, so pods move to the others).
* **Score**: the emptiest spread domain first, then ``NodeResourcesFit``'s
  default ``LeastAllocated`` (the node with the most free CPU and memory,
  averaged), then fewer pods of the same service, then the node name.

When nothing fits, :func:`place` returns ``None`` and a message in the
scheduler's ``FailedScheduling`` form (``0/6 nodes are available: 6 Insufficient
cpu.``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from devopsim.model.nodes import Cluster, Node

if TYPE_CHECKING:
    from devopsim.scenario.infra import Placement

__all__ = ["allowed", "domain", "place"]


def allowed(node: Node, placement: Placement | None) -> bool:
    """Whether the placement's clouds, regions, zones and node pool admit the node."""
    if placement is None:
        return True
    if placement.clouds is not None and node.cloud not in placement.clouds:
        return False
    if placement.regions is not None and node.region not in placement.regions:
        return False
    if placement.zones is not None and node.zone not in placement.zones:
        return False
    return placement.node_pool is None or node.pool.rsplit("/", 1)[-1] == placement.node_pool


def domain(node: Node, spread: str) -> tuple[str, ...]:
    """The node's topology domain at the ``spread`` level."""
    if spread == "zone":
        return (node.cloud, node.region, node.zone)
    if spread == "region":
        return (node.cloud, node.region)
    return (node.cloud,)


def place(
    cluster: Cluster,
    service: str,
    cpu: float,
    memory: float,
    placement: Placement | None,
    nodes: Iterable[Node] | None = None,
) -> tuple[Node | None, str]:
    """Pick the node for one pod of ``service`` with these requests.

    Returns:
        (node, "") when it fits, else (None, the FailedScheduling message).
    """
    pool = list(cluster.nodes.values()) if nodes is None else list(nodes)
    spread = placement.spread if placement is not None else "none"
    eligible = [n for n in pool if n.schedulable and allowed(n, placement)]
    counts: dict[tuple[str, ...], int] = {}
    if spread != "none":
        for n in eligible:
            d = domain(n, spread)
            counts[d] = counts.get(d, 0) + n.services.get(service, 0)
    low = min(counts.values()) if counts else 0
    best: Node | None = None
    best_key: tuple[float, float, int, str] | None = None
    why: dict[str, int] = {}
    total = sum(1 for n in pool if not n.removed)
    for n in pool:
        if n.removed:
            continue
        if not n.schedulable:
            why["node(s) were not ready"] = why.get("node(s) were not ready", 0) + 1
            continue
        if not allowed(n, placement):
            key = "node(s) didn't match Pod's node affinity/selector"
            why[key] = why.get(key, 0) + 1
            continue
        if not n.fits(cpu, memory):
            if len(n.pods) >= n.max_pods:
                why["Too many pods"] = why.get("Too many pods", 0) + 1
            else:
                if n.cpu_used + cpu > n.cpu + 1e-9:
                    why["Insufficient cpu"] = why.get("Insufficient cpu", 0) + 1
                if n.mem_used + memory > n.memory + 1e-6:
                    why["Insufficient memory"] = why.get("Insufficient memory", 0) + 1
            continue
        dom_count = 0
        if spread != "none":
            dom_count = counts[domain(n, spread)]
            if dom_count + 1 - low > 1:
                key = "node(s) didn't match pod topology spread constraints"
                why[key] = why.get(key, 0) + 1
                continue
        free = 0.5 * ((n.cpu - n.cpu_used - cpu) / n.cpu + (n.memory - n.mem_used - memory) / n.memory)
        k = (float(dom_count), -free, n.services.get(service, 0), n.name)
        if best_key is None or k < best_key:
            best, best_key = n, k
    if best is not None:
        return best, ""
    reasons = ", ".join(f"{c} {r}" for r, c in sorted(why.items()))
    return (
        None,
        f"0/{total} nodes are available: {reasons}." if reasons else f"0/{total} nodes are available.",
    )
