"""Batched rule evaluation (the default) gives exactly what evaluating every rule when due
with instant queries gives (``RulesLoop.mode = "instant"``, the reference): the same events
in the same places of the log, the same summary, the same store (samples in the same append
order, series and metric names registered in the same order, so the same ids).

The crafted scenario (data/batched.yaml) has pods coming and going, counter restarts,
recording rules and rules reading them, rules reading ALERTS, for, keep_firing_for, a group
limit, queries failing at some evaluations, notifications with resends, a query offset,
groups with different intervals and a canary analysis whose query reads ALERTS during the
run; it runs with batches of every size from one evaluation up. The checkout day is the
project's reference workload.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import devopsim
from devopsim.observe.rules.loop import RulesLoop
from devopsim.observe.store import MetricStore

DATA = Path(__file__).parent / "data"
CHECKOUT = Path(__file__).resolve().parents[3].parent / "shared" / "examples" / "checkout.yaml"


def _run(monkeypatch: pytest.MonkeyPatch, path: Path, mode: str, max_pending: int = 240, **kw: Any) -> Any:
    monkeypatch.setattr(RulesLoop, "mode", mode)
    monkeypatch.setattr(RulesLoop, "max_pending", max_pending)
    return devopsim.simulate(path, **kw)


def _store_state(st: MetricStore) -> dict[str, Any]:
    t, ids, v = st.columns()
    s_t, s_ids = st.stale_markers()
    return {
        "t": t.tolist(),
        "ids": ids.tolist(),
        "v": v.view(np.int64).tolist(),
        "names": list(st.metric_names),
        "label_sets": list(st.label_sets),
        "series_metric": list(st.series_metric),
        "series_label_set": list(st.series_label_set),
        "stale": (s_t.tolist(), s_ids.tolist()),
    }


def _assert_same(got: Any, ref: Any) -> None:
    assert json.dumps(got.summary, sort_keys=True) == json.dumps(ref.summary, sort_keys=True)
    assert got.events == ref.events
    assert _store_state(got.store) == _store_state(ref.store)


@pytest.fixture(scope="module")
def reference() -> Any:
    with pytest.MonkeyPatch.context() as mp:
        return _run(mp, DATA / "batched.yaml", "instant")


def test_the_crafted_scenario_covers_what_it_claims(reference: Any) -> None:
    ev, summary = reference.events, reference.summary
    kinds = {e["kind"] for e in ev}
    assert {"alert.pending", "alert.firing", "alert.resolved", "alert.notify", "rule.error"} <= kinds
    errors = {e["error"].split(":")[0] for e in ev if e["kind"] == "rule.error"}
    assert {"exceeded limit 5 with 8 series", "<promql>"} <= errors  # limit, failing queries
    assert any(e["kind"] == "rollout.aborted" for e in ev)  # the analysis saw PaymentErrors firing
    alerts = {a["name"] for a in summary["alerts"]}
    assert {"PaymentErrors", "TooManyAlerts", "PodBusy", "SlowPayments", "Restarted"} <= alerts
    # keep_firing_for: PaymentErrors resolves 2m after its condition went away, so after 2m of
    # evaluations without it (at least 4 ticks of 30 s)
    (pe,) = [a for a in summary["alerts"] if a["name"] == "PaymentErrors"]
    assert pe["resolved_at"] is not None
    resent = [
        e["t"]
        for e in ev
        if e["kind"] == "alert.notify" and any(b["labels"]["alertname"] == "TooManyAlerts" for b in e["body"])
    ]
    assert len(resent) > 10  # a firing alert is sent again every resend delay
    assert reference.store.series_of("service:errors:ratio1m") and reference.store.series_of("ALERTS")


def _count_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, the size of every batch the rules loop computes (appended as it goes)."""
    flushes: list[int] = []
    flush = RulesLoop._flush

    def counted(self: RulesLoop, sim: Any) -> None:
        if self._pending and not self._flushing:
            flushes.append(len(self._pending))
        flush(self, sim)

    monkeypatch.setattr(RulesLoop, "_flush", counted)
    return flushes


@pytest.mark.parametrize(("max_pending", "min_steps"), [(1, 1), (1, 2), (7, 2), (240, 2)])
def test_batches_equal_evaluating_when_due(
    monkeypatch: pytest.MonkeyPatch, reference: Any, max_pending: int, min_steps: int
) -> None:
    monkeypatch.setattr(RulesLoop, "min_steps", min_steps)  # 1: even single steps at once
    flushes = _count_batches(monkeypatch)
    got = _run(monkeypatch, DATA / "batched.yaml", "batched", max_pending)
    _assert_same(got, reference)
    assert flushes and max(flushes) <= max(max_pending, 1)
    if max_pending == 240:
        assert max(flushes) > 20  # evaluations were batched, not run one by one


def test_a_checkout_day_batched_equals_evaluating_when_due(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = _run(monkeypatch, CHECKOUT, "instant")
    got = _run(monkeypatch, CHECKOUT, "batched")
    _assert_same(got, ref)
    assert got.summary["rules"]["evaluations"] == 2880 and got.summary["alerts"]


def test_no_batches_where_the_store_downsamples_during_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    over = ["monitoring.thanos=true", "monitoring.retention=20m", "duration=50m"]
    ref = _run(monkeypatch, DATA / "batched.yaml", "instant", overrides=over)
    flushes = _count_batches(monkeypatch)
    got = _run(monkeypatch, DATA / "batched.yaml", "batched", overrides=over)
    assert got.store.has_downsampled and not flushes
    _assert_same(got, ref)


def test_a_front_door_reading_the_log_and_writing_rows_does_not_force_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # global.yaml's GeoDNS front door reads the event log (outages, pod and node changes) at
    # every probe and writes its counters after the rules at every scrape: neither may force
    # the owed evaluations (the events it reads are never the rules loop's, its rows never
    # share a table with theirs). checkout's rules, and the cloud outage moved into the hour.
    import yaml

    rules = yaml.safe_load(CHECKOUT.read_text())["monitoring"]["rules"]
    over = {"duration": "1h", "chaos[0].at": "20m", "monitoring.rules": rules}
    path = CHECKOUT.parent / "global.yaml"
    ref = _run(monkeypatch, path, "instant", overrides=over)
    flushes = _count_batches(monkeypatch)
    got = _run(monkeypatch, path, "batched", overrides=over)
    _assert_same(got, ref)
    kinds = {e["kind"] for e in ref.events}
    assert {"frontdoor.unhealthy", "frontdoor.failover", "node.failed", "alert.firing"} <= kinds
    assert got.summary["rules"]["evaluations"] == 120
    assert len(flushes) <= 20 and max(flushes) >= 10  # batches, not one evaluation at a time
