"""What a run cost: node pools by the hour, services by their share of the nodes, idle capacity, egress.

* **Node pools** are billed per instance-hour at the packaged on-demand price
  (:mod:`devopsim.cost.prices`): when the platform models nodes, the pool's
  node history (ready nodes plus nodes being provisioned; failed nodes are not
  billed); otherwise each pool's ``count`` nodes for the whole run.
* **Services** pay for what their pods request: a pod's share of a node is the
  larger of its CPU request over the node's vCPUs and its memory request over
  the node's memory (the dominant resource), times the node's hourly price,
  for every second the pod exists, on the pool of the node it is bound to
  (Pending pods cost nothing). Where the platform does not say which node a
  pod runs on, its pods are spread evenly over the pools its placement allows
  (all pools without a placement).
* **Datastores** run off the node pools (managed, or on dedicated nodes): their
  pods are priced like pods of the pools their placement allows, and added to
  ``compute`` as ``datastores``.
* **Idle** capacity is what the nodes cost beyond what pods requested
  (``unrequested``), plus the requested CPU the pods did not use
  (``unused_requests``: service cost x (1 - CPU utilisation)).
* **Egress**: every answered request sends ``RESPONSE_BYTES`` to the
  internet from the region that served it (the front door's split), at that
  cloud's first-tier internet egress price.

``summary["cost"] = {currency, total, by_cloud, by_service, by_node_pool,
idle, egress, price_table_date, assumptions}``, all in the table's currency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devopsim.cost.prices import InstancePrice, PriceTable, price_table
from devopsim.errors import ScenarioError

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.infra import TimelineEntry

__all__ = ["RESPONSE_BYTES", "CostLoop", "pod_seconds"]

RESPONSE_BYTES = 4 * 1024  # bytes sent to the client per answered request (an assumption, reported)
GIB = 1024.0**3


def pod_seconds(history: list[tuple[float, int, int]], t1: float) -> float:
    """Seconds of existing pods over ``[0, t1]`` from a workload's ``(t, ready, existing)`` steps."""
    total = 0.0
    for i, (t, _, n) in enumerate(history):
        end = history[i + 1][0] if i + 1 < len(history) else t1
        total += n * max(0.0, min(end, t1) - min(t, t1))
    return total


def _r(x: float) -> float:
    return round(float(x), 6)


class CostLoop:
    """Prices the run in ``finish`` (it schedules nothing)."""

    name = "cost"

    def __init__(self, table: PriceTable | None = None, response_bytes: float = RESPONSE_BYTES) -> None:
        self.table = table or price_table()
        self.response_bytes = response_bytes
        self.pools: dict[str, tuple[str, str, InstancePrice, int]] = {}  # key -> cloud, region, price, count

    def attach(self, sim: Simulation) -> None:
        """Look every node pool's instance type up in the price table.

        Raises:
            ScenarioError: a node pool's instance type is not in the table.
        """
        sc = sim.scenario
        if sc.platform is None:
            return
        issues = []
        for cloud, cl in sc.platform.clouds.items():
            for region, rg in cl.regions.items():
                for i, pool in enumerate(rg.node_pools):
                    price = self.table.instance(cloud, region, pool.instance_type)
                    if price is None:
                        path = (
                            "platform",
                            "clouds",
                            cloud,
                            "regions",
                            region,
                            "nodePools",
                            i,
                            "instanceType",
                        )
                        known = ", ".join(self.table.instance_types(cloud)) or "none (unknown cloud)"
                        issues.append(
                            sim.loaded.source.issue(
                                path,
                                f"no price for {pool.instance_type!r} on {cloud} in the price table "
                                f"({self.table.date}); priced types: {known}",
                            )
                        )
                        continue
                    self.pools[f"{cloud}/{region}/{pool.name}"] = (cloud, region, price, pool.count)
        if issues:
            raise ScenarioError(issues)

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Acts on no timeline entry."""
        return False

    # --- pricing ----------------------------------------------------------------------------

    def _node_hours(self, sim: Simulation, key: str, count: int) -> float:
        """Instance-hours of one pool: the platform's node history when it models nodes, else ``count``."""
        t1 = sim.scenario.duration
        cluster = getattr(sim.platform, "cluster", None)
        pool = getattr(cluster, "pools", {}).get(key) if cluster is not None else None
        history = getattr(pool, "history", None)
        if history:
            # (t, ready nodes, nodes being provisioned): billed from the request on.
            steps = [(float(h[0]), 0, int(h[1]) + int(h[2])) for h in history]
            return pod_seconds(steps, t1) / 3600.0
        return count * t1 / 3600.0

    def _pod_pool(self, sim: Simulation, node: str) -> str | None:
        """The pool key of the node a pod is bound to, when the platform models nodes."""
        cluster = getattr(sim.platform, "cluster", None)
        if cluster is None or getattr(cluster, "implicit", True):
            return None
        n = cluster.nodes.get(node) if node else None
        return None if n is None else str(n.pool)

    def _pools_of(self, sim: Simulation, service: str) -> list[str]:
        pl = sim.scenario.services[service].placement
        keys = []
        for key, (cloud, region, _, _) in self.pools.items():
            if pl is not None:
                if pl.clouds is not None and cloud not in pl.clouds:
                    continue
                if pl.regions is not None and region not in pl.regions:
                    continue
                if pl.node_pool is not None and key.rsplit("/", 1)[1] != pl.node_pool:
                    continue
            keys.append(key)
        return keys or list(self.pools)

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Add ``cost`` to the summary."""
        if not self.pools:
            return
        sc = sim.scenario
        t1 = sc.duration
        by_pool: dict[str, float] = {}
        by_cloud: dict[str, float] = {}
        for key, (cloud, _, price, count) in self.pools.items():
            c = self._node_hours(sim, key, count) * price.hourly
            by_pool[key] = c
            by_cloud[cloud] = by_cloud.get(cloud, 0.0) + c
        by_service: dict[str, float] = {}
        unused = 0.0
        off_pool: dict[str, float] = {}  # services outside the node pools (datastores), by cloud
        off_names = set(getattr(sim.platform, "off_pool", set()))
        for name, w in sim.platform.workloads.items():
            spec = w.spec
            cpu = spec.resources.requests.cpu if spec.resources.requests.cpu is not None else spec.cores
            mem = (spec.resources.requests.memory or 0.0) / GIB
            keys = self._pools_of(sim, name)
            rate = 0.0  # per pod-second, averaged over the pools the pods spread over
            for k in keys:
                p = self.pools[k][2]
                rate += max(cpu / p.vcpu, mem / p.memory_gib) * p.hourly / 3600.0
            rate /= len(keys)
            c = 0.0
            placed = False
            for pod in w.pods:
                pk = self._pod_pool(sim, getattr(pod, "node", ""))
                if pk is None or pk not in self.pools:
                    continue
                placed = True
                p = self.pools[pk][2]
                end = t1 if pod.deleted is None else min(float(pod.deleted), t1)
                c += max(0.0, end - pod.created) * max(cpu / p.vcpu, mem / p.memory_gib) * p.hourly / 3600.0
            if not placed:
                c = pod_seconds(w.history, t1) * rate
            if name in off_names:
                # Their own (managed or dedicated) capacity, priced like the pools they may use.
                clouds = sorted({self.pools[k][0] for k in keys})
                for cl in clouds:
                    off_pool[cl] = off_pool.get(cl, 0.0) + c / len(clouds)
            by_service[name] = c
            util = (summary.get("services", {}).get(name) or {}).get("utilization")
            if isinstance(util, int | float):
                unused += c * max(0.0, 1.0 - float(util))
        pools_total = sum(by_pool.values())
        dedicated = sum(off_pool.values())
        for cloud, c in off_pool.items():
            by_cloud[cloud] = by_cloud.get(cloud, 0.0) + c
        compute = pools_total + dedicated
        requested = sum(c for n, c in by_service.items() if n not in off_names)
        egress_cloud = self._egress(sim, summary)
        for cloud, c in egress_cloud.items():
            by_cloud[cloud] = by_cloud.get(cloud, 0.0) + c
        egress = sum(egress_cloud.values())
        summary["cost"] = {
            "currency": self.table.currency,
            "total": _r(compute + egress),
            "compute": _r(compute),
            "by_cloud": {k: _r(v) for k, v in by_cloud.items()},
            "by_service": {k: _r(v) for k, v in by_service.items()},
            "by_node_pool": {k: _r(v) for k, v in by_pool.items()},
            "datastores": _r(dedicated),
            "idle": {
                "unrequested": _r(max(0.0, pools_total - requested)),
                "unused_requests": _r(unused),
                "total": _r(max(0.0, pools_total - requested) + unused),
                "share": _r((max(0.0, pools_total - requested) + unused) / compute) if compute > 0 else None,
            },
            "egress": {"total": _r(egress), "by_cloud": {k: _r(v) for k, v in egress_cloud.items()}},
            "price_table_date": self.table.date,
            "hours": _r(t1 / 3600.0),
            "assumptions": {
                "response_bytes": self.response_bytes,
                "prices": "on-demand Linux, no discounts; disks, load balancers and DNS not priced",
                "regions_without_own_price": sorted(
                    k for k, (_, _, p, _) in self.pools.items() if not p.exact_region
                ),
            },
        }

    def _egress(self, sim: Simulation, summary: dict[str, Any]) -> dict[str, float]:
        """Internet egress cost by cloud: answered requests x response size, split by serving region."""
        answered = sum(int(c.get("ok", 0)) for c in summary.get("classes", {}).values())
        fd = summary.get("frontdoor")
        shares: dict[str, float] = {}
        if isinstance(fd, dict) and fd.get("clients"):
            for c in fd["clients"].values():
                region = c.get("region")
                if region:
                    cloud = region.split("/", 1)[0]
                    shares[cloud] = shares.get(cloud, 0.0) + float(c["share"])
        else:
            clouds = sorted({cloud for cloud, *_ in self.pools.values()})
            shares = {c: 1.0 / len(clouds) for c in clouds}
        gb = answered * self.response_bytes / 1e9
        out: dict[str, float] = {}
        for cloud, s in shares.items():
            price = self.table.egress_per_gb(cloud)
            if price is not None:
                out[cloud] = gb * s * price
        return out
