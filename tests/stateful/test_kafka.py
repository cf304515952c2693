"""Kafka consumer groups and KEDA's Kafka scaler against their documented behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from devopsim.stateful.kafka import (
    REBALANCE_PAUSE,
    ConsumerGroup,
    keda_desired_replicas,
    keda_total_lag,
    range_assignment,
)


def test_range_assignor_gives_each_partition_one_owner() -> None:
    owners = range_assignment(24, 5)
    assert np.bincount(owners).tolist() == [5, 5, 5, 5, 4]
    assert list(owners[:5]) == [0] * 5  # contiguous ranges, first members take the extra
    many = range_assignment(24, 30)
    assert len(set(many.tolist())) == 24  # six members idle
    assert (range_assignment(3, 0) == -1).all()


def test_lag_grows_at_produce_minus_consume_then_drains_after_scaling() -> None:
    g = ConsumerGroup(partitions=12, capacity=50.0)
    g.set_members(2, 0.0, pause=0.0)
    for k in range(60):
        g.advance(float(k), 1.0, 300.0)
    assert g.total_lag == pytest.approx((300 - 2 * 50) * 60, rel=1e-6)
    g.set_members(12, 60.0)
    assert g.rebalances == 2
    lag0 = g.total_lag
    g.advance(60.0, REBALANCE_PAUSE, 300.0)  # nobody consumes during the rebalance
    assert g.total_lag == pytest.approx(lag0 + 300 * REBALANCE_PAUSE)
    lag1 = g.total_lag
    for k in range(10):
        g.advance(63.0 + k, 1.0, 300.0)
    assert lag1 - g.total_lag == pytest.approx((12 * 50 - 300) * 10, rel=1e-6)


def test_members_beyond_partitions_add_nothing() -> None:
    g = ConsumerGroup(partitions=4, capacity=10.0)
    g.set_members(8, 0.0, pause=0.0)
    assert g.active == 4
    for k in range(10):
        g.advance(float(k), 1.0, 100.0)
    assert g.total_lag == pytest.approx((100 - 4 * 10) * 10, rel=1e-6)


def test_keda_lag_and_replicas_follow_the_formula() -> None:
    lags = np.full(24, 50.0)
    lag = keda_total_lag(lags, 100)
    assert lag.scaling == 1200 and lag.activation == 1200
    assert keda_desired_replicas(lag.scaling, 100, 4, max_replicas=100) == 12
    # Capped at partitions x lagThreshold: never more replicas than partitions.
    huge = keda_total_lag(np.full(24, 1e6), 100)
    assert huge.scaling == 2400
    assert keda_desired_replicas(huge.scaling, 100, 4) == 24
    idle = keda_total_lag(np.full(24, 1e6), 100, allow_idle_consumers=True)
    assert keda_desired_replicas(idle.scaling, 100, 4, max_replicas=1000) == 1000
    # The HPA's 10 % tolerance.
    assert keda_desired_replicas(1050, 100, 10) == 10
    assert keda_desired_replicas(1150, 100, 10) == 12


def test_keda_offsets_and_options() -> None:
    lags = np.array([0.0, 7.0, 0.0, 3.0])
    committed = np.array([False, True, True, True])
    latest = np.array([40.0, 50.0, 60.0, 70.0])
    assert keda_total_lag(lags, 10, committed=committed).scaling == 11  # latest: uncommitted counts 1
    assert keda_total_lag(lags, 10, committed=committed, scale_to_zero_on_invalid_offset=True).scaling == 10
    earliest = keda_total_lag(lags, 10, committed=committed, offset_reset_policy="earliest", latest=latest)
    assert earliest.activation == 50 and earliest.scaling == 40  # whole partition, then the 4 x 10 cap
    assert keda_total_lag(np.array([100.0, 100.0, 0, 0]), 10, limit_to_partitions_with_lag=True).scaling == 20
    persistent = keda_total_lag(lags, 10, persistent=np.array([False, True, False, False]))
    assert persistent.scaling == 3 and persistent.activation == 10
    assert keda_desired_replicas(5, 10, 0, activation_lag_threshold=10) == 0
    assert keda_desired_replicas(11, 10, 0, activation_lag_threshold=10) == 1
    assert keda_desired_replicas(500, 100, 3, partitions=24, ensure_even_distribution=True) == 6
