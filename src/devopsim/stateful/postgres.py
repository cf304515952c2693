"""PostgreSQL as the twin models it: replication lag, Patroni failover, conflicts, backups.

Everything here is a pure function of its inputs (times in seconds, sizes in
bytes); the control loop (:mod:`devopsim.stateful.loop`) feeds it what the data
plane measured and acts on the answers. The timings follow Patroni's
documented behaviour (reference/SEMANTICS.md section 7): the leader renews its
lease every ``loop_wait``; after a hard crash the lease expires ``ttl`` after
the last renewal; a replica notices on its next HA loop; the healthiest
eligible replica (not more than ``maximum_lag_on_failover`` behind) promotes
itself in about a second, after replaying the WAL it has received.

Assumptions the sources leave open are named constants below.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ARCHIVE_SEGMENT",
    "DEFAULT_RESTORE_THROUGHPUT",
    "PROMOTE_TIME",
    "REPLAY_COST_FRACTION",
    "WAL_BYTES_PER_WRITE",
    "BackupPlan",
    "FailoverTimeline",
    "PatroniTiming",
    "ReplicationLink",
    "backup_plan",
    "conflict_rate",
    "failover_timeline",
    "parse_schedule",
    "patroni_timing",
    "sync_commit_delay",
]

WAL_BYTES_PER_WRITE = 4096.0  # WAL one OLTP write transaction produces (commit record, tuples, FPIs)
REPLAY_COST_FRACTION = 0.5  # a standby replays a write in this share of the primary's CPU time
PROMOTE_TIME = 1.0  # pg_ctl promote after the leader key is taken (Patroni docs: about 1 s)
STANDBY_FLUSH = 0.001  # a synchronous standby's WAL flush (fsync) before it acknowledges
ARCHIVE_SEGMENT = 16 * 1024**2  # a WAL segment: archive_command runs once per full segment
DEFAULT_RESTORE_THROUGHPUT = 100 * 1024**2  # bytes/s a restore reads when the scenario names none


# --- Patroni ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PatroniTiming:
    """Patroni's effective timing after its own validation.

    Attributes:
        ttl: leader lease in seconds.
        loop_wait: seconds between HA loops.
        retry_timeout: seconds of DCS or PostgreSQL retries before demotion.
        warnings: what was adjusted, as Patroni would log it.
    """

    ttl: float
    loop_wait: float
    retry_timeout: float
    warnings: tuple[str, ...] = ()


def patroni_timing(ttl: float = 30.0, loop_wait: float = 10.0, retry_timeout: float = 10.0) -> PatroniTiming:
    """Apply Patroni's minimums (``ttl`` 20, ``loop_wait`` 2, ``retry_timeout`` 3) and its rule
    ``loop_wait + 2 × retry_timeout ≤ ttl`` (by shortening ``retry_timeout``, then ``loop_wait``)."""
    warns: list[str] = []
    if ttl < 20:
        warns.append(f"ttl {ttl:g} below the minimum 20; using 20")
        ttl = 20.0
    if loop_wait < 2:
        warns.append(f"loop_wait {loop_wait:g} below the minimum 2; using 2")
        loop_wait = 2.0
    if retry_timeout < 3:
        warns.append(f"retry_timeout {retry_timeout:g} below the minimum 3; using 3")
        retry_timeout = 3.0
    if loop_wait + 2 * retry_timeout > ttl:
        new_retry = max(3.0, (ttl - loop_wait) / 2)
        new_loop = max(2.0, ttl - 2 * new_retry)
        warns.append(
            f"loop_wait + 2*retry_timeout must be <= ttl ({loop_wait:g} + 2*{retry_timeout:g} > {ttl:g}); "
            f"using loop_wait={new_loop:g}, retry_timeout={new_retry:g}"
        )
        loop_wait, retry_timeout = new_loop, new_retry
    return PatroniTiming(ttl, loop_wait, retry_timeout, tuple(warns))


@dataclass(frozen=True)
class FailoverTimeline:
    """When each stage of a Patroni failover happens (absolute seconds).

    Attributes:
        crash: the primary died.
        lease_expired: the leader key's TTL ran out.
        detected: a replica's HA loop saw no leader.
        promoted: the new primary accepts writes.
        rto: ``promoted - crash`` (``inf`` when no replica is eligible).
        eligible: whether a replica could take over.
    """

    crash: float
    lease_expired: float
    detected: float
    promoted: float
    rto: float
    eligible: bool


def failover_timeline(
    crash: float,
    timing: PatroniTiming,
    lease_phase: float,
    loop_phase: float,
    replay_backlog: float = 0.0,
    eligible: bool = True,
) -> FailoverTimeline:
    """The failover after a hard crash of the primary at ``crash``.

    Args:
        crash: time of the crash.
        timing: Patroni's timing.
        lease_phase: seconds since the leader last renewed its key, in ``[0, loop_wait)``.
        loop_phase: where the replica's HA loop stands: its loops run at ``loop_phase + k·loop_wait``.
        replay_backlog: seconds the promoted replica needs to replay WAL it received but has not applied.
        eligible: whether any replica is within ``maximum_lag_on_failover`` and allowed to fail over.
    """
    lw = timing.loop_wait
    expired = crash - lease_phase + timing.ttl
    detected = expired + (loop_phase - expired) % lw
    if not eligible:
        return FailoverTimeline(crash, expired, detected, math.inf, math.inf, False)
    promoted = detected + max(replay_backlog, 0.0) + PROMOTE_TIME
    return FailoverTimeline(crash, expired, detected, promoted, promoted - crash, True)


# --- replication ----------------------------------------------------------------------


def sync_commit_delay(rtt: float, level: str = "on") -> float:
    """Seconds a synchronous commit waits for its standby, by ``synchronous_commit`` level."""
    if level in ("off", "local"):
        return 0.0
    if level == "remote_write":
        return rtt
    if level in ("on", "remote_apply"):
        return rtt + STANDBY_FLUSH
    raise ValueError(f"unknown synchronous_commit level {level!r}")


class ReplicationLink:
    """One standby's WAL stream as a fluid: shipped after the network delay, replayed single-threaded.

    Args:
        delay: one-way network delay primary -> standby (seconds).
        replay_rate: writes per second the standby's startup process can replay.
        wal_per_write: WAL bytes per write.
    """

    def __init__(self, delay: float, replay_rate: float, wal_per_write: float = WAL_BYTES_PER_WRITE) -> None:
        if replay_rate <= 0:
            raise ValueError(f"replay rate must be positive (got {replay_rate:g})")
        self.delay = delay
        self.replay_rate = replay_rate
        self.wal_per_write = wal_per_write
        self.backlog = 0.0  # writes received, not yet replayed
        self.unshipped = 0.0  # writes committed on the primary, not yet received
        self.write_rate = 0.0
        self.broken_since: float | None = None

    def advance(self, dt: float, write_rate: float, now: float) -> None:
        """Carry the stream ``dt`` seconds forward at ``write_rate`` writes per second, ending at ``now``."""
        self.write_rate = write_rate
        if self.broken_since is not None:
            self.unshipped += write_rate * dt
            arriving = 0.0
        else:
            # What was held back (a break that healed) arrives at once; the wire holds `delay` worth.
            arriving = self.unshipped + write_rate * dt - write_rate * self.delay
            self.unshipped = write_rate * self.delay
        self.backlog = max(0.0, self.backlog + max(arriving, 0.0) - self.replay_rate * dt)

    def break_stream(self, now: float) -> None:
        """The WAL stream stops (``replication-break``)."""
        if self.broken_since is None:
            self.broken_since = now

    def heal(self, now: float) -> None:
        """The WAL stream resumes."""
        self.broken_since = None

    @property
    def ship_lag(self) -> float:
        """Seconds of writes the standby has not received."""
        return self.unshipped / self.write_rate if self.write_rate > 0 else self.delay

    @property
    def replay_lag(self) -> float:
        """Seconds between a commit on the primary and its visibility on the standby."""
        rho = min(self.write_rate / self.replay_rate, 0.999)
        queue = self.backlog / self.replay_rate
        return self.ship_lag + queue + (1.0 / self.replay_rate) / (1.0 - rho)

    @property
    def lag_bytes(self) -> float:
        """WAL bytes between the primary's position and the standby's replay position."""
        return (self.unshipped + self.backlog) * self.wal_per_write

    @property
    def received_lag_bytes(self) -> float:
        """WAL bytes the standby has not received (what Patroni compares with ``maximum_lag_on_failover``)."""
        return self.unshipped * self.wal_per_write

    @property
    def replay_backlog_seconds(self) -> float:
        """Seconds to replay what was received: promotion waits for it."""
        return self.backlog / self.replay_rate


# --- multi-master ------------------------------------------------------------------------


def conflict_rate(write_rate: float, probs: np.ndarray, nodes: int, window: float) -> float:
    """Writes per second that collide with a concurrent write to the same key on another node.

    Writes arrive as a Poisson stream spread evenly over ``nodes``; key ``k`` gets
    share ``probs[k]``. Two writes are concurrent when neither node had received
    the other within ``window`` seconds (replication delay). A write to ``k``
    collides iff another node writes ``k`` within ``window`` either side:
    ``Σ_k λ_k (1 - exp(-2·window·λ_k·(N-1)/N))``.
    """
    if nodes < 2 or write_rate <= 0:
        return 0.0
    lam = write_rate * np.asarray(probs, dtype=np.float64)
    return float(np.sum(lam * -np.expm1(-2.0 * window * lam * (nodes - 1) / nodes)))


# --- backups ---------------------------------------------------------------------------------

_PERIOD = {"hourly": 3600.0, "daily": 86400.0, "weekly": 7 * 86400.0}


def parse_schedule(full: str) -> tuple[float, float] | None:
    """``daily@02:00`` -> (interval 86400, offset 7200 seconds after midnight); manual/none -> None."""
    m = re.fullmatch(r"(hourly|daily|weekly)(?:@(\d{1,2}):(\d{2}))?", full)
    if m is None:
        return None
    offset = 0.0 if m.group(2) is None else int(m.group(2)) * 3600.0 + int(m.group(3)) * 60.0
    return _PERIOD[m.group(1)], offset % _PERIOD[m.group(1)]


@dataclass(frozen=True)
class BackupPlan:
    """What a backup configuration guarantees after a disaster that destroys the cluster.

    Attributes:
        rpo_worst: seconds of committed writes lost in the worst case (``inf``: unbounded).
        rpo_expected: the same for a disaster at a uniformly random time.
        rto_worst: seconds to restore: base backup plus WAL replay, worst case.
        rto_expected: the same, on average.
        backup_duration: seconds one full backup takes.
        recoverable: False when the disaster also destroys the backups (no geo copy).
        pitr_window: how far back a point-in-time restore can go (the retention).
        notes: what limits the figures.
    """

    rpo_worst: float
    rpo_expected: float
    rto_worst: float
    rto_expected: float
    backup_duration: float
    recoverable: bool
    pitr_window: float
    notes: tuple[str, ...]


def backup_plan(
    full: str,
    wal: str,
    geo_redundant: bool,
    retention: float,
    data_size: float,
    wal_rate: float,
    throughput: float | None = None,
    scope: str = "cluster",
    archive_timeout: float = 0.0,
) -> BackupPlan:
    """RPO and RTO of restoring from backups.

    Args:
        full: the full-backup schedule (``daily@02:00``, ``hourly``, ``manual``, ``none``).
        wal: ``continuous`` (WAL archiving) or ``none``.
        geo_redundant: copies are kept in another region.
        retention: seconds backups are kept.
        data_size: bytes of data.
        wal_rate: WAL bytes per second the primary writes.
        throughput: bytes per second a backup or restore moves (default 100 MiB/s).
        scope: ``cluster`` (every node lost, backups intact) or ``region`` (backups in
            the region lost too, unless geo-redundant).
        archive_timeout: PostgreSQL's ``archive_timeout`` (0, its default, switches
            segments only when full).
    """
    bw = throughput or DEFAULT_RESTORE_THROUGHPUT
    duration = data_size / bw
    notes: list[str] = []
    sched = parse_schedule(full)
    recoverable = not (scope == "region" and not geo_redundant)
    if not recoverable:
        notes.append("backups are kept in the lost region (no geo-redundant copy)")
    # Time between archived WAL segments: a full segment, or archive_timeout if sooner.
    fill = ARCHIVE_SEGMENT / wal_rate if wal_rate > 0 else math.inf
    seg = min(fill, archive_timeout) if archive_timeout > 0 else fill
    if wal == "continuous" and (sched is not None or full == "manual"):
        worst, expected = seg, seg / 2
        notes.append("continuous WAL archiving: loss bounded by one WAL segment")
    elif sched is not None:
        worst, expected = sched[0] + duration, sched[0] / 2 + duration
        notes.append("full backups only: loss since the last completed backup")
    else:
        worst = expected = math.inf
        notes.append("no scheduled backup: loss unbounded")
    if not recoverable:
        worst = expected = math.inf
    if sched is not None and retention < sched[0]:
        notes.append("retention is shorter than the backup interval")
    # Restore: read the base backup, then replay the WAL written since it was taken.
    interval = sched[0] if sched is not None else 0.0
    replay = (interval * wal_rate / bw) if wal == "continuous" else 0.0
    rto_worst = duration + replay if recoverable else math.inf
    rto_expected = duration + replay / 2 if recoverable else math.inf
    return BackupPlan(
        rpo_worst=worst,
        rpo_expected=expected,
        rto_worst=rto_worst,
        rto_expected=rto_expected,
        backup_duration=duration,
        recoverable=recoverable,
        pitr_window=retention if wal == "continuous" else 0.0,
        notes=tuple(notes),
    )
