"""Kafka as the twin models it: partitions, consumer groups, lag, rebalances, KEDA's scaler.

A consumer group gives each partition to at most one member (Kafka's
``RangeAssignor``: members sorted, ``P // C`` partitions each, the first ``P % C``
one more), so members beyond the partition count sit idle. Lag is carried per
partition as a fluid: messages arrive at the produce rate spread evenly over
partitions, and each member consumes up to its capacity from the partitions
it owns. While the group rebalances (a member joined or left) nobody consumes.

:func:`keda_total_lag` and :func:`keda_desired_replicas` are KEDA's Kafka scaler
and the HPA it drives, exactly as reference/SEMANTICS.md section 4.2 gives them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BROKER_SESSION_TIMEOUT",
    "REBALANCE_PAUSE",
    "SESSION_TIMEOUT",
    "ConsumerGroup",
    "KedaLag",
    "keda_desired_replicas",
    "keda_total_lag",
    "range_assignment",
]

REBALANCE_PAUSE = 3.0  # seconds a join/leave stops the group (group.initial.rebalance.delay.ms = 3000)
SESSION_TIMEOUT = 45.0  # session.timeout.ms (Kafka 3.0+): a crashed member is noticed after this
BROKER_SESSION_TIMEOUT = 9.0  # broker.session.timeout.ms (KRaft): a dead broker's partitions lose leaders


def range_assignment(partitions: int, consumers: int) -> np.ndarray:
    """Owner of each partition under the RangeAssignor (-1: no consumer)."""
    if consumers <= 0:
        return np.full(partitions, -1, dtype=np.int64)
    per, extra = divmod(partitions, consumers)
    counts = np.array([per + (1 if i < extra else 0) for i in range(consumers)], dtype=np.int64)
    return np.repeat(np.arange(consumers, dtype=np.int64), counts)


class ConsumerGroup:
    """One consumer group on one topic, as a fluid per partition.

    Args:
        partitions: the topic's partition count.
        capacity: messages per second one member can process.
    """

    def __init__(self, partitions: int, capacity: float) -> None:
        if partitions < 1:
            raise ValueError(f"a topic has at least one partition (got {partitions})")
        self.partitions = partitions
        self.capacity = capacity
        self.lag = np.zeros(partitions)
        self.members = 0
        self.owner = range_assignment(partitions, 0)
        self.paused_until = -math.inf
        self.rebalances = 0
        self.consumed = 0.0
        self.produced = 0.0
        self.committed = np.zeros(partitions)  # messages consumed from each partition (offsets)

    @property
    def active(self) -> int:
        """Members that own at least one partition."""
        return min(self.members, self.partitions)

    def set_members(
        self, members: int, now: float, pause: float = REBALANCE_PAUSE, changed: bool = False
    ) -> None:
        """The group now has ``members``; a change (or ``changed``: same count, other members)
        triggers a rebalance pause."""
        if members == self.members and not changed:
            return
        self.members = members
        self.owner = range_assignment(self.partitions, members)
        self.rebalances += 1
        self.paused_until = now + pause

    def advance(self, t0: float, dt: float, produce_rate: float) -> float:
        """Carry the lag from ``t0`` over ``dt`` seconds; returns the messages consumed."""
        arrive = produce_rate * dt / self.partitions
        self.produced += produce_rate * dt
        self.lag += arrive
        start = max(t0, self.paused_until)
        work_time = max(0.0, t0 + dt - start)
        if work_time <= 0 or self.members <= 0:
            return 0.0
        budget = self.capacity * work_time
        owned = self.owner >= 0
        want = np.bincount(self.owner[owned], weights=self.lag[owned], minlength=self.members)
        take = np.minimum(want, budget)
        # Each member drains its partitions in proportion to their lag.
        share = np.where(want > 0, take / np.where(want > 0, want, 1.0), 0.0)
        frac = np.zeros(self.partitions)
        frac[owned] = share[self.owner[owned]]
        done = self.lag * frac
        self.lag -= done
        self.committed += done
        total = float(done.sum())
        self.consumed += total
        return total

    def settle(self, produced: float, consumed: float, by_member: np.ndarray | None = None) -> float:
        """Book what the data plane did: ``produced`` messages and ``consumed`` (committed) ones.

        Produced messages spread evenly over the partitions (keys hash uniformly). The
        consumed ones come from the partitions members own: ``by_member[i]`` (what member
        ``i`` processed) from member ``i``'s partitions, up to their lag; the rest (or all of
        ``consumed`` when ``by_member`` is not given) as equal shares of the members with lag
        left. Within a member, in proportion to its partitions' lag. Returns the messages
        actually taken (at most the lag).
        """
        self.produced += produced
        self.lag += produced / self.partitions
        owned = self.owner >= 0
        if consumed <= 0 or self.members <= 0 or not owned.any():
            return 0.0
        want = np.bincount(self.owner[owned], weights=self.lag[owned], minlength=self.members)
        take = np.zeros(self.members)
        if by_member is not None:
            own = np.zeros(self.members)
            n = min(self.members, len(by_member))
            own[:n] = np.maximum(np.asarray(by_member, dtype=np.float64)[:n], 0.0)
            take = np.minimum(own, want)
        left = min(consumed - float(take.sum()), float(want.sum() - take.sum()))
        open_ = want - take > 1e-12
        while left > 1e-12 and open_.any():
            share = left / int(open_.sum())
            step = np.where(open_, np.minimum(want - take, share), 0.0)
            take += step
            left -= float(step.sum())
            open_ &= want - take > 1e-12
        with np.errstate(invalid="ignore", divide="ignore"):
            frac_m = np.where(want > 0, take / want, 0.0)
        frac = np.zeros(self.partitions)
        frac[owned] = frac_m[self.owner[owned]]
        done = self.lag * frac
        self.lag = np.maximum(self.lag - done, 0.0)
        self.committed += done
        total = float(done.sum())
        self.consumed += total
        return total

    def member_lag(self) -> np.ndarray:
        """Each member's lag (the sum over the partitions it owns)."""
        owned = self.owner >= 0
        return np.bincount(self.owner[owned], weights=self.lag[owned], minlength=max(self.members, 0))

    def member_partitions(self) -> np.ndarray:
        """How many partitions each member owns."""
        owned = self.owner >= 0
        return np.bincount(self.owner[owned], minlength=max(self.members, 0))

    @property
    def total_lag(self) -> float:
        """Messages produced and not yet consumed."""
        return float(self.lag.sum())


@dataclass(frozen=True)
class KedaLag:
    """What KEDA's Kafka scaler reports.

    Attributes:
        scaling: the lag the HPA sees (capped as the settings say).
        activation: the lag compared with ``activationLagThreshold``.
    """

    scaling: float
    activation: float


def keda_total_lag(
    lags: np.ndarray,
    lag_threshold: float,
    *,
    committed: np.ndarray | None = None,
    latest: np.ndarray | None = None,
    offset_reset_policy: str = "latest",
    scale_to_zero_on_invalid_offset: bool = False,
    allow_idle_consumers: bool = False,
    limit_to_partitions_with_lag: bool = False,
    persistent: np.ndarray | None = None,
) -> KedaLag:
    """KEDA's Kafka scaler lag (``pkg/scalers/kafka_scaler.go``).

    Args:
        lags: ``latestOffset - committedOffset`` of each partition.
        lag_threshold: ``lagThreshold``.
        committed: False where the group has never committed an offset (default: all committed).
        latest: each partition's latest offset (the lag of an uncommitted partition under ``earliest``).
        offset_reset_policy: ``latest`` or ``earliest``.
        scale_to_zero_on_invalid_offset: an uncommitted partition counts 0 under ``latest``.
        allow_idle_consumers: do not cap the lag at ``partitions × lagThreshold``.
        limit_to_partitions_with_lag: cap at ``partitionsWithLag × lagThreshold``.
        persistent: True where ``excludePersistentLag`` found the committed offset unmoved.
    """
    lag = np.asarray(lags, dtype=np.float64).copy()
    if committed is not None:
        missing = ~np.asarray(committed, dtype=bool)
        if offset_reset_policy == "latest":
            lag[missing] = 0.0 if scale_to_zero_on_invalid_offset else 1.0
        else:
            if latest is None:
                raise ValueError("the earliest policy needs each partition's latest offset")
            lag[missing] = np.asarray(latest, dtype=np.float64)[missing]
    activation = float(lag.sum())
    if persistent is not None:
        lag[np.asarray(persistent, dtype=bool)] = 0.0
    total = float(lag.sum())
    n = lag.size
    if not allow_idle_consumers:
        total = min(total, n * lag_threshold)
    if limit_to_partitions_with_lag:
        total = min(total, int(np.count_nonzero(lag > 0)) * lag_threshold)
    return KedaLag(total, activation)


def _next_factor(n: int, partitions: int) -> int:
    for f in range(max(n, 1), partitions + 1):
        if partitions % f == 0:
            return f
    return n


def keda_desired_replicas(
    total_lag: float,
    lag_threshold: float,
    current: int,
    *,
    activation_lag: float | None = None,
    activation_lag_threshold: float = 0.0,
    min_replicas: int = 0,
    max_replicas: int = 100,
    partitions: int | None = None,
    ensure_even_distribution: bool = False,
    tolerance: float = 0.1,
) -> int:
    """Replicas after one KEDA poll and HPA sync, without ``behavior`` limits.

    The HPA reads an External ``AverageValue`` metric with target ``lagThreshold``:
    ``desired = ceil(totalLag / lagThreshold)`` unless ``|totalLag / (lagThreshold × current) - 1|``
    is within the tolerance. KEDA itself scales 0 -> 1 when the activation lag exceeds
    ``activationLagThreshold`` (and back to 0 after ``cooldownPeriod``, which the caller times).
    """
    act = total_lag if activation_lag is None else activation_lag
    active = act > activation_lag_threshold
    if current == 0:
        return max(1, min_replicas) if active else min_replicas
    if not active and min_replicas == 0:
        return current  # KEDA's cooldown decides when to go to zero
    ratio = total_lag / (lag_threshold * current)
    desired = current if abs(ratio - 1.0) <= tolerance else math.ceil(total_lag / lag_threshold)
    if ensure_even_distribution and partitions:
        desired = _next_factor(desired, partitions)
    return int(min(max(desired, max(min_replicas, 1)), max_replicas))
