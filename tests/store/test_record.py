"""Recording runs and reading them back, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import devopsim
from devopsim.cli import app
from devopsim.errors import ConfigError
from devopsim.observe.store import MetricStore
from devopsim.store import RunStore, resolve_run, results_dir
from devopsim.store.figures import key_figures

RESULT_FILES = ("summary.json", "metrics.parquet", "events.jsonl")


def _run(args: list[str]) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.stdout, res.stderr


def test_cli_run_records_and_export_gives_back_the_runs_own_files(
    db_url: str, scenario_file: Path, tmp_path: Path
) -> None:
    own = tmp_path / "own"
    code, _, err = _run(["run", str(scenario_file), "--db", db_url, "-o", str(own), "--no-progress"])
    assert code == 0, err
    assert "recorded as run" in err
    short = err.split("recorded as run ")[1].split()[0]
    out = tmp_path / "exported"
    code, _, err = _run(["runs", "export", short, "-o", str(out), "--db", db_url])
    assert code == 0, err
    for name in RESULT_FILES:
        assert (out / name).read_bytes() == (own / name).read_bytes(), name
    # the scenario comes back as the file it was
    assert (out / "scenario.yaml").read_text() == scenario_file.read_text()
    # and the metrics read back as the same table
    assert pq.read_table(out / "metrics.parquet").equals(pq.read_table(own / "metrics.parquet"))


def test_record_api_keeps_everything_the_result_holds(db_url: str, scenario_file: Path) -> None:
    result = devopsim.simulate(scenario_file, seed=11, overrides=["services.api.replicas=2"])
    with RunStore(db_url) as store:
        run_id = store.record(result)
        run = store.get(run_id[:6])
        assert run.id == run_id and run.status == "completed"
        assert run.seed == 11 and run.plane == "request" and run.name == "small"
        assert run.version == devopsim.__version__
        assert run.overrides == {"services.api.replicas": 2}
        assert run.scenario == scenario_file.read_text()
        assert run.summary == result.summary
        assert run.n_samples == result.store.n_samples
        assert run.n_events == len(result.events)
        assert run.pid == os.getpid()
        table = pq.read_table(__import__("io").BytesIO(store.metrics_parquet(run_id)))
        assert table.equals(result.store.to_arrow())
        back = MetricStore.from_arrow(table)
        assert back.n_samples == result.store.n_samples
        events = [json.loads(x) for x in store.events_jsonl(run_id).decode().splitlines()]
        assert events == result.events
        assert store.runs()[0].figures == key_figures(result.summary)


def test_equal_scenarios_hash_equal_and_changed_ones_do_not(db_url: str, tmp_path: Path) -> None:
    from tests.store.conftest import small_scenario

    a = small_scenario(tmp_path / "a.yaml")
    b = tmp_path / "b.yaml"
    b.write_text("# the same scenario, with a comment\n" + a.read_text())
    with RunStore(db_url) as store:
        ids = [store.record(devopsim.simulate(p, seed=1)) for p in (a, b)]
        ids.append(store.record(devopsim.simulate(a, seed=1, overrides=["traffic.rate=6/s"])))
        hashes = [store.get(i).scenario_sha256 for i in ids]
    assert hashes[0] == hashes[1] != hashes[2]


def test_simulate_does_not_record(db_url: str, scenario_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVOPSIM_DB", db_url)
    devopsim.simulate(scenario_file)
    with RunStore() as store:
        assert store.runs() == []


def test_no_store_option_records_nothing(db_url: str, scenario_file: Path) -> None:
    code, _, err = _run(["run", str(scenario_file), "--db", db_url, "--no-store", "--json"])
    assert code == 0 and "recorded" not in err
    with RunStore(db_url) as store:
        assert store.runs() == []


def test_ls_show_compare_rm(db_url: str, scenario_file: Path) -> None:
    for seed in ("1", "2"):
        code, _, err = _run(["run", str(scenario_file), "--db", db_url, "--seed", seed, "--json"])
        assert code == 0, err
    with RunStore(db_url) as store:
        newest, oldest = store.runs()
        assert store.find("latest").id == newest.id and store.find("latest~1").id == oldest.id
    code, out, _ = _run(["runs", "--db", db_url, "ls"])
    assert code == 0 and newest.short_id in out and oldest.short_id in out and "completed" in out
    code, out, _ = _run(["runs", "ls", "--db", db_url, "--json"])
    listed = json.loads(out)
    assert [r["id"] for r in listed] == [newest.id, oldest.id] and [r["seed"] for r in listed] == [2, 1]
    code, out, _ = _run(["runs", "show", newest.short_id, "--db", db_url])
    assert code == 0 and newest.id in out and "small" in out
    code, out, _ = _run(["runs", "compare", oldest.short_id, newest.short_id, "--db", db_url, "--json"])
    assert code == 0
    rows = {r["figure"]: r for r in json.loads(out)["figures"]}
    req = rows["class get requests"]
    assert req["diff"] == req["b"] - req["a"]
    with RunStore(db_url) as store:
        assert req["a"] == store.get(oldest.id).summary["classes"]["get"]["requests"]
    code, out, _ = _run(["runs", "compare", oldest.short_id, newest.short_id, "--db", db_url])
    assert code == 0 and "availability" in out and "B - A" in out
    code, _, err = _run(["runs", "rm", oldest.short_id, "--db", db_url])
    assert code == 0 and "removed 1 run" in err
    with RunStore(db_url) as store:
        assert [r.id for r in store.runs()] == [newest.id]
        assert store.metrics_parquet(oldest.id) is None  # its files went with it


def test_ambiguous_and_unknown_ids_are_clear_errors(db_url: str, scenario_file: Path) -> None:
    result = devopsim.simulate(scenario_file)
    with RunStore(db_url) as store:
        ids = [store.record(result) for _ in range(20)]
        # among 20 random ids two share a first hex digit (pigeonhole: 16 digits)
        firsts = [i[0] for i in ids]
        dup = next(c for c in firsts if firsts.count(c) > 1)
        with pytest.raises(ConfigError, match="ambiguous"):
            store.find(dup)
        with pytest.raises(ConfigError, match="no run with this id"):
            store.find("f" * 32 if "f" * 32 not in ids else "e" * 32)
    for bad in (
        ["runs", "show", "0" * 31 + "x"],
        ["runs", "show", dup],
        ["runs", "export", "abcdef12", "-o", "x"],
    ):
        code, _, err = _run([*bad, "--db", db_url])
        assert code == 2, (bad, err)
        assert "error" in err


def test_resolve_run_reads_a_folder_and_a_stored_run_alike(
    db_url: str, scenario_file: Path, tmp_path: Path
) -> None:
    result = devopsim.simulate(scenario_file)
    folder = tmp_path / "res"
    result.write(folder)
    with RunStore(db_url) as store:
        run_id = store.record(result)
    with resolve_run(folder) as a, resolve_run(run_id[:7], db=db_url) as b:
        assert a.path == folder and a.run_id is None and b.run_id == run_id
        assert a.summary == b.summary == result.summary
        assert a.events() == b.events() == result.events
        assert a.metrics_table().equals(b.metrics_table())
        assert b.metric_store().n_samples == result.store.n_samples
        assert b.scenario_text() == scenario_file.read_text()
    with results_dir(run_id, db=db_url) as d:
        assert (d / "summary.json").read_bytes() == (folder / "summary.json").read_bytes()
    with pytest.raises(ConfigError, match="not a results folder"):
        resolve_run(tmp_path)
    with pytest.raises(ConfigError, match="no such results folder"):
        resolve_run(tmp_path / "missing")
