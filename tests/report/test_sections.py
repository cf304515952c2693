"""Optional sections: rendered when the summary has them, absent otherwise."""

from __future__ import annotations

import json
import re

from devopsim.observe.store import MetricStore
from devopsim.report import RunData, render_comparison, render_report


def _run(**extra) -> RunData:
    summary = {
        "scenario": "tiny",
        "seed": 1,
        "plane": "flow",
        "duration_s": 600.0,
        "warmup_s": 60.0,
        "classes": {
            "get": {
                "requests": 1000,
                "ok": 990,
                "errors": {"timeout": 10},
                "latency_s": {
                    "mean": 0.01,
                    "p50": 0.008,
                    "p90": 0.02,
                    "p95": 0.03,
                    "p99": 0.05,
                    "p999": 0.09,
                },
            }
        },
        "services": {},
        "slos": [],
        **extra,
    }
    t = [float(x) for x in range(0, 601, 15)]
    store = MetricStore.from_series(
        [
            ("devopsim_client_requests_total", {"class": "get", "outcome": "ok"}, [(x, 2 * x) for x in t]),
            (
                "devopsim_client_requests_total",
                {"class": "get", "outcome": "timeout"},
                [(x, 0.02 * x) for x in t],
            ),
        ]
    )
    return RunData(
        summary, [{"t": 300.0, "kind": "deploy", "service": "api", "version": "v2"}], store, "tiny"
    )


def _data(html: str) -> dict:
    return json.loads(re.search(r'id="report-data">(.*?)</script>', html, re.S).group(1))


def test_absent_sections_are_hidden():
    html = render_report(_run())
    for section in ('id="alerts"', 'id="incidents"', 'id="cost"', 'id="deployments"'):
        assert section not in html
    assert "The scenario declares no SLOs" in html


def test_alerts_incidents_cost_are_rendered_and_marked():
    run = _run(
        alerts=[{"name": "HighErrorRate", "severity": "critical", "fired_s": 420.0, "resolved_s": 540.0}],
        incidents=[{"name": "db down", "started_s": 400.0, "resolved_s": 500.0}],
        cost={"total": 12.5, "currency": "USD", "by_service": {"api": 12.5}},
    )
    html = render_report(run)
    for section in ('id="alerts"', 'id="incidents"', 'id="cost"'):
        assert section in html
    assert "HighErrorRate" in html and "db down" in html
    marks = _data(html)["markers"][0]
    assert [m["t"] for m in marks] == [300.0, 400.0, 420.0]
    # the traffic panel is the PromQL rate of the counters: 2/s ok + 0.02/s timeouts
    traffic = next(p for p in _data(html)["panels"] if p["id"] == "traffic")
    assert traffic["series"][0]["y"][1:] == [2.02] * 40


def test_priced_runs_compare_on_cost_not_replica_seconds():
    a = _run(cost={"total": 10.0, "currency": "USD"})
    b = _run(cost={"total": 12.0, "currency": "USD"})
    html = render_comparison(a, b)
    assert "replica-seconds" not in html.split('id="figures-table"')[1].split("</table>")[0]
    assert re.search(r"<td class=\"l\">cost</td>.*?\+20 %", html, re.S)
