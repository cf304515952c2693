"""Which pods a ReplicaSet deletes when it scales down, as the Kubernetes controller picks them.

``pkg/controller/replicaset`` (``getPodsToDelete``) ranks each pod of the
ReplicaSet by the number of *active* pods of the same Deployment (every
ReplicaSet the Deployment owns: ``getIndirectlyRelatedPods``) on the pod's node,
sorts with ``controller.ActivePodsWithRanks`` and deletes the first ``diff``.
``ActivePodsWithRanks.Less`` applies these rules in turn (LogarithmicScaleDown,
default on since 1.22, GA in 1.31):

1. unassigned (no node) before assigned;
2. phase Pending before Unknown before Running;
3. not ready before ready;
4. lower ``controller.kubernetes.io/pod-deletion-cost`` first (default 0);
5. higher rank (more active pods of the Deployment on the same node) first;
6. both ready and ready since different times: the one in the lower
   ``floor(log2(now - readySince in ns))`` bucket (ready more recently) first;
   in the same bucket, the lower UID first (a pseudo-random pick);
7. more container restarts first;
8. created at different times: the lower ``floor(log2(now - created in ns))``
   bucket (newer) first; in the same bucket, the lower UID first.

Timestamps are whole seconds, as the API server stores them (``metav1.Time``),
while ``now`` keeps its fraction, as ``metav1.Now()`` does. The twin's UID is a
hash of the pod's name: deterministic, and as arbitrary among equals as a real
UID. Go's ``sort.Sort`` is not stable; ties the rules leave keep the pods' order.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from functools import cmp_to_key
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devopsim.model.platform import Pod

__all__ = ["PHASE_ORDINAL", "deletion_order", "log2_rank", "node_ranks"]

PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}  # podPhaseToOrdinal


def _seconds(t: float) -> int:
    """A timestamp as the API server keeps it: whole seconds."""
    return math.floor(t + 1e-9)


def log2_rank(now: float, t: float) -> int:
    """``logarithmicRankDiff``'s rank of a timestamp: ``floor(log2(now - t))`` in ns, -1 if not after."""
    d = int((now - _seconds(t)) * 1e9)
    return d.bit_length() - 1 if d > 0 else -1


def node_ranks(pods: Iterable[Pod], related: Iterable[Pod]) -> dict[str, int]:
    """Each pod's rank: the active pods of ``related`` on its node (``getPodsRankedByRelatedPodsOnSameNode``).

    A pod is active while it is not terminating (no deletion timestamp) nor finished.
    """
    on_node: dict[str, int] = {}
    for p in related:
        if p.deleted is None and p.phase.value in ("Starting", "Running"):
            on_node[p.node] = on_node.get(p.node, 0) + 1
    return {p.name: on_node.get(p.node, 0) for p in pods}


def _less(a: Pod, b: Pod, rank: dict[str, int], now: float) -> bool:
    """``ActivePodsWithRanks.Less``: whether ``a`` is deleted before ``b``."""
    if a.node != b.node and (not a.node or not b.node):  # 1. unassigned < assigned
        return not a.node
    pa, pb = PHASE_ORDINAL[a.k8s_phase], PHASE_ORDINAL[b.k8s_phase]
    if pa != pb:  # 2. Pending < Unknown < Running
        return pa < pb
    if a.ready != b.ready:  # 3. not ready < ready
        return not a.ready
    if a.deletion_cost != b.deletion_cost:  # 4. lower pod-deletion-cost
        return a.deletion_cost < b.deletion_cost
    ra, rb = rank[a.name], rank[b.name]
    if ra != rb:  # 5. more colocated pods of the Deployment
        return ra > rb
    if a.ready and b.ready:  # 6. ready more recently (log buckets)
        ta = _seconds(a.ready_since if a.ready_since is not None else a.created)
        tb = _seconds(b.ready_since if b.ready_since is not None else b.created)
        if ta != tb:
            diff = log2_rank(now, ta) - log2_rank(now, tb)
            return a.uid < b.uid if diff == 0 else diff < 0
    if a.restarts != b.restarts:  # 7. more restarts
        return a.restarts > b.restarts
    ca, cb = _seconds(a.created), _seconds(b.created)
    if ca != cb:  # 8. newer (log buckets)
        diff = log2_rank(now, ca) - log2_rank(now, cb)
        return a.uid < b.uid if diff == 0 else diff < 0
    return False


def deletion_order(
    pods: Sequence[Pod], related: Iterable[Pod], now: float, first: int | None = None
) -> list[Pod]:
    """``pods`` (one ReplicaSet's active pods) in the order the controller deletes them.

    Args:
        pods: the ReplicaSet's active pods.
        related: every pod of the Deployment (all its ReplicaSets), for the node ranks.
        now: simulated time of the sync.
        first: only the first ``first`` of that order (``O(n log first)``).
    """
    rank = node_ranks(pods, related)

    def cmp(a: Pod, b: Pod) -> int:
        if _less(a, b, rank, now):
            return -1
        return 1 if _less(b, a, rank, now) else 0

    if first is not None and first < len(pods):
        return heapq.nsmallest(first, pods, key=cmp_to_key(cmp))
    return sorted(pods, key=cmp_to_key(cmp))
