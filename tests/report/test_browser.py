"""The HTML pages opened in a real headless Chromium, with the network blocked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.report.conftest import save_artifact

# Per chart: the non-marker series and how many of them hold at least one number.
CHART_STATE = """() => {
  const charts = window.__devopsimCharts || {};
  const out = {};
  for (const [id, chart] of Object.entries(charts)) {
    const series = chart.getOption().series.filter(s => s.name !== "__events");
    out[id] = {
      series: series.length,
      with_data: series.filter(s => (s.data || []).some(p => p && p[1] !== null && Number.isFinite(p[1]))).length,
      markers: chart.getOption().series.filter(s => s.name === "__events")
                    .map(s => ((s.markLine || {}).data || []).length)[0] || 0,
      title: chart.getOption().title[0].text,
    };
  }
  return out;
}"""


def _open(browser: Any, page_path: Path, shot: Path) -> dict[str, Any]:
    """Open a page with every non-file request blocked; return what happened."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    problems: list[str] = []
    requests: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: requests.append(r.url))

    def block(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", block)
    page.goto(page_path.as_uri())
    page.wait_for_selector("body[data-charts-ready]", timeout=20_000)
    state = page.evaluate(CHART_STATE)
    dom_charts = page.eval_on_selector_all("div.chart", "els => els.map(e => e.dataset.panel)")
    page.screenshot(path=str(shot), full_page=True)
    html = page.content()
    page.close()
    save_artifact(shot)
    return {"problems": problems, "requests": requests, "state": state, "dom": dom_charts, "html": html}


def test_report_renders_offline_with_data_in_every_chart(browser, checkout_run, tmp_path):
    report = checkout_run / "report.html"
    assert report.is_file(), "run --out writes report.html"
    seen = _open(browser, report, tmp_path / "report-checkout.png")
    assert seen["problems"] == []
    # only the page itself was loaded: nothing else was even attempted
    assert seen["requests"] == [report.as_uri()]
    state = seen["state"]
    assert sorted(state) == sorted(seen["dom"]), "every chart container got a chart"
    for needed in ("traffic", "latency", "errors", "replicas", "cpu", "memory", "pg_tx", "redis_hits"):
        assert needed in state, f"panel {needed} missing"
    for pid, s in state.items():
        assert s["series"] > 0 and s["with_data"] == s["series"], f"chart {pid} has an empty trace: {s}"
    # the deploy (30 min), the rollback (60 min), the pod kill and alerts firing / resolving, when
    # simulated, are marked on every axis; notifications and pending alerts are not
    # (and so are the chaos fault's start and end, and each incident of the summary)
    events = [json.loads(line) for line in (checkout_run / "events.jsonl").read_text().splitlines()]
    marked = ("deploy", "rollback", "pod.killed", "alert.firing", "alert.resolved")
    expected = [e for e in events if e["kind"] in marked or e["kind"].startswith("chaos.fault")]
    assert {"deploy", "rollback", "chaos.fault.start"} <= {e["kind"] for e in expected}
    incidents = json.loads((checkout_run / "summary.json").read_text()).get("incidents") or []
    assert incidents, "the pod kill is an incident"
    assert all(s["markers"] == len(expected) + len(incidents) for s in state.values())


def test_report_tables_match_the_summary(browser, checkout_run, tmp_path):
    summary = json.loads((checkout_run / "summary.json").read_text())
    html = (checkout_run / "report.html").read_text()
    for slo in summary["slos"]:
        assert slo["name"] in html
    for name in summary["services"]:
        assert name in html
    assert "Deployments" in html and "DORA metrics" in html  # sections present when the summary has them
    # the pod kill makes an incident: its section and MTTD/MTTR are shown
    assert bool(summary.get("incidents")) == ("Incidents" in html)


def test_comparison_shows_the_cost_latency_trade_off(browser, hpa_runs, tmp_path):
    from devopsim.report import load_run, render_comparison, write_html
    from devopsim.report.figures import diff_figures

    a_dir, b_dir = hpa_runs
    a, b = load_run(a_dir), load_run(b_dir)
    page = write_html(render_comparison(a, b), tmp_path / "compare-hpa.html")
    seen = _open(browser, page, tmp_path / "compare-hpa.png")
    save_artifact(page)
    assert seen["problems"] == []
    assert seen["requests"] == [page.as_uri()]
    for pid, s in seen["state"].items():
        assert s["with_data"] == s["series"] > 0, f"chart {pid}: {s}"
    # both runs overlaid: A and B lines on the replica chart
    assert seen["state"]["replicas"]["series"] >= 4
    rows = {r.name: r for r in diff_figures(a.summary, b.summary)}
    cost = next(r for r in rows.values() if r.group == "Cost")
    # HPA theory: desired = ceil(current * utilisation / target): a higher target runs fewer replicas ...
    assert "replica-seconds" in cost.name
    assert cost.b < cost.a and cost.verdict == "better"
    # ... and its pods run hotter, so requests wait longer: p99 of what users saw does not improve.
    assert rows["browse p99"].b >= rows["browse p99"].a
    html = seen["html"]
    assert "replica-seconds (cost proxy" in html
    assert "Key figures" in html
