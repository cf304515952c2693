"""Incident timelines against hand-computed expectations (MTTD = first detection - start, ...)."""

from __future__ import annotations

import pytest

from devopsim.incidents.build import FAST_BURN, Interval, build_incidents

BUDGET = 0.001  # 99.9 %


def _series(
    bad: dict[int, float], n: float = 1000.0, step: float = 10.0, until: float = 3600.0
) -> list[Interval]:
    """``n`` requests per interval; ``bad[k]`` of them fail in interval k."""
    return [Interval(k * step, (k + 1) * step, n, bad.get(k, 0.0)) for k in range(int(until / step))]


def _build(**kw):  # type: ignore[no-untyped-def]
    args = {
        "faults": [],
        "series": _series({}),
        "budget": BUDGET,
        "slo_name": "availability",
        "alerts": [],
        "failovers": [],
        "events": [],
        "deployments": [],
        "end": 3600.0,
    }
    args.update(kw)
    return build_incidents(**args)


def test_fault_detected_by_the_first_alert_mitigated_by_rollback() -> None:
    # A fault at 600 s makes 5 % of requests fail for 2 minutes (intervals 60..71).
    series = _series({k: 50.0 for k in range(60, 72)})
    alerts = [{"name": "HighErrorRate", "firing_at": 690.0}, {"name": "Later", "firing_at": 700.0}]
    deps = [{"service": "api", "kind": "rollback", "started_s": 705.0}]
    incs, mttd, mttr = _build(
        faults=[{"kind": "dependency-slowdown", "target": "api", "start_s": 600.0, "end_s": None}],
        series=series,
        alerts=alerts,
        deployments=deps,
    )
    (inc,) = incs
    assert inc["cause"] == "dependency-slowdown api"
    assert inc["start_s"] == 600.0
    # 5 % failing: the 5-minute burn rate reaches 14.4 x 0.1 % once 1.44 % of the window failed:
    # k bad intervals of 30 in the window -> 5 % * k / 30 >= 1.44 % -> k >= 9 -> at 690 s, tied with the alert.
    k = next(k for k in range(1, 31) if 0.05 * k / 30 >= FAST_BURN * BUDGET)
    assert inc["detected_s"] == 600.0 + k * 10.0 == 690.0
    assert inc["detected_by"] in ("alert:HighErrorRate", "slo-burn:availability")
    assert mttd == inc["ttd_s"] == 90.0
    assert inc["mitigated_s"] == 705.0 and inc["mitigation"] == "rollback api"
    assert inc["recovered_s"] == 720.0
    assert mttr == 120.0
    assert inc["users_affected"] == 12 * 50
    assert inc["writes_lost"] == 0


def test_health_check_failover_detects_and_mitigates_a_cloud_outage() -> None:
    series = _series({k: 350.0 for k in range(100, 108)})  # europe's 35 % fail for 80 s
    fo = [
        {
            "region": "gcp/europe-west1",
            "failed_s": 1000.0,
            "detected_s": 1025.0,
            "clients_moved": {"europe": "aws/us-east-1"},
        }
    ]
    events = [{"t": 1030.0, "kind": "datastore.failover", "datastore": "users-db", "writes_lost": 12.5}]
    incs, mttd, mttr = _build(
        faults=[{"kind": "cloud-outage", "target": "gcp", "start_s": 1000.0, "end_s": 2200.0}],
        series=series,
        failovers=fo,
        events=events,
    )
    (inc,) = incs
    # 35 % failing burns 14.4 x the budget once k intervals of 30 failed: 0.35 k / 30 >= 1.44 % -> k = 2,
    # i.e. at 1020 s, before the health check's verdict at 1025 s.
    k = next(k for k in range(1, 31) if 0.35 * k / 30 >= FAST_BURN * BUDGET)
    assert inc["detected_by"] == "slo-burn:availability" and inc["detected_s"] == 1000.0 + 10 * k == 1020.0
    assert inc["mitigation"].startswith("failover gcp/europe-west1") and inc["mitigated_s"] == 1025.0
    assert inc["recovered_s"] == 1080.0 and mttr == 80.0 and mttd == 20.0
    slow, _, _ = _build(
        faults=[{"kind": "cloud-outage", "target": "gcp", "start_s": 1000.0, "end_s": 2200.0}],
        series=_series({k: 10.0 for k in range(100, 108)}),  # 1 %: never a fast burn
        failovers=fo,
    )
    assert slow[0]["detected_by"] == "health-check:gcp/europe-west1" and slow[0]["detected_s"] == 1025.0
    assert inc["users_affected"] == 8 * 350
    assert inc["writes_lost"] == 12.5
    assert inc["fault_end_s"] == 2200.0


def test_fast_burn_without_a_fault_is_its_own_incident_and_a_recent_deploy_its_cause() -> None:
    series = _series({k: 100.0 for k in range(200, 230)})  # 10 % failing from 2000 s to 2300 s
    deps = [{"service": "api", "kind": "deploy", "to_version": "v2", "started_s": 1950.0}]
    incs, _, _ = _build(series=series, deployments=deps)
    (inc,) = incs
    assert inc["kind"] == "deploy" and inc["cause"] == "deploy api v2"
    assert inc["start_s"] == 1950.0
    # 10 % * k / 30 >= 1.44 % -> k = 5 intervals -> 2050 s.
    assert inc["detected_s"] == 2050.0 and inc["detected_by"] == "slo-burn:availability"
    assert inc["recovered_s"] == 2300.0
    incs2, _, _ = _build(series=series)
    assert incs2[0]["kind"] == "slo-burn" and incs2[0]["start_s"] == 2000.0


def test_a_fault_nobody_notices_has_no_impact_and_no_mttr() -> None:
    incs, mttd, mttr = _build(
        faults=[{"kind": "pod-kill", "target": "api", "start_s": 100.0, "end_s": 100.0}]
    )
    (inc,) = incs
    assert inc["impact"] is False and inc["users_affected"] == 0 and inc["recovered_s"] is None
    assert inc["detected_s"] is None and mttd is None and mttr is None


def test_a_scale_out_counts_as_mitigation() -> None:
    series = _series({k: 30.0 for k in range(10, 20)})
    events = [{"t": 150.0, "kind": "scale", "service": "api", "from_replicas": 4, "to_replicas": 8}]
    incs, _, _ = _build(
        faults=[{"kind": "traffic-spike", "target": "api", "start_s": 100.0, "end_s": 300.0}],
        series=series,
        events=events,
    )
    assert incs[0]["mitigation"] == "scale-out api" and incs[0]["mitigated_s"] == 150.0
    assert incs[0]["recovered_s"] == pytest.approx(200.0)


def test_a_platform_that_always_misses_its_slo_still_recovers_to_its_usual_self() -> None:
    # 2 % of requests always fail (20x the 0.1 % budget: the burn alert is on all along);
    # a fault at 1000 s adds 30 % for 60 s. Bad = above 3 x the median ratio (6 %).
    bad = {k: 20.0 for k in range(360)}
    bad.update({k: 320.0 for k in range(100, 106)})
    bad.update({k: 300.0 for k in range(250, 253)})  # no fault: a breach of its own at 2500 s
    fo = [{"region": "gcp/europe-west1", "failed_s": 1000.0, "detected_s": 1025.0, "clients_moved": {}}]
    incs, _, _ = _build(
        faults=[{"kind": "cloud-outage", "target": "gcp", "start_s": 1000.0, "end_s": None}],
        series=_series(bad),
        failovers=fo,
    )
    fault = next(i for i in incs if i["kind"] == "cloud-outage")
    assert fault["recovered_s"] == 1060.0 and fault["ttr_s"] == 60.0
    # The burn alert fired at the run's start (its own incident), so it detects nothing new here.
    assert fault["detected_by"] == "health-check:gcp/europe-west1" and fault["ttd_s"] == 25.0
    assert fault["users_affected"] == 6 * 320
    breach = next(i for i in incs if i["start_s"] == 2500.0)
    assert breach["kind"] == "slo-burn" and breach["recovered_s"] == 2530.0
    assert breach["detected_s"] is None  # the burn alert never stopped firing: nothing new to page on
    assert breach["users_affected"] == 3 * 300


def test_a_region_emptied_without_a_fault_is_a_region_lost_incident() -> None:
    series = _series({k: 350.0 for k in range(300, 306)})
    fo = [{"region": "gcp/europe-west1", "failed_s": 3000.0, "detected_s": 3025.0, "clients_moved": {}}]
    (inc,) = _build(series=series, failovers=fo)[0]
    assert inc["kind"] == "region-lost" and inc["cause"] == "region gcp/europe-west1 stopped serving"
    assert inc["mitigation"] == "failover gcp/europe-west1" and inc["mitigated_s"] == 3025.0
    assert inc["start_s"] == 3000.0 and inc["recovered_s"] == 3060.0
