"""`devopsim query` and `devopsim export` end to end on a real (short) run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devopsim.cli import app
from devopsim.export.grafana import PANELS
from devopsim.export.run_ref import load_store
from devopsim.observe.promql import Engine, check

EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "examples" / "checkout.yaml"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from devopsim.api import simulate

    out = tmp_path_factory.mktemp("run") / "r"
    simulate(EXAMPLE, overrides=["duration=10m"]).write(out)
    return out


def test_query_json_matches_the_engine(run_dir: Path) -> None:
    expr = "sum by (service) (rate(http_requests_total[5m]))"
    res = CliRunner().invoke(app, ["query", str(run_dir), expr, "--at", "8m", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)["data"]
    assert data["resultType"] == "vector" and data["result"]
    direct = Engine(load_store(run_dir)).instant(expr, 480.0)
    assert isinstance(direct, list)
    want = {s.labels["service"]: s.value for s in direct}
    got = {r["metric"]["service"]: float(r["value"][1]) for r in data["result"]}
    assert got == want and all(r["value"][0] == 480.0 for r in data["result"])


def test_query_range_and_table(run_dir: Path) -> None:
    res = CliRunner().invoke(
        app, ["query", str(run_dir), "sum(kube_deployment_spec_replicas)", "--range", "0:10m:1m"]
    )
    assert res.exit_code == 0, res.output
    assert "range result (1 series)" in res.output
    res = CliRunner().invoke(
        app, ["query", str(run_dir), "sum(kube_deployment_spec_replicas)", "--range", "0:2m:1m", "--json"]
    )
    data = json.loads(res.stdout)["data"]
    assert data["resultType"] == "matrix"
    assert [p[0] for p in data["result"][0]["values"]] == [0.0, 60.0, 120.0]


@pytest.mark.parametrize(
    ("expr", "message"),
    [("sum(", "malformed PromQL"), ('label_replace(up, "a", "b", "c", "d")', "label_replace")],
)
def test_bad_expressions_exit_2(run_dir: Path, expr: str, message: str) -> None:
    res = CliRunner().invoke(app, ["query", str(run_dir), expr])
    assert res.exit_code == 2
    assert message in res.output


def test_unknown_run_exits_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["query", str(tmp_path / "nope"), "up"])
    assert res.exit_code == 2 and "no run named" in res.output


def test_grafana_dashboard_queries_real_series(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "dash.json"
    res = CliRunner().invoke(app, ["export", "grafana", str(run_dir), "-o", str(out)])
    assert res.exit_code == 0, res.output
    board = json.loads(out.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert len(exprs) == sum(len(p[2]) for p in PANELS) >= 6
    services = board["templating"]["list"][0]["query"].split(",")
    assert "frontend" in services and "catalog" in services
    engine = Engine(load_store(run_dir))
    for expr in exprs:
        concrete = expr.replace("$service", ".*")
        check(concrete)
        got = engine.instant(concrete, 600.0)
        assert isinstance(got, list) and got, f"no data for {concrete}"
        assert any(not math.isnan(s.value) for s in got), concrete


def test_openmetrics_export_is_well_formed(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.om"
    res = CliRunner().invoke(
        app, ["export", "openmetrics", str(run_dir), "-o", str(out), "--start", "2026-01-05T00:00:00Z"]
    )
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert lines[-1] == "# EOF"
    types = dict(line.split()[2:4] for line in lines if line.startswith("# TYPE"))
    assert types["http_requests"] == "counter" and types["http_request_duration_seconds"] == "histogram"
    first = next(line for line in lines if line.startswith("container_cpu_usage_seconds_total{"))
    assert first.rsplit(" ", 1)[1] == "1767571200"  # the t=0 scrape at --start, in seconds
    stamps = {float(line.rsplit(" ", 1)[1]) - 1767571200 for line in lines if not line.startswith("#")}
    assert min(stamps) == 0 and max(stamps) == 600 and all(s % 15 == 0 for s in stamps)
