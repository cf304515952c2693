"""PostgreSQL models against Patroni's documented timings, PostgreSQL's replication rules and theory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devopsim.stateful.postgres import (
    ARCHIVE_SEGMENT,
    PROMOTE_TIME,
    ReplicationLink,
    backup_plan,
    conflict_rate,
    failover_timeline,
    parse_schedule,
    patroni_timing,
    sync_commit_delay,
)


def test_patroni_defaults_and_validation_rule() -> None:
    t = patroni_timing()
    assert (t.ttl, t.loop_wait, t.retry_timeout, t.warnings) == (30, 10, 10, ())
    low = patroni_timing(ttl=5, loop_wait=1, retry_timeout=1)
    assert (low.ttl, low.loop_wait, low.retry_timeout) == (20, 2, 3)
    bad = patroni_timing(ttl=30, loop_wait=10, retry_timeout=15)
    assert bad.loop_wait + 2 * bad.retry_timeout <= bad.ttl
    assert any("loop_wait + 2*retry_timeout" in w for w in bad.warnings)


def test_failover_timeline_follows_patroni_defaults() -> None:
    t = patroni_timing()
    rtos = []
    for u in np.linspace(0, 9.999, 21):
        for v in np.linspace(0, 9.999, 21):
            tl = failover_timeline(100.0, t, lease_phase=float(u), loop_phase=float(v))
            # The lease expires between ttl - loop_wait and ttl after the crash (20-30 s) ...
            assert 20.0 - 1e-9 <= tl.lease_expired - 100.0 <= 30.0
            # ... a replica notices on its next loop, within loop_wait ...
            assert 0.0 <= tl.detected - tl.lease_expired < 10.0
            # ... and promotes in about a second.
            assert tl.promoted - tl.detected == pytest.approx(PROMOTE_TIME)
            rtos.append(tl.rto)
    # RTO about 25-45 s with defaults (SEMANTICS 7.2): our range and mean.
    assert min(rtos) >= 21.0 - 1e-9 and max(rtos) <= 41.0
    assert np.mean(rtos) == pytest.approx(31.0, abs=0.3)


def test_no_eligible_replica_means_no_failover() -> None:
    tl = failover_timeline(0.0, patroni_timing(), 0.0, 0.0, eligible=False)
    assert math.isinf(tl.rto) and not tl.eligible


def test_replay_backlog_delays_promotion() -> None:
    t = patroni_timing()
    a = failover_timeline(0.0, t, 5.0, 3.0)
    b = failover_timeline(0.0, t, 5.0, 3.0, replay_backlog=4.0)
    assert b.rto - a.rto == pytest.approx(4.0)


def test_async_loses_writes_in_flight_and_since_a_break() -> None:
    link = ReplicationLink(delay=0.05, replay_rate=1000.0)
    for k in range(100):
        link.advance(1.0, 200.0, float(k + 1))
    # Unshipped = write rate x ship lag (the network delay).
    assert link.unshipped == pytest.approx(200.0 * 0.05)
    assert link.ship_lag == pytest.approx(0.05)
    link.break_stream(100.0)
    for k in range(30):
        link.advance(1.0, 200.0, 101.0 + k)
    assert link.unshipped == pytest.approx(200.0 * 0.05 + 200.0 * 30)
    assert link.received_lag_bytes > 1048576  # beyond maximum_lag_on_failover: not eligible
    link.heal(130.0)
    link.advance(1.0, 200.0, 131.0)
    assert link.unshipped == pytest.approx(10.0)


def test_lag_grows_when_writes_outrun_replay_and_drains_after() -> None:
    link = ReplicationLink(delay=0.001, replay_rate=100.0)
    for k in range(10):
        link.advance(1.0, 150.0, float(k))
    assert link.backlog == pytest.approx(10 * 50.0, rel=0.01)
    assert link.replay_lag > 5.0
    assert link.replay_backlog_seconds == pytest.approx(link.backlog / 100.0)
    for k in range(20):
        link.advance(1.0, 50.0, 10.0 + k)
    assert link.backlog == 0.0
    # Steady state under capacity: M/M/1 sojourn of the replay process plus the delay.
    assert link.replay_lag == pytest.approx(0.001 + (1 / 100.0) / (1 - 0.5))


def test_synchronous_commit_levels() -> None:
    assert sync_commit_delay(0.002, "off") == 0.0
    assert sync_commit_delay(0.002, "local") == 0.0
    assert sync_commit_delay(0.002, "remote_write") == 0.002
    assert sync_commit_delay(0.002, "on") > 0.002
    with pytest.raises(ValueError, match="synchronous_commit"):
        sync_commit_delay(0.002, "maybe")


def _simulated_conflicts(rate: float, probs: np.ndarray, nodes: int, window: float, seconds: float) -> float:
    rng = np.random.default_rng(7)
    n = rng.poisson(rate * seconds)
    t = np.sort(rng.uniform(0, seconds, n))
    key = rng.choice(probs.size, size=n, p=probs)
    node = rng.integers(0, nodes, size=n)
    hits = 0
    for k in range(probs.size):
        sel = key == k
        tk, nk = t[sel], node[sel]
        lo = np.searchsorted(tk, tk - window, side="left")
        hi = np.searchsorted(tk, tk + window, side="right")
        for i in range(tk.size):
            if np.any(nk[lo[i] : hi[i]] != nk[i]):
                hits += 1
    # Ignore the edges: count only over the interior in expectation (tiny for long runs).
    return hits / seconds


@pytest.mark.parametrize(("nodes", "window"), [(2, 0.01), (5, 0.01), (5, 0.05)])
def test_multi_master_conflicts_match_simulation(nodes: int, window: float) -> None:
    w = np.arange(1, 201, dtype=np.float64) ** -0.99
    probs = w / w.sum()
    model = conflict_rate(100.0, probs, nodes, window)
    sim = _simulated_conflicts(100.0, probs, nodes, window, 400.0)
    assert sim == pytest.approx(model, rel=0.06)


def test_conflicts_grow_with_latency_and_write_rate() -> None:
    probs = np.full(1000, 1e-3)
    a = conflict_rate(100.0, probs, 5, 0.01)
    assert conflict_rate(100.0, probs, 5, 0.07) > 5 * a
    # Pairs of concurrent writes grow with the square of the rate at low contention.
    assert conflict_rate(200.0, probs, 5, 0.01) == pytest.approx(4 * a, rel=0.05)
    assert conflict_rate(100.0, probs, 1, 0.07) == 0.0


def test_schedules() -> None:
    assert parse_schedule("daily@02:00") == (86400.0, 7200.0)
    assert parse_schedule("hourly") == (3600.0, 0.0)
    assert parse_schedule("weekly@23:30") == (7 * 86400.0, 84600.0)
    assert parse_schedule("manual") is None


def test_daily_backups_give_a_day_of_worst_case_rpo() -> None:
    size = 50 * 1024**3
    plan = backup_plan("daily@02:00", "none", False, 7 * 86400, size, wal_rate=1e5, throughput=100 * 1024**2)
    duration = size / (100 * 1024**2)
    assert plan.backup_duration == pytest.approx(duration)
    assert plan.rpo_worst == pytest.approx(86400 + duration)
    assert plan.rpo_expected == pytest.approx(43200 + duration)
    assert plan.rto_worst == pytest.approx(duration)


def test_wal_archiving_bounds_the_rpo_by_a_segment() -> None:
    plan = backup_plan("daily@03:00", "continuous", True, 30 * 86400, 10 * 1024**3, wal_rate=1e6)
    assert plan.rpo_worst == pytest.approx(ARCHIVE_SEGMENT / 1e6)
    timed = backup_plan("daily@03:00", "continuous", True, 30 * 86400, 10 * 1024**3, 1e3, archive_timeout=60)
    assert timed.rpo_worst == 60
    # The restore replays up to a day of WAL on top of the base backup.
    assert plan.rto_worst == pytest.approx((10 * 1024**3 + 86400 * 1e6) / (100 * 1024**2))
    assert plan.pitr_window == 30 * 86400


def test_region_loss_without_geo_copies_is_unrecoverable() -> None:
    plan = backup_plan("daily", "continuous", False, 86400, 1e9, 1e5, scope="region")
    assert not plan.recoverable and math.isinf(plan.rpo_worst) and math.isinf(plan.rto_worst)
    geo = backup_plan("daily", "continuous", True, 86400, 1e9, 1e5, scope="region")
    assert geo.recoverable and math.isfinite(geo.rpo_worst)
    manual = backup_plan("manual", "none", False, 86400, 1e9, 1e5)
    assert math.isinf(manual.rpo_worst)
