"""The run store: every run's scenario, summary, events, alerts and metrics, in SQLite or PostgreSQL.

A run's life in the store:

1. :meth:`RunStore.begin` inserts its row as ``running`` with the host, pid and
   process start time, before the simulation starts;
2. :meth:`RunStore.complete` lands everything the run produced in one
   transaction (``completed``), or :meth:`RunStore.mark` records ``interrupted``
   (Ctrl-C, SIGTERM) or ``failed`` (an error, kept in ``error``);
3. a run whose process died without a word (``kill -9``, a crash, a power cut)
   stays ``running`` until the store is next listed or searched on the same
   host: the process is gone, so the row is marked ``interrupted``.

Metrics are stored as the zstd-compressed parquet bytes of the long-format
table (the very bytes ``metrics.parquet`` holds) in parts of 8 MiB; a day of
``checkout.yaml`` (1.6 million samples) is about 4 MB. The event log is kept
as gzip-compressed JSON Lines.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from devopsim.errors import ConfigError, Issue, TelemetryError
from devopsim.store import engine as _engine
from devopsim.store.figures import key_figures
from devopsim.store.provenance import ProcessId, alive, scenario_text, this_process
from devopsim.store.schema import PART_BYTES, blobs, runs
from devopsim.store.url import describe_url, resolve_url

if TYPE_CHECKING:
    from devopsim.api import Result
    from devopsim.observe.store import MetricStore

__all__ = ["STATUSES", "RunInfo", "RunStore", "StoredRun"]

STATUSES = ("running", "completed", "interrupted", "failed")
METRICS_BLOB = "metrics.parquet"
EVENTS_BLOB = "events.jsonl.gz"
_REF = re.compile(r"^(?:latest(?:~(\d+))?|[0-9a-f]{1,32})$")


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunInfo:
    """One run as listed: identity, provenance, status and key figures (no bulky data).

    Times are wall-clock UTC (bookkeeping, not simulated time).
    """

    id: str
    name: str
    source: str
    seed: int
    plane: str
    version: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    host: str
    pid: int
    scenario_sha256: str
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def short_id(self) -> str:
        """The first 8 characters of the id (enough to name it, like git's short hashes)."""
        return self.id[:8]

    @property
    def wall_s(self) -> float | None:
        """Wall-clock seconds from start to end (``None`` while running)."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class StoredRun(RunInfo):
    """A run with its summary, alerts and scenario (metrics and events load on demand)."""

    scenario: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    alerts: list[Any] | None = None
    n_samples: int | None = None
    n_events: int | None = None


_INFO_COLS = (
    runs.c.id,
    runs.c.name,
    runs.c.source,
    runs.c.seed,
    runs.c.plane,
    runs.c.version,
    runs.c.status,
    runs.c.started_at,
    runs.c.ended_at,
    runs.c.host,
    runs.c.pid,
    runs.c.scenario_sha256,
    runs.c.figures,
    runs.c.error,
)


def _info(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": m["id"],
        "name": m["name"],
        "source": m["source"],
        "seed": int(m["seed"]),
        "plane": m["plane"],
        "version": m["version"],
        "status": m["status"],
        "started_at": _utc(m["started_at"]),
        "ended_at": _utc(m["ended_at"]),
        "host": m["host"],
        "pid": int(m["pid"]),
        "scenario_sha256": m["scenario_sha256"],
        "figures": m["figures"] or {},
        "error": m["error"],
    }


def parquet_bytes(store: MetricStore) -> bytes:
    """The long-format metrics table as ``metrics.parquet`` bytes (zstd), as the results writer makes it."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(store.to_arrow(), buf, compression="zstd")
    return buf.getvalue()


def events_jsonl(events: Iterable[dict[str, Any]]) -> bytes:
    """The event log as ``events.jsonl`` bytes, line for line as ``EventLog.write`` writes it."""
    return "".join(json.dumps(ev, separators=(",", ":"), sort_keys=False) + "\n" for ev in events).encode()


class RunStore:
    """A run store at a database URL (SQLite file or PostgreSQL), migrated to the newest schema on open.

    Args:
        url: a database URL or SQLite file path; ``None``: ``$DEVOPSIM_DB`` or the per-user default.

    Raises:
        ConfigError: the URL is malformed.
        TelemetryError: the database cannot be reached or migrated.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        self.engine = _engine.make_engine(self.url)
        try:
            _engine.upgrade(self.engine)
        except sa_exc.SQLAlchemyError as exc:
            self.engine.dispose()
            raise TelemetryError(f"cannot open the run store at {self.label}: {_why(exc)}") from None
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def label(self) -> str:
        """The URL with the password masked."""
        return describe_url(self.url)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------

    def begin(self, loaded: Any, seed: int | None = None, proc: ProcessId | None = None) -> str:
        """Insert a ``running`` row for a run about to start and return its id.

        Args:
            loaded: the :class:`~devopsim.scenario.loader.LoadedScenario` to run.
            seed: the seed override, if any (else the scenario's).
            proc: the process running it (default: this one).
        """
        sc = scenario_text(loaded)
        proc = proc or this_process()
        run_id = uuid.uuid4().hex
        from devopsim import __version__

        row = {
            "id": run_id,
            "name": str(loaded.scenario.name)[:200],
            "source": sc.source[:1000],
            "scenario": sc.text,
            "scenario_sha256": sc.sha256,
            "overrides": sc.overrides or None,
            "seed": int(loaded.scenario.seed if seed is None else seed),
            "plane": loaded.scenario.plane,
            "version": __version__,
            "status": "running",
            "started_at": _now(),
            "host": proc.host[:255],
            "pid": proc.pid,
            "proc_start": proc.start,
        }
        self._write(lambda conn: conn.execute(runs.insert().values(**row)))
        return run_id

    def complete(self, run_id: str, result: Result) -> None:
        """Land a run's results in one transaction and mark it ``completed``."""
        summary = result.summary
        metrics = parquet_bytes(result.store)
        events = gzip.compress(events_jsonl(result.events), compresslevel=6, mtime=0)
        parts = [
            {"run_id": run_id, "name": name, "part": i, "data": data[off : off + PART_BYTES]}
            for name, data in ((METRICS_BLOB, metrics), (EVENTS_BLOB, events))
            for i, off in enumerate(range(0, max(len(data), 1), PART_BYTES))
        ]
        alerts = summary.get("alerts")
        values = {
            "status": "completed",
            "ended_at": _now(),
            "summary": summary,
            "alerts": alerts if isinstance(alerts, list) else None,
            "figures": key_figures(summary),
            "n_samples": result.store.n_samples,
            "n_events": len(result.events),
            "error": None,
        }

        def tx(conn: sa.Connection) -> None:
            conn.execute(blobs.delete().where(blobs.c.run_id == run_id))
            conn.execute(blobs.insert(), parts)
            done = conn.execute(runs.update().where(runs.c.id == run_id).values(**values))
            if done.rowcount != 1:
                raise TelemetryError(f"run {run_id[:8]} is no longer in the store (removed while it ran)")

        self._write(tx)

    def mark(self, run_id: str, status: str, error: str | None = None) -> None:
        """Set a run's status (``interrupted`` or ``failed``), with the error if there was one."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        values: dict[str, Any] = {"status": status, "error": error}
        if status != "running":
            values["ended_at"] = _now()
        self._write(
            lambda conn: conn.execute(
                runs.update().where(runs.c.id == run_id, runs.c.status == "running").values(**values)
            )
        )

    def record(self, result: Result) -> str:
        """Store a finished :class:`~devopsim.api.Result` (library use) and return its run id."""
        run_id = self.begin(result.loaded, seed=int(result.summary.get("seed", result.loaded.scenario.seed)))
        try:
            self.complete(run_id, result)
        except BaseException:
            self.mark(run_id, "failed", "recording failed")
            raise
        return run_id

    def delete(self, run_ids: Sequence[str]) -> int:
        """Remove runs (and their files); returns how many were removed."""
        ids = list(run_ids)

        def tx(conn: sa.Connection) -> int:
            conn.execute(blobs.delete().where(blobs.c.run_id.in_(ids)))
            return int(conn.execute(runs.delete().where(runs.c.id.in_(ids))).rowcount)

        return int(self._write(tx))

    def sweep(self) -> list[str]:
        """Mark ``running`` runs of this host whose process is gone as ``interrupted``; return their ids."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(runs.c.id, runs.c.host, runs.c.pid, runs.c.proc_start).where(
                    runs.c.status == "running"
                )
            ).all()
        dead = [r.id for r in rows if alive(ProcessId(r.host, int(r.pid), r.proc_start)) is False]
        for run_id in dead:
            self.mark(run_id, "interrupted", "the process running it ended without finishing")
        return dead

    # -- reading -------------------------------------------------------------------------------

    def runs(
        self, limit: int | None = None, status: str | None = None, name: str | None = None
    ) -> list[RunInfo]:
        """Runs, newest first (after :meth:`sweep`), optionally filtered by status or scenario name."""
        self.sweep()
        q = sa.select(*_INFO_COLS).order_by(runs.c.started_at.desc(), runs.c.id)
        if status:
            q = q.where(runs.c.status == status)
        if name:
            q = q.where(runs.c.name == name)
        if limit:
            q = q.limit(limit)
        with self._read() as conn:
            return [RunInfo(**_info(r)) for r in conn.execute(q)]

    def find(self, ref: str) -> RunInfo:
        """The run ``ref`` names: an id, a unique id prefix, ``latest`` or ``latest~N``.

        Raises:
            ConfigError: no run, or several, match.
        """
        return self._find(ref, sweep=True)

    def _find(self, ref: str, sweep: bool) -> RunInfo:
        ref = ref.strip().lower()
        m = _REF.match(ref)
        if not m:
            raise _bad_ref(ref, "is not a run id (hexadecimal, as `devopsim runs ls` shows) or latest~N")
        if sweep:
            self.sweep()
        with self._read() as conn:
            if ref.startswith("latest"):
                back = int(m.group(1) or 0)
                q = sa.select(*_INFO_COLS).order_by(runs.c.started_at.desc(), runs.c.id).offset(back).limit(1)
                rows = conn.execute(q).all()
                if not rows:
                    raise _bad_ref(ref, f"no such run in {self.label} (it holds fewer runs)")
                return RunInfo(**_info(rows[0]))
            rows = conn.execute(sa.select(*_INFO_COLS).where(runs.c.id.like(ref + "%")).limit(6)).all()
        if not rows:
            raise _bad_ref(ref, f"no run with this id in {self.label}")
        if len(rows) > 1:
            names = ", ".join(r.id[: max(len(ref) + 2, 8)] for r in rows[:5])
            raise _bad_ref(ref, f"is ambiguous: it starts {names}{', ...' if len(rows) > 5 else ''}")
        return RunInfo(**_info(rows[0]))

    def get(self, ref: str) -> StoredRun:
        """A run with its summary, alerts and scenario text (see :meth:`find` for ``ref``)."""
        info = self.find(ref)
        cols = (
            runs.c.scenario,
            runs.c.overrides,
            runs.c.summary,
            runs.c.alerts,
            runs.c.n_samples,
            runs.c.n_events,
        )
        with self._read() as conn:
            row = conn.execute(sa.select(*cols).where(runs.c.id == info.id)).one()
        return StoredRun(
            **info.__dict__,
            scenario=row.scenario,
            overrides=row.overrides or {},
            summary=row.summary,
            alerts=row.alerts,
            n_samples=row.n_samples,
            n_events=row.n_events,
        )

    def blob(self, run_id: str, name: str) -> bytes | None:
        """A stored file of a run (``metrics.parquet`` or ``events.jsonl.gz``), ``None`` if it has none."""
        q = (
            sa.select(blobs.c.data)
            .where(blobs.c.run_id == run_id, blobs.c.name == name)
            .order_by(blobs.c.part)
        )
        with self._read() as conn:
            parts = [bytes(r[0]) for r in conn.execute(q)]
        return b"".join(parts) if parts else None

    def metrics_parquet(self, run_id: str) -> bytes | None:
        """The run's ``metrics.parquet`` bytes (``None`` if it did not complete)."""
        return self.blob(run_id, METRICS_BLOB)

    def events_jsonl(self, run_id: str) -> bytes | None:
        """The run's ``events.jsonl`` bytes (``None`` if it did not complete)."""
        data = self.blob(run_id, EVENTS_BLOB)
        return None if data is None else gzip.decompress(data)

    def blob_sizes(self, run_id: str) -> dict[str, int]:
        """Stored bytes per file of a run."""
        q = (
            sa.select(blobs.c.name, sa.func.sum(sa.func.length(blobs.c.data)))
            .where(blobs.c.run_id == run_id)
            .group_by(blobs.c.name)
        )
        with self._read() as conn:
            return {r[0]: int(r[1] or 0) for r in conn.execute(q)}

    def revision(self) -> str | None:
        """The schema revision of the database."""
        with self._read() as conn:
            return _engine.current_revision(conn)

    # -- plumbing ------------------------------------------------------------------------------

    def _write(self, fn: Any) -> Any:
        try:
            with self.engine.begin() as conn:
                return fn(conn)
        except sa_exc.SQLAlchemyError as exc:
            raise TelemetryError(f"cannot write to the run store at {self.label}: {_why(exc)}") from None

    def _read(self) -> _Reading:
        return _Reading(self)


class _Reading:
    """A read transaction that turns database errors into :class:`TelemetryError`."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.ctx: Any = None

    def __enter__(self) -> sa.Connection:
        try:
            self.ctx = self.store.engine.connect()
            return self.ctx.__enter__()  # type: ignore[no-any-return]
        except sa_exc.SQLAlchemyError as exc:
            raise TelemetryError(f"cannot read the run store at {self.store.label}: {_why(exc)}") from None

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        self.ctx.__exit__(et, ev, tb)
        if isinstance(ev, sa_exc.SQLAlchemyError):
            raise TelemetryError(f"cannot read the run store at {self.store.label}: {_why(ev)}") from None


def _why(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _bad_ref(ref: str, why: str) -> ConfigError:
    return ConfigError([Issue("run", None, "", f"{ref!r} {why}")])
