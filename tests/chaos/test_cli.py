"""`devopsim chaos run` and `devopsim chaos sweep` end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from devopsim.cli import app
from tests.helpers import one_service

QUERY = 'sum(rate(devopsim_client_requests_total{outcome="ok"}[2m])) / sum(rate(devopsim_client_requests_total[2m]))'


def _files(tmp_path: Path, fault: dict[str, Any]) -> tuple[Path, Path]:
    sc = one_service("5/s", "exp(10ms)", duration="30m", concurrency=4, scrape="15s")
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(sc))
    exp = {
        "title": "api under a fault",
        "description": "cli",
        "steady-state-hypothesis": {
            "title": "available",
            "probes": [
                {
                    "type": "probe",
                    "name": "ok-ratio",
                    "tolerance": [0.99, 1.0],
                    "provider": {"type": "prometheus", "query": QUERY},
                }
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "inject",
                "provider": {"type": "fault", "fault": fault},
                "pauses": {"after": 180},
            }
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "heal",
                "provider": {"type": "fault", "fault": {"kind": "recover", "target": "api"}},
            }
        ],
    }
    ex = tmp_path / "exp.json"
    ex.write_text(json.dumps(exp))
    return scen, ex


def test_chaos_run_writes_a_journal_and_exits_by_verdict(tmp_path: Path) -> None:
    scen, ex = _files(tmp_path, {"kind": "network-delay", "target": "api", "delay": "1ms"})
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["chaos", "run", str(ex), "--scenario", str(scen), "--out", str(out), "--at", "10m"]
    )
    assert res.exit_code == 0, res.output
    j = json.loads((out / "journal.json").read_text())
    assert j["status"] == "completed" and j["deviated"] is False
    assert j["experiment"]["title"] == "api under a fault"
    assert [r["activity"]["name"] for r in j["run"]] == ["inject"]
    assert (out / "summary.json").exists() and (out / "events.jsonl").exists()

    scen, ex = _files(tmp_path, {"kind": "network-partition", "target": "api"})
    res = CliRunner().invoke(app, ["chaos", "run", str(ex), "--scenario", str(scen), "--at", "10m"])
    assert res.exit_code == 1  # the hypothesis deviated
    j = json.loads(res.stdout)
    assert j["deviated"] is True and j["steady_states"]["after"]["steady_state_met"] is False


def test_chaos_run_bad_experiment_is_exit_2_with_file_and_field(tmp_path: Path) -> None:
    scen, _ = _files(tmp_path, {"kind": "pod-kill", "target": "api"})
    ex = tmp_path / "bad.yaml"
    ex.write_text(
        "title: t\nmethod:\n  - type: action\n    name: x\n    provider: {type: process, path: /bin/kill}\n"
    )
    res = CliRunner().invoke(app, ["chaos", "run", str(ex), "--scenario", str(scen)])
    assert res.exit_code == 2
    assert f"{ex}:5: method[0].provider:" in res.output and "process providers" in res.output


def test_chaos_sweep_ranks_components(tmp_path: Path) -> None:
    sc = one_service("5/s", "exp(10ms)", duration="2h", concurrency=4, replicas=2)
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(sc))
    res = CliRunner().invoke(app, ["chaos", "sweep", str(scen), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["component"] for r in data["ranking"]] == ["api (one pod)"]
    assert data["ranking"][0]["fault"] == "pod-kill"
