"""Runs that end badly (kill -9, SIGTERM, Ctrl-C, an error) and processes writing at once.

Each case runs real ``devopsim`` processes against SQLite and a real PostgreSQL server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import devopsim
from devopsim.store import RunStore
from devopsim.store.runstore import RunInfo
from tests.store.conftest import small_scenario


def _start_run(db_url: str, scenario: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "devopsim.cli",
        "run",
        str(scenario),
        "--db",
        db_url,
        "--no-progress",
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_running(store: RunStore, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> RunInfo:
    """Wait until the process's run is in the store as running (and the simulation under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mine = [r for r in store.runs() if r.pid == proc.pid]
        if mine:
            assert mine[0].status == "running"
            time.sleep(1.0)  # well inside the simulation, not in the start-up
            return mine[0]
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1].decode())
        time.sleep(0.1)
    proc.kill()
    proc.communicate()
    raise AssertionError("the run never appeared in the store")


@pytest.fixture
def long_scenario(tmp_path: Path) -> Path:
    """A request-plane run of many simulated hours: minutes of wall clock, far longer than the tests wait."""
    return small_scenario(tmp_path / "long.yaml", duration="2000h", rate=50.0)


def test_kill_9_mid_run_leaves_a_consistent_store_with_the_run_interrupted(
    db_url: str, long_scenario: Path, scenario_file: Path
) -> None:
    with RunStore(db_url) as store:
        before = store.record(devopsim.simulate(scenario_file))
        metrics_before = store.metrics_parquet(before)
        proc = _start_run(db_url, long_scenario)
        run = _wait_running(store, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        after = {r.id: r for r in store.runs()}  # listing finds the dead process
        assert after[run.id].status == "interrupted"
        assert after[run.id].ended_at is not None and "ended without finishing" in (after[run.id].error or "")
        killed = store.get(run.id)
        assert killed.summary is None and killed.n_samples is None
        assert store.metrics_parquet(run.id) is None and store.events_jsonl(run.id) is None
        # the run recorded before is untouched
        assert after[before].status == "completed" and store.metrics_parquet(before) == metrics_before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_mark_the_run_interrupted(db_url: str, long_scenario: Path, sig: int) -> None:
    with RunStore(db_url) as store:
        proc = _start_run(db_url, long_scenario)
        run = _wait_running(store, proc)
        os.kill(proc.pid, sig)
        proc.communicate(timeout=30)
        assert proc.returncode != 0
        if sig == signal.SIGTERM:
            assert proc.returncode == 128 + signal.SIGTERM
        got = store.get(run.id)
        # marked by the process itself on the way out (not by a later sweep)
        assert got.status == "interrupted" and "Ctrl-C or SIGTERM" in (got.error or "")
        assert store.metrics_parquet(run.id) is None


def test_a_failing_run_is_marked_failed(
    db_url: str, scenario_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from devopsim import cli
    from devopsim.errors import SimulationError

    def boom(*_a: object, **_k: object) -> None:
        raise SimulationError("the engine broke")

    monkeypatch.setattr(cli, "_simulate", boom)
    res = CliRunner().invoke(cli.app, ["run", str(scenario_file), "--db", db_url])
    assert res.exit_code == 1 and "the engine broke" in res.stderr
    with RunStore(db_url) as store:
        (run,) = store.runs()
        assert run.status == "failed" and "the engine broke" in (run.error or "")


@pytest.mark.slow
def test_two_processes_recording_at_once_both_land(db_url: str, scenario_file: Path, tmp_path: Path) -> None:
    n = 6
    go = tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        import devopsim
        from devopsim.store import RunStore
        result = devopsim.simulate({str(scenario_file)!r}, seed=int(sys.argv[1]))
        store = RunStore({db_url!r})
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
        for _ in range({n}):
            store.record(result)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(seed)], stderr=subprocess.PIPE) for seed in (1, 2)
    ]
    # and two `devopsim run` commands at the same time
    clis = [_start_run(db_url, scenario_file, "--seed", str(seed), "--json") for seed in (3, 4)]
    time.sleep(1.0)
    go.touch()
    for p in procs + clis:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    with RunStore(db_url) as store:
        runs = store.runs(limit=None)
        assert len(runs) == 2 * n + 2
        assert all(r.status == "completed" for r in runs)
        assert sorted(r.seed for r in runs) == [1] * n + [2] * n + [3, 4]
        for r in runs:
            assert store.metrics_parquet(r.id) and store.events_jsonl(r.id) is not None
