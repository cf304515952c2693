"""The weak-point sweep: components, the worst time of day, and checkout.yaml's ranking."""

from __future__ import annotations

import pytest

from devopsim.chaos.sweep import components, sweep, worst_time
from devopsim.scenario.loader import load_scenario
from tests.helpers import EXAMPLES


def test_checkout_components_and_worst_time() -> None:
    loaded = load_scenario(EXAMPLES / "checkout.yaml")
    # diurnal(min=200/s, max=1200/s, peak=20:00) from 2026-01-05T00:00Z: the peak is 20 h in.
    assert worst_time(loaded) == 20 * 3600
    assert worst_time(loaded, "09:30") == 9.5 * 3600
    names = [c["component"] for c in components(loaded, 300.0)]
    assert names == [
        "frontend (one pod)",
        "catalog (one pod)",
        "cart (one pod)",
        "orders-db primary",
        "orders-db replica",
        "cache shard",
    ]
    cache = next(c for c in components(loaded, 300.0) if c["component"] == "cache shard")
    assert cache["faults"][0]["loss"] == pytest.approx(1 / 3)  # one shard of three


@pytest.mark.slow
def test_checkout_sweep_names_the_database_primary_and_the_cache() -> None:
    res = sweep(load_scenario(EXAMPLES / "checkout.yaml"))
    assert res["at"] == "20:00"
    top = [r["component"] for r in res["ranking"][:2]]
    assert set(top) == {"orders-db primary", "cache shard"}, res["ranking"]
    pods = [r for r in res["ranking"] if r["component"].endswith("(one pod)")]
    worst_pod = max(r["extra_failed_requests"] for r in pods)
    for r in res["ranking"][:2]:
        assert r["extra_failed_requests"] > 100 * max(worst_pod, 1.0)
        assert r["slo_minutes_lost"] > 0
