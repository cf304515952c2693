"""`devopsim report` and `devopsim compare` from the command line."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from devopsim.cli import app


def test_report_command_writes_a_self_contained_page(checkout_run, tmp_path):
    out = tmp_path / "again.html"
    res = CliRunner().invoke(app, ["report", str(checkout_run), "-o", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    # nothing to fetch: no external script, stylesheet, image or font
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)=["']?https?:""", html)
    assert "default-src 'none'" in html
    # the inlined data carry the run's own SLO verdicts
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', html, re.S).group(1))
    assert data["mode"] == "report" and data["panels"]
    summary = json.loads((checkout_run / "summary.json").read_text())
    for slo in summary["slos"]:
        verdict = "met" if slo["met"] else "missed"
        assert re.search(rf"{re.escape(slo['name'])}</td>.*?badge {verdict}", html, re.S)


def test_compare_command(hpa_runs, tmp_path):
    a, b = hpa_runs
    out = tmp_path / "cmp.html"
    res = CliRunner().invoke(app, ["compare", str(a), str(b), "-o", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    assert "Trade-off: B saves" in html and "p99 latency" in html


def test_report_of_a_folder_without_results(tmp_path):
    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 1
    assert "no summary.json" in res.output


def test_report_of_a_missing_run(tmp_path):
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert res.exit_code in (1, 2)  # 2 once the run store reads it as a bad run id
    assert "no such results folder" in res.output
