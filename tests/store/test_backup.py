"""Backup and restore: a store moves between SQLite and PostgreSQL with nothing lost."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import devopsim
from devopsim.cli import app
from devopsim.errors import ConfigError
from devopsim.scenario.loader import load_scenario
from devopsim.store import RunStore
from devopsim.store.archive import backup, restore


def _everything(store: RunStore) -> dict[str, Any]:
    out = {}
    for info in store.runs(limit=None):
        run = store.get(info.id)
        out[info.id] = (run, store.metrics_parquet(info.id), store.events_jsonl(info.id))
    return out


def _fill(store: RunStore, scenario_file: Path) -> None:
    for seed in (1, 2):
        store.record(devopsim.simulate(scenario_file, seed=seed, overrides=[f"traffic.rate={seed + 3}/s"]))
    store.begin(load_scenario(scenario_file))  # a run still going (this process)


@pytest.mark.parametrize("gz", [False, True])
def test_sqlite_to_postgresql_and_back(
    sqlite_url: str, pg_url: str, scenario_file: Path, tmp_path: Path, gz: bool
) -> None:
    archive = tmp_path / ("b.tar.gz" if gz else "b.tar")
    with RunStore(sqlite_url) as src:
        _fill(src, scenario_file)
        original = _everything(src)
        assert backup(src, archive) == 3
    assert tarfile.is_tarfile(archive)
    with RunStore(pg_url) as pg:
        rep = restore(pg, archive)
        assert (rep.restored, rep.skipped) == (3, 0)
        assert _everything(pg) == original
        again = tmp_path / "again.tar"
        backup(pg, again)
    back = tmp_path / "back.db"
    with RunStore(str(back)) as dst:
        restore(dst, again)
        assert _everything(dst) == original
        rep = restore(dst, again)  # restoring twice adds nothing
        assert (rep.restored, rep.skipped) == (0, 3)


def test_cli_backup_restore_and_bad_files(db_url: str, scenario_file: Path, tmp_path: Path) -> None:
    with RunStore(db_url) as store:
        store.record(devopsim.simulate(scenario_file))
    archive = tmp_path / "runs.tar"
    res = CliRunner().invoke(app, ["store", "backup", str(archive), "--db", db_url])
    assert res.exit_code == 0 and "backed up 1 run" in res.stderr
    target = tmp_path / "target.db"
    res = CliRunner().invoke(app, ["store", "--db", str(target), "restore", str(archive)])
    assert res.exit_code == 0 and "restored 1 run" in res.stderr
    res = CliRunner().invoke(app, ["store", "info", "--db", str(target)])
    assert res.exit_code == 0 and "1 completed" in res.stdout
    junk = tmp_path / "junk.tar"
    junk.write_text("not an archive")
    for bad in (junk, tmp_path / "missing.tar"):
        res = CliRunner().invoke(app, ["store", "restore", str(bad), "--db", str(target)])
        assert res.exit_code == 2 and "error" in res.stderr
    with RunStore(str(target)) as store, pytest.raises(ConfigError, match="not a devopsim backup"):
        other = tmp_path / "other.tar"
        with tarfile.open(other, "w") as tar:
            tar.add(scenario_file, arcname="x.yaml")
        restore(store, other)
