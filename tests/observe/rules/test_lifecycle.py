"""The alert life cycle on crafted series, against Prometheus' documented rules/alerting.go.

``up{job="api"}`` is scraped every 15 s; it is 0 from ``down_from`` until ``down_to``.
Groups are evaluated every 30 s from t = 0, and an instant selector sees the
latest sample at or before the evaluation time.
"""

from __future__ import annotations

from typing import Any

import pytest

from devopsim.observe.promql import Engine
from devopsim.observe.rules import GroupEvaluator, parse_rule_groups
from devopsim.observe.store import MetricStore
from devopsim.scenario.yamlsrc import parse_yaml_text


def _store(down: list[tuple[float, float]], end: float = 900.0) -> MetricStore:
    pts = []
    t = 0.0
    while t <= end:
        pts.append((t, 0.0 if any(a <= t < b for a, b in down) else 1.0))
        t += 15.0
    return MetricStore.from_series([("up", {"job": "api", "instance": "x:1"}, pts)])


def _group(rule: str) -> Any:
    src = parse_yaml_text("groups:\n- name: g\n  interval: 30s\n  rules:\n" + rule, "rules.yml")
    return parse_rule_groups(src.data, src)[0]


def _run(store: MetricStore, rule: str, end: float = 900.0) -> tuple[list[tuple[str, float]], GroupEvaluator]:
    engine = Engine(store)
    ev = GroupEvaluator(_group(rule), store, engine.instant, 30.0)
    out = []
    t = 0.0
    while t <= end:
        events, _ = ev.eval(t)
        out += [(e.kind, e.t) for e in events]
        t += 30.0
    return out, ev


RULE = """  - alert: Down
    expr: up == 0
    for: {for_}
    {extra}
    labels: {{severity: page}}
    annotations: {{summary: "{{{{ $labels.instance }}}} of {{{{ $labels.job }}}} is {{{{ $value }}}}"}}
"""


def test_for_delays_firing_to_the_evaluation_tick() -> None:
    # Down at 120 s (sampled exactly then): pending at the 120 s evaluation; `for: 45s`
    # is reached at 165 s, but evaluations happen at 150 and 180: firing at 180.
    # Up again at 300 s: resolved at the 300 s evaluation.
    store = _store([(120.0, 300.0)])
    events, _ = _run(store, RULE.format(for_="45s", extra=""))
    assert events == [("pending", 120.0), ("firing", 180.0), ("resolved", 300.0)]


def test_for_zero_fires_at_first_evaluation() -> None:
    events, _ = _run(_store([(120.0, 300.0)]), RULE.format(for_="0s", extra=""))
    assert events[:2] == [("pending", 120.0), ("firing", 120.0)]


def test_pending_alert_dropped_without_firing() -> None:
    # Down for 45 s only (120..165): pending at 120 and 150, gone at 180, never fires with for: 1m.
    events, _ = _run(_store([(120.0, 165.0)]), RULE.format(for_="1m", extra=""))
    assert events == [("pending", 120.0), ("inactive", 180.0)]


def test_keep_firing_for_holds_then_resolves() -> None:
    # Condition gone from 300 s: KeepFiringSince = 300; still firing at 330 (30 < 60),
    # resolved at 360 (60 >= 60 is no longer "< keep_firing_for").
    events, _ = _run(_store([(120.0, 300.0)]), RULE.format(for_="0s", extra="keep_firing_for: 1m"))
    assert events == [("pending", 120.0), ("firing", 120.0), ("resolved", 360.0)]


def test_keep_firing_since_resets_when_condition_returns() -> None:
    # Down 120..300, up 300..330, down again 330..390: KeepFiringSince reset at 330,
    # then counted again from 390: resolved at 390 + 60 = 450.
    store = _store([(120.0, 300.0), (330.0, 390.0)])
    events, _ = _run(store, RULE.format(for_="0s", extra="keep_firing_for: 1m"))
    assert events == [("pending", 120.0), ("firing", 120.0), ("resolved", 450.0)]


def test_alert_labels_annotations_and_alerts_series() -> None:
    store = _store([(120.0, 300.0)])
    engine = Engine(store)
    ev = GroupEvaluator(_group(RULE.format(for_="1m", extra="")), store, engine.instant, 30.0)
    for t in (0.0, 30.0, 60.0, 90.0, 120.0, 150.0):
        ev.eval(t)
    (pending,) = ev.alerting[0].active.values()
    assert pending.labels == {"alertname": "Down", "severity": "page", "job": "api", "instance": "x:1"}
    assert pending.annotations == {"summary": "x:1 of api is 0"}
    got = engine.instant('ALERTS{alertname="Down"}', 150.0)
    assert isinstance(got, list)
    assert [s.labels["alertstate"] for s in got] == ["pending"]
    ev.eval(180.0)
    firing = engine.instant('ALERTS{alertstate="firing"}', 180.0)
    assert isinstance(firing, list) and len(firing) == 1
    assert firing[0].labels == {
        "__name__": "ALERTS",
        "alertname": "Down",
        "alertstate": "firing",
        "severity": "page",
        "job": "api",
        "instance": "x:1",
    }
    for_state = engine.instant("ALERTS_FOR_STATE", 180.0)
    assert isinstance(for_state, list) and [s.value for s in for_state] == [120.0]


def test_recording_rule_feeds_a_later_rule_at_the_same_time() -> None:
    store = _store([(120.0, 300.0)])
    rules = """  - record: job:up:sum
    expr: sum by (job) (up)
    labels: {team: core}
  - alert: JobDown
    expr: job:up:sum == 0
"""
    events, _ = _run(store, rules, end=150.0)
    assert ("firing", 120.0) in events
    engine = Engine(store)
    rec = engine.instant("job:up:sum", 150.0)
    assert isinstance(rec, list)
    assert rec[0].labels == {"__name__": "job:up:sum", "job": "api", "team": "core"}
    assert rec[0].value == 0.0


def test_resend_and_ends_at_like_prometheus() -> None:
    # Firing from 120; sent at 120, then when LastSentAt + 1m < ts: 210 (not 180), 300 resolved at once.
    store = _store([(120.0, 300.0)])
    engine = Engine(store)
    ev = GroupEvaluator(_group(RULE.format(for_="0s", extra="")), store, engine.instant, 30.0)
    sent = []
    t = 0.0
    while t <= 330.0:
        _, send = ev.eval(t)
        sent += [(t, a.resolved_at, a.valid_until) for a in send]
        t += 30.0
    assert [s[0] for s in sent] == [120.0, 210.0, 300.0]
    assert sent[0][2] == 120.0 + 4 * 60.0  # endsAt = ts + 4 * max(interval, resend delay)
    assert sent[2][1] == 300.0


@pytest.mark.parametrize("limit", [1, 0])
def test_limit(limit: int) -> None:
    store = MetricStore.from_series([("up", {"i": str(i)}, [(0.0, 0.0)]) for i in range(2)])
    src = parse_yaml_text(
        f"groups:\n- name: g\n  limit: {limit}\n  rules:\n  - alert: A\n    expr: up == 0\n", "r.yml"
    )
    g = parse_rule_groups(src.data, src)[0]
    ev = GroupEvaluator(g, store, Engine(store).instant, 60.0)
    events, _ = ev.eval(0.0)
    kinds = [e.kind for e in events]
    if limit == 1:
        assert kinds[-1] == "error" and "exceeded limit of 1 with 2 alerts" in events[-1].message
        assert ev.alerting[0].active == {}
    else:
        assert kinds.count("firing") == 2
