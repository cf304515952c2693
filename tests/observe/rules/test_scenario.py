"""Rules in a simulated run: the error-rate alert fires and resolves when Prometheus' rules say.

The scenario (data/outage.yaml) removes the backend at 10m and brings it back at 20m.
Expected times come from the rule semantics, not from a previous run:

* errors start when the last backend pod is gone (its ``pod.deleted`` event, t_err);
  the 5xx counter of the frontend first has a non-zero sample at the next 15 s
  scrape s1, and ``rate()`` needs two samples in its window, so the ratio is first
  defined (and far above 1 %) at s1 + 15 s; the alert is pending at the first 30 s
  evaluation at or after that, and fires ``for: 2m`` later, on an evaluation tick;
* errors stop when the backend is back (t_ok, on the scrape grid); the last counter
  increase is the scrape at t_ok, so the 5m window ``(t - 5m, t]`` is clean once it no
  longer holds the scrape before it: t >= t_ok - 15 s + 5m; resolved at the first
  evaluation from then on.
"""

from __future__ import annotations

import math
from pathlib import Path

import devopsim

DATA = Path(__file__).parent / "data"


def _tick(t: float, step: float) -> float:
    return math.ceil(t / step) * step


def test_high_error_rate_fires_and_resolves_on_time() -> None:
    res = devopsim.simulate(DATA / "outage.yaml")
    ev = res.events
    t_err = max(e["t"] for e in ev if e["kind"] == "pod.deleted" and e["service"] == "back")
    t_ok = min(e["t"] for e in ev if e["kind"] == "pod.ready" and e["service"] == "back" and e["t"] > 0)
    s1 = math.floor(t_err / 15.0) * 15.0 + 15.0
    pending = _tick(s1 + 15.0, 30.0)
    resolved = _tick(t_ok - 15.0 + 300.0, 30.0)
    (alert,) = res.summary["alerts"]
    assert alert["name"] == "HighErrorRate"
    assert alert["labels"] == {"alertname": "HighErrorRate", "severity": "critical"}
    assert alert["pending_at"] == pending
    assert alert["firing_at"] == pending + 120.0
    assert alert["resolved_at"] == resolved
    assert alert["value"] > 0.01
    assert alert["annotations"]["summary"].endswith("% of requests fail")
    kinds = [
        (e["kind"], e["t"]) for e in ev if e["kind"] in ("alert.pending", "alert.firing", "alert.resolved")
    ]
    assert kinds == [
        ("alert.pending", pending),
        ("alert.firing", pending + 120.0),
        ("alert.resolved", resolved),
    ]


def test_notifications_are_recorded_as_alertmanager_v2_bodies() -> None:
    res = devopsim.simulate(DATA / "outage.yaml")
    posts = [e for e in res.events if e["kind"] == "alert.notify"]
    assert posts, "the email target matches severity=critical"
    first, last = posts[0], posts[-1]
    (alert,) = res.summary["alerts"]
    assert first["t"] == alert["firing_at"]
    assert first["target"] == {"kind": "email", "to": "oncall@example.com"}
    body = first["body"]
    assert isinstance(body, list) and set(body[0]) == {
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
    }
    assert body[0]["labels"]["alertname"] == "HighErrorRate"
    # No start time in the scenario: times count from the Unix epoch. endsAt = ts + 4 * max(30s, 1m).
    fired = alert["firing_at"]
    assert body[0]["startsAt"] == _iso(fired)
    assert body[0]["endsAt"] == _iso(fired + 240.0)
    # The resolved alert is posted at once with endsAt = the resolution time.
    resolved_posts = [p for p in posts if p["t"] == alert["resolved_at"]]
    assert resolved_posts and resolved_posts[0]["body"][0]["endsAt"] == _iso(alert["resolved_at"])
    # Resolved alerts are re-sent for 15 minutes, no longer.
    assert last["t"] <= alert["resolved_at"] + 15 * 60 + 30


def _iso(t: float) -> str:
    from datetime import UTC, datetime, timedelta

    # the run's origin: the summary's start, 2026-01-01T00:00:00Z (DEFAULT_EPOCH) by default
    return (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
