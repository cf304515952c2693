"""Open a store's database: the engine settings per backend and the automatic migrations.

SQLite runs in WAL mode with a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE``, so two processes writing at once queue up instead of
failing with "database is locked" (a deferred transaction that upgrades from
reading to writing can fail at once; an immediate one waits). PostgreSQL
serialises migrations with an advisory lock; run writes are ordinary
transactions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from devopsim.errors import TelemetryError
from devopsim.store.schema import HEAD, VERSION_TABLE
from devopsim.store.url import describe_url

__all__ = ["current_revision", "make_engine", "upgrade"]

BUSY_TIMEOUT_MS = 60_000
_LOCK_KEY = 0x64657673  # "devs": the advisory lock that serialises migrations on PostgreSQL
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url`` (already resolved by :func:`~devopsim.store.url.resolve_url`).

    Raises:
        TelemetryError: the SQLite file's folder cannot be created.
    """
    if url.startswith("sqlite"):
        path = Path(sa.make_url(url).database or "")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TelemetryError(f"cannot create the run store folder {path.parent}: {exc}") from None
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    try:
        return sa.create_engine(url, connect_args={"connect_timeout": 10}, pool_pre_ping=True)
    except ImportError:
        raise TelemetryError(
            "a PostgreSQL run store needs psycopg 3: pip install 'devopsim[postgres]'"
        ) from None


def current_revision(conn: sa.Connection) -> str | None:
    """The schema revision the database is at (``None``: no store there yet)."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    rev = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    return None if rev is None else str(rev)


def _config(conn: sa.Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine: sa.Engine, target: str = HEAD) -> None:
    """Bring the store's schema to ``target`` (the newest by default); a no-op when it is there.

    Raises:
        TelemetryError: the store was written by a newer devopsim, or a migration failed.
    """
    with engine.connect() as conn:
        if current_revision(conn) == target:
            return
    from alembic import command
    from alembic.script import ScriptDirectory

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        current = current_revision(conn)
        if current == target:
            return
        cfg = _config(conn)
        known = {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}
        if current is not None and current not in known:
            raise TelemetryError(
                f"the run store at {describe_url(str(engine.url))} has schema revision {current}, "
                "written by a newer devopsim; upgrade devopsim to use it"
            )
        command.upgrade(cfg, target)
