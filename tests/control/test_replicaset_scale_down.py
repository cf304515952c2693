"""Which pods a ReplicaSet deletes on scale-down.

External truth: Kubernetes' ``pkg/controller/replicaset`` ``getPodsToDelete`` with
``controller.ActivePodsWithRanks.Less`` (LogarithmicScaleDown, default since 1.22):
unassigned < assigned; Pending < Unknown < Running; not ready < ready; lower
pod-deletion-cost; more active pods of the Deployment on the node; ready more
recently by ``floor(log2(ns))`` bucket, UID within a bucket; more restarts; newer by
bucket. The orders below are worked out by hand from those rules.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from devopsim.api import _load
from devopsim.control.replicaset import deletion_order, log2_rank
from devopsim.engine.runner import Simulation
from devopsim.model.platform import Pod, PodPhase
from tests.helpers import one_region_platform

NOW = 1000.0


def _pod(
    name: str,
    node: str,
    *,
    ready: bool = True,
    ready_since: float = 100.0,
    created: float = 0.0,
    restarts: int = 0,
    cost: int = 0,
    state: str = "Ready",
    uid: str = "",
    version: str = "v1",
) -> Pod:
    return Pod(
        name=name,
        service="api",
        version=version,
        slot=0,
        created=created,
        phase=PodPhase.RUNNING if node else PodPhase.STARTING,
        ready=ready,
        node=node,
        scheduled=0.0 if node else None,
        ready_since=ready_since if ready else None,
        restarts=restarts,
        state=state if node else "Pending",
        deletion_cost=cost,
        uid=uid or f"m-{name}",
    )


def test_log2_rank_buckets() -> None:
    # 10 s = 1e10 ns: 2^33 = 8.59e9 <= 1e10 < 2^34.  500 s = 5e11 ns: 2^38 = 2.75e11 <= 5e11 < 2^39.
    assert log2_rank(NOW, 990.0) == 33
    assert log2_rank(NOW, 500.0) == 38
    assert log2_rank(NOW, 990.7) == 33  # stored as whole seconds: 990
    assert log2_rank(NOW, NOW) == -1


def test_victim_order_follows_the_controller_rules() -> None:
    pods = [
        _pod("I", "n3", ready_since=200.0, created=100.0, uid="a0"),
        _pod("F", "n1", ready_since=500.0),
        _pod("K", "n4", ready_since=200.0, created=950.0, uid="zz"),
        _pod("G", "n2"),
        _pod("A", ""),  # unassigned: Pending
        _pod("M", "n5", ready_since=700.0, uid="b"),
        _pod("J", "n3", ready_since=200.0, created=900.0, uid="a1"),
        _pod("C", "n1", ready=False, state="NotReady"),
        _pod("H", "n2", restarts=2),
        _pod("B", "n1", ready=False, state="Unknown"),  # its node failed
        _pod("E", "n1", ready_since=990.0),
        _pod("D", "n2", cost=-5),
        _pod("L", "n5", ready_since=600.0, uid="a"),
    ]
    other = _pod("X", "n4", version="v2")  # the new ReplicaSet's pod shares K's node
    gone = _pod("Y", "n3", version="v2")
    gone.phase, gone.deleted = PodPhase.TERMINATING, 990.0  # terminating: not active, not counted
    order = [p.name for p in deletion_order(pods, [*pods, other, gone], NOW)]
    # Ranks: n1 4 (B C E F), n2 3 (D G H), n3 2 (I J), n4 2 (K X), n5 2 (L M).
    # A unassigned; B Unknown; C not ready; D cost -5; E before F: ready 10 s (bucket 33) vs
    # 500 s (38); H before G: same ready time, 2 restarts; rank 2: L and M were ready 400 s
    # and 300 s ago, both bucket 38, so UID "a" < "b" decides; I, J, K ready 800 s ago (39),
    # same time, so creation decides: K 50 s (35) < J 100 s (36) < I 900 s (39).
    assert order == ["A", "B", "C", "D", "E", "F", "H", "G", "L", "M", "K", "J", "I"]
    first = [p.name for p in deletion_order(pods, [*pods, other, gone], NOW, first=9)]
    assert first == order[:9]


def _scenario() -> dict[str, Any]:
    return {
        "name": "rs",
        "duration": "3m",
        "seed": 2,
        "platform": one_region_platform(["zone-a", "zone-b", "zone-c"], {"count": 6}),
        "traffic": {"rate": "20/s", "classes": [{"name": "c", "entry": "api.get"}]},
        "services": {
            "api": {
                "replicas": 9,
                "concurrency": 8,
                "resources": {"requests": {"cpu": "500m"}},
                "placement": {"spread": "zone"},
                "endpoints": {"get": {"steps": [{"work": "exp(5ms)"}]}},
            }
        },
        "timeline": [{"at": "1m", "scale": {"service": "api", "replicas": 3}}],
    }


def test_scale_down_keeps_one_pod_per_zone() -> None:
    # 9 pods over 6 nodes in 3 zones: topology spread puts 3 in each zone, LeastAllocated
    # puts them 2 + 1 on the zone's two nodes. Scaling to 3 deletes the 6 pods whose node
    # holds 2 (rank 2 before rank 1), which leaves the lone pod of each zone.
    sim = Simulation(_load(_scenario(), None))
    sim.run()
    w = sim.platform.workloads["api"]
    before = Counter(p.node for p in w.pods)
    assert sorted(before.values()) == [1, 1, 1, 2, 2, 2]
    left = sim.platform.pods()
    assert len(left) == 3
    assert Counter(p.zone for p in left) == {"zone-a": 1, "zone-b": 1, "zone-c": 1}
    assert all(before[p.node] == 1 for p in left)
