"""Nodes, the scheduler, the cluster autoscaler and node failures.

External truths: GKE's documented node reservations (allocatable), kube-scheduler's
topology spread with maxSkew 1, the cluster autoscaler's documented defaults (10 s
scan, 50 % utilisation threshold, 10 min unneeded time, up to 10 empty nodes at once),
and Kubernetes' eviction of pods from an unreachable node (50 s + 300 s since 1.32).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from devopsim import simulate
from devopsim.api import _load
from devopsim.engine.runner import Simulation
from devopsim.errors import ChaosError, ScenarioError
from devopsim.model.nodes import allocatable
from devopsim.model.platform import EVICTION_DELAY
from tests.helpers import one_region_platform

GI = 1024.0**3
MI = 1024.0**2
ZONES = ["zone-a", "zone-b", "zone-c"]


def _scenario(pool: dict[str, Any], plane: str = "flow", duration: str = "5m", **svc: Any) -> dict[str, Any]:
    return {
        "name": "nodes",
        "duration": duration,
        "seed": 2,
        "plane": plane,
        "platform": one_region_platform(ZONES, pool),
        "traffic": {"rate": "20/s", "classes": [{"name": "c", "entry": "api.get"}]},
        "services": {
            "api": {
                "concurrency": 8,
                "endpoints": {"get": {"steps": [{"work": "exp(5ms)"}]}},
                **svc,
            }
        },
    }


def _sim(data: dict[str, Any]) -> Simulation:
    return Simulation(_load(data, None))


def test_allocatable_follows_gke_reservations() -> None:
    # 4 vCPU: 6 % of core 1 + 1 % of core 2 + 0.5 % of cores 3-4 = 0.08 reserved.
    # 16 GiB: 25 % of 4 + 20 % of 4 + 10 % of 8 = 2.6 GiB, plus 100 MiB eviction threshold.
    cpu, mem = allocatable(4, 16 * GI)
    assert cpu == pytest.approx(3.92)
    assert mem == pytest.approx(16 * GI - 2.6 * GI - 100 * MI)


def test_spread_across_three_zones() -> None:
    sim = _sim(
        _scenario(
            {"count": 6}, replicas=9, resources={"requests": {"cpu": "500m"}}, placement={"spread": "zone"}
        )
    )
    sim.run()
    zones = Counter(p.zone for p in sim.platform.pods())
    assert zones == {"zone-a": 3, "zone-b": 3, "zone-c": 3}
    nodes = Counter(p.node for p in sim.platform.pods())
    assert max(nodes.values()) - min(nodes.values()) <= 1  # LeastAllocated spreads over nodes too


def test_placement_zones_restrict_nodes() -> None:
    sim = _sim(_scenario({"count": 3}, replicas=4, placement={"zones": ["zone-b"]}))
    sim.run()
    assert {p.zone for p in sim.platform.pods()} == {"zone-b"}
    assert {p.cloud for p in sim.platform.pods()} == {"aws"}
    assert {p.labels()["region"] for p in sim.platform.pods()} == {"us-east-1"}


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_pending_until_the_autoscaler_adds_a_node(plane: str) -> None:
    # One node (3.92 cores allocatable) and two pods asking 2 cores each: the second is
    # Pending at 0. The autoscaler's first scan (t = 0) asks for a node, ready after the
    # pool's provisioningTime (90 s): the pod is bound at 90 and Ready then (startup 0).
    pool = {"count": 1, "minCount": 1, "maxCount": 3, "provisioningTime": "90s"}
    r = simulate(_scenario(pool, plane, replicas=2, resources={"requests": {"cpu": "2"}}))
    [pending] = [e for e in r.events if e["kind"] == "pod.pending"]
    assert pending["t"] == 0.0 and "Insufficient cpu" in pending["message"]
    [added] = [e for e in r.events if e["kind"] == "node.added"]
    assert added["t"] == pytest.approx(90.0)
    [sched] = [e for e in r.events if e["kind"] == "pod.scheduled"]
    assert sched["pod"] == pending["pod"] and sched["t"] == pytest.approx(90.0)
    ready = [e for e in r.events if e["kind"] == "pod.ready" and e["pod"] == pending["pod"]]
    assert ready[0]["t"] == pytest.approx(90.0)
    assert r.summary["pods"]["pending"]["wait_max_s"] == pytest.approx(90.0)
    assert r.summary["nodes"]["aws/us-east-1/general"]["added"] == 1
    assert r.summary["nodes"]["aws/us-east-1/general"]["max"] == 2


def test_fixed_pool_leaves_pods_pending() -> None:
    r = simulate(_scenario({"count": 1}, replicas=2, resources={"requests": {"cpu": "2"}}))
    assert [e for e in r.events if e["kind"] == "node.added"] == []
    assert r.summary["pods"]["pending"]["still_pending"] == 1
    assert r.summary["pods"]["states_end"]["Pending"] == 1
    assert r.summary["pods"]["states_end"]["Ready"] == 1


def test_max_count_is_respected() -> None:
    # 6 pods of 2 cores need 6 nodes; maxCount 4 allows 3 more than the first.
    pool = {"count": 1, "minCount": 1, "maxCount": 4, "provisioningTime": "60s"}
    r = simulate(_scenario(pool, replicas=6, resources={"requests": {"cpu": "2"}}))
    assert len([e for e in r.events if e["kind"] == "node.added"]) == 3
    assert r.summary["pods"]["pending"]["still_pending"] == 2


def test_scale_down_empty_nodes_after_ten_minutes() -> None:
    # 3 nodes, one small pod: the two empty nodes are unneeded from the first scan (t = 0)
    # and removed at t = 600 s (scale-down-unneeded-time 10 min), together (empty bulk).
    pool = {"count": 3, "minCount": 1, "maxCount": 5}
    r = simulate(_scenario(pool, duration="15m", replicas=1, resources={"requests": {"cpu": "100m"}}))
    removed = [e for e in r.events if e["kind"] == "node.removed"]
    assert [e["t"] for e in removed] == [600.0, 600.0]
    assert r.summary["nodes"]["aws/us-east-1/general"]["final"] == 1


def test_scale_down_moves_pods_one_node_per_scan() -> None:
    # 3 nodes, one 1-core pod on each (26 % of a node, below 50 %): at 600 s one node is
    # drained (its pod evicted and replaced elsewhere), at 610 s the next; minCount 1 stops it.
    pool = {"count": 3, "minCount": 1, "maxCount": 5}
    sim = _sim(_scenario(pool, duration="15m", replicas=3, resources={"requests": {"cpu": "1"}}))
    out = sim.run()
    removed = [e["t"] for e in out.log.events if e["kind"] == "node.removed"]
    assert removed == [600.0, 610.0]
    evicted = [e for e in out.log.events if e["kind"] == "pod.evicted"]
    assert len(evicted) == 2
    pods = [p for p in sim.platform.pods() if p.phase.value != "Terminating"]
    assert len(pods) == 3 and len({p.node for p in pods}) == 1


def _fail_zone_run(delay: float | None) -> tuple[Simulation, list[str], Any]:
    sim = _sim(
        _scenario(
            {"count": 3},
            duration="10m",
            replicas=6,
            resources={"requests": {"cpu": "500m"}},
            placement={"spread": "zone"},
        )
    )
    victims: list[str] = []

    def fail(t: float) -> None:
        victims.extend(p.name for p in sim.platform.pods() if p.zone == "zone-b")
        sim.platform.fail_zone("zone-b", t, eviction_delay=delay)

    sim.clock.schedule(100.0, fail)
    return sim, victims, sim.run()


def test_fail_zone_kills_exactly_that_zones_pods() -> None:
    sim, victims, out = _fail_zone_run(None)
    assert len(victims) == 2
    evicted = [e for e in out.log.events if e["kind"] == "pod.evicted"]
    assert sorted(e["pod"] for e in evicted) == sorted(victims)
    # Kubernetes replaces them only after 40 s + the 300 s unreachable toleration
    assert all(e["t"] == pytest.approx(100.0 + EVICTION_DELAY) for e in evicted)
    assert EVICTION_DELAY == 350.0  # 50 s node-monitor grace (1.32+) + 300 s toleration
    zones = Counter(p.zone for p in sim.platform.pods())
    assert zones == {"zone-a": 3, "zone-c": 3}  # spread over the zones left
    failed = [e for e in out.log.events if e["kind"] == "node.failed"]
    assert [e["zone"] for e in failed] == ["zone-b"]


def test_fail_zone_with_immediate_replacement_and_recovery() -> None:
    sim, victims, out = _fail_zone_run(0.0)
    created = [e for e in out.log.events if e["kind"] == "pod.created" and e["t"] == 100.0]
    assert len(created) == len(victims) == 2
    assert out.summary["pods"]["lost_with_node"] == 2
    with pytest.raises(ChaosError, match="no zone named"):
        sim.platform.fail_zone("zone-x", 200.0)


def test_no_platform_keeps_one_implicit_node() -> None:
    data = _scenario({"count": 1}, replicas=3)
    del data["platform"]
    sim = _sim(data)
    sim.run()
    assert {(p.node, p.zone, p.region, p.cloud) for p in sim.platform.pods()} == {
        ("node-1", "zone-a", "local", "local")
    }


def test_unknown_instance_type_is_a_scenario_error() -> None:
    data = _scenario({"count": 1}, replicas=1)
    data["platform"]["clouds"]["aws"]["regions"]["us-east-1"]["nodePools"][0]["instanceType"] = "m9.huge"
    with pytest.raises(ScenarioError, match=r"instanceType.*m9\.huge.*known: "):
        _sim(data)


@pytest.mark.parametrize(
    ("pdb", "allowed"),
    [
        ({"minAvailable": "50%"}, 5),  # ceil(50 % x 10) = 5 healthy needed, 10 healthy
        ({"maxUnavailable": "25%"}, 3),  # 10 - ceil(2.5) = 7 needed
        ({"minAvailable": 8}, 2),
        ({"maxUnavailable": 0}, 0),
        ({"minAvailable": "100%"}, 0),
    ],
)
def test_disruptions_allowed(pdb: dict[str, Any], allowed: int) -> None:
    sim = _sim(_scenario({"count": 4}, duration="1m", replicas=10, podDisruptionBudget=pdb))
    sim.run()
    assert sim.platform.disruptions_allowed("api") == allowed


def test_pdb_blocks_scale_down() -> None:
    pool = {"count": 3, "minCount": 1, "maxCount": 5}
    base = {"replicas": 3, "resources": {"requests": {"cpu": "1"}}}
    kept = simulate(_scenario(pool, duration="15m", podDisruptionBudget={"minAvailable": 3}, **base))
    assert [e for e in kept.events if e["kind"] == "node.removed"] == []
    assert kept.summary["cluster_autoscaler"]["scale_downs_blocked_by_pdb"] > 0
    moved = simulate(_scenario(pool, duration="15m", podDisruptionBudget={"maxUnavailable": 1}, **base))
    assert [e["t"] for e in moved.events if e["kind"] == "node.removed"] == [600.0, 610.0]


def test_pdb_needs_exactly_one_field() -> None:
    with pytest.raises(ScenarioError, match="exactly one of minAvailable or maxUnavailable"):
        _sim(_scenario({"count": 1}, replicas=1, podDisruptionBudget={}))
