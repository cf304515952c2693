"""Schema migrations (Alembic): an older store is upgraded on open, its runs kept and filled in."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from devopsim.errors import TelemetryError
from devopsim.store import RunStore
from devopsim.store.engine import MIGRATIONS, current_revision, make_engine, upgrade
from devopsim.store.figures import key_figures
from devopsim.store.schema import HEAD, VERSION_TABLE, metadata
from devopsim.store.url import resolve_url

SUMMARY = {
    "scenario": "old",
    "seed": 5,
    "plane": "flow",
    "classes": {
        "a": {"requests": 100, "ok": 97, "latency_s": {"p99": 0.25}},
        "b": {"requests": 300, "ok": 300, "latency_s": {"p99": 0.75}},
    },
    "slos": [{"name": "x", "met": True}, {"name": "y", "met": False}],
}


def test_head_is_the_newest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD


def test_an_older_schema_is_upgraded_on_open_and_its_runs_filled_in(db_url: str) -> None:
    engine = make_engine(resolve_url(db_url))
    upgrade(engine, "0001")
    with engine.begin() as conn:
        assert current_revision(conn) == "0001"
        assert "figures" not in {c["name"] for c in sa.inspect(conn).get_columns("devopsim_runs")}
        old = sa.table(
            "devopsim_runs",
            *(sa.column(c) for c in ("id", "name", "source", "scenario", "scenario_sha256", "seed", "plane")),
            *(sa.column(c) for c in ("version", "status", "host", "pid")),
            sa.column("started_at", sa.DateTime(timezone=True)),
            sa.column("summary", sa.JSON),
        )
        conn.execute(
            old.insert().values(
                id="ab" * 16,
                name="old",
                source="old.yaml",
                scenario="name: old\n",
                scenario_sha256="0" * 64,
                seed=5,
                plane="flow",
                version="0.0.9",
                status="completed",
                host="elsewhere",
                pid=1,
                started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                summary=SUMMARY,
            )
        )
    engine.dispose()
    with RunStore(db_url) as store:
        assert store.revision() == HEAD
        (run,) = store.runs()
        assert run.id == "ab" * 16 and run.started_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        # filled in by the migration from the stored summary: 397 ok of 400, worst p99 0.75 s, 1 of 2 SLOs
        assert run.figures == key_figures(SUMMARY)
        assert run.figures["availability"] == pytest.approx(397 / 400)
        assert run.figures["p99_s"] == 0.75 and (run.figures["slos_met"], run.figures["slos"]) == (1, 2)
        assert store.get("abab").summary == SUMMARY


def test_the_migrated_schema_matches_the_tables_the_code_queries(db_url: str) -> None:
    with RunStore(db_url) as store, store.engine.connect() as conn:
        insp = sa.inspect(conn)
        for table in metadata.sorted_tables:
            have = {c["name"] for c in insp.get_columns(table.name)}
            assert have == {c.name for c in table.columns}, table.name
            indexed = {tuple(ix["column_names"]) for ix in insp.get_indexes(table.name)}
            for ix in table.indexes:
                assert tuple(c.name for c in ix.columns) in indexed


def test_opening_twice_is_a_no_op_and_a_newer_schema_is_refused(db_url: str) -> None:
    RunStore(db_url).close()
    RunStore(db_url).close()
    engine = make_engine(resolve_url(db_url))
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(TelemetryError, match="newer devopsim"):
        RunStore(db_url)


def test_downgrade_to_the_first_revision_and_up_again_keeps_runs(db_url: str) -> None:
    from alembic import command

    from devopsim.store.engine import _config

    with RunStore(db_url) as store:
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO devopsim_runs (id, name, source, scenario, scenario_sha256, seed, "
                    "plane, version, status, started_at, host, pid, summary) VALUES "
                    "(:id, 'n', 's', 't', 'h', 1, 'flow', 'v', 'completed', :ts, 'h', 1, :s)"
                ),
                {"id": "cd" * 16, "ts": datetime.now(UTC), "s": json.dumps(SUMMARY)},
            )
        with store.engine.begin() as conn:
            command.downgrade(_config(conn), "0001")
        with store.engine.connect() as conn:
            assert current_revision(conn) == "0001"
    with RunStore(db_url) as store:
        (run,) = store.runs()
        assert run.figures == key_figures(SUMMARY)
