"""The command line and the Python API, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import devopsim
from devopsim.cli import app
from devopsim.engine.request import _kernel
from devopsim.engine.request import layout as L
from devopsim.scenario import load_scenario
from tests.helpers import EXAMPLES, one_service

CONTRACT_CLASS = {"requests", "ok", "errors", "latency_s"}
LATENCY = {"mean", "p50", "p90", "p95", "p99", "p999"}
ERRORS = {"timeout", "rejected", "downstream", "injected", "unavailable"}


def _check_contract(s: dict) -> None:
    for key in (
        "scenario",
        "seed",
        "plane",
        "duration_s",
        "warmup_s",
        "classes",
        "services",
        "endpoints",
        "slos",
    ):
        assert key in s, key
    for block in [*s["classes"].values(), *s["endpoints"].values()]:
        assert set(block) >= CONTRACT_CLASS
        assert set(block["errors"]) == ERRORS
        assert set(block["latency_s"]) == LATENCY
    for svc in s["services"].values():
        assert {"requests", "errors", "latency_s", "wait_s", "utilization", "replicas"} <= set(svc)
        assert set(svc["wait_s"]) == {"mean", "p50", "p99"}
        assert set(svc["replicas"]) == {"min", "max", "mean"}
    for slo in s["slos"]:
        assert {"name", "objective", "attained", "met", "budget_burned"} <= set(slo)


@pytest.mark.parametrize("env", ["production", "development", "experimental"])
def test_run_env_json(env: str) -> None:
    res = CliRunner().invoke(
        app, ["run", "--env", env, "--set", "duration=10m", "--set", "warmup=1m", "--json"]
    )
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    _check_contract(s)
    assert s["scenario"] == env and s["duration_s"] == 600
    assert s["not_simulated"]


def test_run_writes_results_and_a_table(tmp_path: Path) -> None:
    out = tmp_path / "mmc"
    res = CliRunner().invoke(
        app, ["run", str(EXAMPLES / "mmc.yaml"), "--set", "duration=2h", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "events.jsonl",
        "metrics.parquet",
        "report.html",
        "summary.json",
    ]
    assert "What users saw" in res.stdout and "get" in res.stdout
    _check_contract(json.loads((out / "summary.json").read_text()))


def test_run_needs_a_scenario_or_an_env() -> None:
    assert CliRunner().invoke(app, ["run"]).exit_code == 2
    assert CliRunner().invoke(app, ["run", str(EXAMPLES / "mmc.yaml"), "--env", "production"]).exit_code == 2


def test_simulate_accepts_paths_dicts_and_objects() -> None:
    sc = one_service("5/s", "exp(10ms)", duration="10m")
    a = devopsim.simulate(sc)
    loaded = load_scenario(text=json.dumps(sc))
    b = devopsim.simulate(loaded)
    c = devopsim.simulate(loaded.scenario)
    assert a.summary == b.summary == c.summary
    assert isinstance(a.metrics, pd.DataFrame) and list(a.metrics.columns) == [
        "t",
        "metric",
        "labels",
        "value",
    ]
    assert a.events[0]["kind"] == "run.start"
    d = devopsim.simulate(EXAMPLES / "mmc.yaml", seed=5, overrides=["duration=1h"])
    assert d.summary["seed"] == 5 and d.summary["duration_s"] == 3600


def test_public_surface_is_what_all_says() -> None:
    public = {n for n in dir(devopsim) if not n.startswith("_")} | {
        "__version__",
        "simulate",
        "Result",
        "load_scenario",
    }
    assert set(devopsim.__all__) <= public
    for name in devopsim.__all__:
        assert getattr(devopsim, name) is not None
    assert issubclass(devopsim.ScenarioError, devopsim.ConfigError)
    assert issubclass(devopsim.ConfigError, devopsim.DevopsimError)
    for err in (
        devopsim.SimulationError,
        devopsim.ChaosError,
        devopsim.TelemetryError,
        devopsim.ExperimentError,
    ):
        assert issubclass(err, devopsim.DevopsimError)


def test_kernel_constants_agree_with_the_layout() -> None:
    for name, value in _kernel.CONSTANTS.items():
        assert getattr(L, name) == pytest.approx(value), name


def test_cli_imports_no_heavy_library() -> None:
    code = (
        "import sys, devopsim.cli; heavy = [m for m in ('numpy', 'pandas', 'pyarrow', 'pydantic') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    help_out = subprocess.run(
        [str(Path(sys.executable).parent / "devopsim"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "run" in help_out and "validate" in help_out and "init" in help_out


def test_version() -> None:
    res = CliRunner().invoke(app, ["version"])
    assert res.exit_code == 0 and res.stdout.strip() == devopsim.__version__
