"""Timeline faults, checked against what Kubernetes / Chaos Mesh document and hand-computed counts.

Small one- and two-service scenarios (Poisson arrivals, M/M/1 where a formula is needed);
expectations are computed here from the scenario's numbers, never taken from a run.
"""

from __future__ import annotations

from typing import Any

import pytest

import devopsim
from devopsim.errors import ChaosError, ScenarioError
from tests.helpers import one_region_platform, one_service

MU = 10.0  # exp(100ms)


def _with(sc: dict[str, Any], *entries: dict[str, Any]) -> dict[str, Any]:
    sc["timeline"] = list(entries)
    return sc


def _poisson_tol(mean: float) -> float:
    return 4.0 * mean**0.5 + 1.0


def test_pod_kill_replaces_pods_after_startup() -> None:
    # Chaos Mesh pod-kill (gracePeriod 0): the pods go now; the ReplicaSet creates replacements
    # at once, which become ready after the service's startup (20 s).
    sc = one_service("5/s", "exp(100ms)", replicas=3, duration="30m", extra_service={"startup": "20s"})
    sc = _with(sc, {"at": "10m", "fault": {"kind": "pod-kill", "target": "api", "count": 2}})
    r = devopsim.simulate(sc)
    ev = r.events
    killed = [e for e in ev if e["kind"] == "pod.deleted"]
    assert [e["t"] for e in killed] == [600.0, 600.0]
    created = [e for e in ev if e["kind"] == "pod.created" and e["t"] > 0]
    assert [e["t"] for e in created] == [600.0, 600.0]
    ready = [e for e in ev if e["kind"] == "pod.ready" and e["t"] > 0]
    assert [e["t"] for e in ready] == [620.0, 620.0]
    f = r.summary["faults"][0]
    assert f["kind"] == "pod-kill" and f["source"] == "timeline[0]"
    assert sorted(f["affected"]) == sorted(e["pod"] for e in killed)
    assert any(e["kind"] == "chaos.fault.start" and e["fault"] == "pod-kill" for e in ev)


@pytest.mark.parametrize("plane", ["request", "flow"])
def test_pod_failure_of_the_only_pod_fails_its_requests_for_the_duration(plane: str) -> None:
    lam, dur = 5.0, 120.0
    sc = one_service(f"{lam}/s", "exp(10ms)", duration="30m", concurrency=4, plane=plane)
    sc = _with(sc, {"at": "10m", "fault": {"kind": "pod-failure", "target": "api", "duration": "2m"}})
    s = devopsim.simulate(sc).summary
    want = lam * dur  # every arrival while the only replica is down fails (no retries)
    assert s["classes"]["get"]["errors"]["unavailable"] == pytest.approx(want, abs=_poisson_tol(want) + 5)
    f = s["faults"][0]
    assert (f["start_s"], f["end_s"], f["ended_by"]) == (600.0, 720.0, "duration")


@pytest.mark.parametrize("plane", ["request", "flow"])
def test_network_delay_for_half_the_run(plane: str) -> None:
    lam, d = 5.0, 0.05
    sc = one_service(f"{lam}/s", "exp(100ms)", duration="2h", plane=plane)
    sc = _with(sc, {"at": "1h", "fault": {"kind": "network-delay", "target": "api", "delay": "50ms"}})
    s = devopsim.simulate(sc).summary
    # Half the requests see M/M/1 alone, half M/M/1 + d.
    want = 1.0 / (MU - lam) + d / 2
    assert s["classes"]["get"]["latency_s"]["mean"] == pytest.approx(want, rel=0.04)


@pytest.mark.parametrize("plane", ["request", "flow"])
def test_partition_until_recover_fails_that_share(plane: str) -> None:
    lam = 5.0
    sc = one_service(f"{lam}/s", "exp(10ms)", duration="1h", concurrency=4, plane=plane)
    sc = _with(
        sc,
        {"at": "20m", "fault": {"kind": "network-partition", "target": "api"}},
        {"at": "35m", "fault": {"kind": "recover", "target": "api"}},
    )
    s = devopsim.simulate(sc).summary
    want = lam * 900.0
    assert s["classes"]["get"]["errors"]["unavailable"] == pytest.approx(want, abs=_poisson_tol(want) + 10)
    part = s["faults"][0]
    assert part["end_s"] == 2100.0 and part["ended_by"].startswith("recover")


def test_dns_failure_of_a_dependency_fails_its_callers() -> None:
    sc = one_service(
        "5/s",
        "exp(10ms)",
        duration="30m",
        concurrency=4,
        endpoint={"steps": [{"work": "exp(10ms)"}, {"call": "db.get"}]},
    )
    sc["services"]["db"] = {
        "replicas": 1,
        "concurrency": 4,
        "resources": {"requests": {"cpu": 4}},
        "endpoints": {"get": {"steps": [{"work": "exp(5ms)"}]}},
    }
    sc = _with(sc, {"at": "10m", "fault": {"kind": "dns-failure", "target": "db", "duration": "5m"}})
    s = devopsim.simulate(sc).summary
    want = 5.0 * 300.0
    assert s["classes"]["get"]["errors"]["downstream"] == pytest.approx(want, abs=_poisson_tol(want) + 5)


@pytest.mark.parametrize("plane", ["request", "flow"])
def test_cpu_stress_leaving_half_a_core_doubles_mm1_service(plane: str) -> None:
    lam = 2.5
    sc = one_service(f"{lam}/s", "exp(100ms)", duration="4h", warmup="10m", plane=plane)
    sc = _with(sc, {"at": "0s", "fault": {"kind": "cpu-stress", "target": "api", "cores": 0.5}})
    s = devopsim.simulate(sc).summary
    assert s["classes"]["get"]["latency_s"]["mean"] == pytest.approx(1.0 / (MU / 2 - lam), rel=0.04)


@pytest.mark.parametrize("plane", ["request", "flow"])
def test_traffic_spike_adds_its_rate_for_its_duration(plane: str) -> None:
    sc = one_service("5/s", "exp(10ms)", duration="1h", concurrency=8, plane=plane)
    sc = _with(
        sc,
        {"at": "20m", "fault": {"kind": "traffic-spike", "target": "all", "rate": "20/s", "duration": "10m"}},
    )
    s = devopsim.simulate(sc).summary
    want = 5.0 * 3600 + 20.0 * 600
    assert s["classes"]["get"]["requests"] == pytest.approx(want, abs=_poisson_tol(want))


def test_traffic_flood_reaches_only_the_class_it_names() -> None:
    sc = one_service("10/s", "exp(10ms)", duration="30m", concurrency=8)
    sc["traffic"]["classes"] = [
        {"name": "get", "entry": "api.get", "share": 0.5},
        {"name": "bot", "entry": "api.get", "share": 0.5},
    ]
    sc = _with(
        sc, {"at": "10m", "fault": {"kind": "traffic-flood", "target": "bot", "factor": 4, "duration": "5m"}}
    )
    s = devopsim.simulate(sc).summary
    base = 5.0 * 1800
    assert s["classes"]["get"]["requests"] == pytest.approx(base, abs=_poisson_tol(base))
    bot = base + 3 * 5.0 * 300  # four times its rate for five minutes
    assert s["classes"]["bot"]["requests"] == pytest.approx(bot, abs=_poisson_tol(bot))


@pytest.mark.parametrize("plane", ["request", "flow"])
@pytest.mark.parametrize(
    ("fault", "extra"),
    [
        ({"bandwidth": "100kbps"}, 4096 / 100e3),  # default 4 KiB response, tc bps = bytes/s
        ({"bandwidth": "1mbit", "size": "64Ki"}, 65536 / 125e3),  # mbit = 10^6 bits/s
    ],
)
def test_network_bandwidth_adds_the_serialization_time(
    plane: str, fault: dict[str, Any], extra: float
) -> None:
    # M/M/1 at lambda = 5, mu = 10: mean response 0.2 s; at the cap each response takes
    # size / rate more on the wire.
    sc = one_service("5/s", "exp(100ms)", duration="4h", warmup="10m", plane=plane)
    sc = _with(sc, {"at": "0s", "fault": {"kind": "network-bandwidth", "target": "api", **fault}})
    s = devopsim.simulate(sc).summary
    assert s["classes"]["get"]["latency_s"]["mean"] == pytest.approx(1.0 / (MU - 5.0) + extra, rel=0.03)
    f = s["faults"][0]
    assert f["simulated"] and (("note" in f) == ("size" not in fault))


def test_a_bandwidth_that_is_not_a_rate_is_refused() -> None:
    sc = one_service("1/s", "exp(10ms)", duration="10m")
    sc = _with(sc, {"at": "1m", "fault": {"kind": "network-bandwidth", "target": "api", "bandwidth": "fast"}})
    with pytest.raises(ChaosError, match="'fast' is not a rate"):
        devopsim.simulate(sc)


def test_memory_leak_oom_kills_at_the_limit_and_again_after_the_restart() -> None:
    # Base working set 60 % of the 100Mi request = 60Mi; limit 200Mi; leak 1Mi/s from the
    # fault's start (t = 60 s): OOMKilled at 60 + 140 = 200 s (plus the requests in service,
    # 256Ki each: at 1 req/s of 10 ms, almost always none). The kubelet restarts it after 10 s
    # (CrashLoopBackOff), it leaks again from 210 s: OOM at 350 s; the next restart (back-off
    # 20 s) comes at 370 s, after the fault ended (360 s), so no third kill.
    sc = one_service(
        "1/s",
        "exp(10ms)",
        duration="10m",
        extra_service={
            "resources": {"requests": {"cpu": 1, "memory": "100Mi"}, "limits": {"memory": "200Mi"}}
        },
    )
    sc = _with(
        sc, {"at": "1m", "fault": {"kind": "memory-leak", "target": "api", "leak": "1Mi/s", "duration": "5m"}}
    )
    r = devopsim.simulate(sc)
    ooms = [e["t"] for e in r.events if e["kind"] == "pod.oom_killed"]
    assert ooms == [pytest.approx(200.0, abs=0.5), pytest.approx(350.0, abs=0.5)]
    f = r.summary["faults"][0]
    assert f["kind"] == "memory-leak" and f["simulated"] and f["end_s"] == 360.0


def test_memory_leak_needs_its_rate() -> None:
    sc = one_service("1/s", "exp(10ms)", duration="10m")
    sc = _with(sc, {"at": "1m", "fault": {"kind": "memory-leak", "target": "api"}})
    with pytest.raises(ChaosError, match="needs 'leak'"):
        devopsim.simulate(sc)


def test_disk_fill_evicts_the_pod_at_the_next_eviction_pass() -> None:
    # The pod's storage is full at once; the kubelet's eviction manager (every 10 s) evicts it
    # with grace 0 and the ReplicaSet creates a replacement, ready after startup (20 s).
    sc = one_service("5/s", "exp(10ms)", replicas=2, duration="10m", extra_service={"startup": "20s"})
    sc = _with(sc, {"at": "2m", "fault": {"kind": "disk-fill", "target": "api"}})
    r = devopsim.simulate(sc)
    ev = [e for e in r.events if e["kind"] == "pod.evicted"]
    assert [e["t"] for e in ev] == [130.0]
    assert "ephemeral-storage" in ev[0]["message"]
    assert [e["t"] for e in r.events if e["kind"] == "pod.created" and e["t"] > 0] == [130.0]
    assert [e["t"] for e in r.events if e["kind"] == "pod.ready" and e["t"] > 0] == [150.0]
    assert r.summary["faults"][0]["affected"] == [ev[0]["pod"]]


def test_a_fault_at_nothing_is_refused_when_the_scenario_loads() -> None:
    sc = one_service("1/s", "exp(10ms)", duration="10m")
    sc = _with(sc, {"at": "1m", "fault": {"kind": "network-delay", "target": "nowhere", "delay": "10ms"}})
    with pytest.raises(
        ScenarioError, match="no service, datastore, node pool, zone, region or cloud named 'nowhere'"
    ):
        devopsim.simulate(sc)


def test_a_network_delay_without_a_delay_stops_the_run_with_a_clear_error() -> None:
    sc = one_service("1/s", "exp(10ms)", duration="10m")
    sc = _with(sc, {"at": "1m", "fault": {"kind": "network-delay", "target": "api"}})
    with pytest.raises(ChaosError, match="network-delay needs 'delay'"):
        devopsim.simulate(sc)


def _zones(plane: str = "request") -> dict[str, Any]:
    return {
        "name": "zones",
        "duration": "20m",
        "seed": 2,
        "plane": plane,
        "platform": one_region_platform(["zone-a", "zone-b", "zone-c"], {"count": 3}),
        "traffic": {"rate": "20/s", "classes": [{"name": "c", "entry": "api.get"}]},
        "services": {
            "api": {
                "replicas": 6,
                "concurrency": 8,
                "resources": {"requests": {"cpu": "500m"}},
                "placement": {"spread": "zone"},
                "endpoints": {"get": {"steps": [{"work": "exp(5ms)"}]}},
            }
        },
    }


def test_zone_outage_fails_that_zones_nodes_and_recovers_them() -> None:
    sc = _zones()
    sc["timeline"] = [{"at": "5m", "fault": {"kind": "zone-outage", "target": "zone-b", "duration": "4m"}}]
    r = devopsim.simulate(sc)
    f = r.summary["faults"][0]
    assert len(f["affected"]) == 2  # six pods spread over three zones
    failed = [e for e in r.events if e["kind"] == "node.failed"]
    recovered = [e for e in r.events if e["kind"] == "node.recovered"]
    assert failed and all(e["t"] == 300.0 and e["zone"] == "zone-b" for e in failed)
    assert recovered and all(e["t"] == 540.0 for e in recovered)


@pytest.mark.parametrize("plane", ["request", "flow"])
def test_partition_of_a_zone_fails_the_share_of_calls_its_pods_take(plane: str) -> None:
    sc = _zones(plane)
    sc["timeline"] = [
        {"at": "5m", "fault": {"kind": "network-partition", "target": "zone-b", "duration": "10m"}}
    ]
    s = devopsim.simulate(sc).summary
    # Two of the six pods are in zone-b: a third of the calls made during the 10 minutes fail.
    want = 20.0 * 600 / 3
    tol = 4 * (20.0 * 600 * (1 / 3) * (2 / 3)) ** 0.5 + 0.02 * want
    assert s["classes"]["c"]["errors"]["unavailable"] == pytest.approx(want, abs=tol)


@pytest.mark.parametrize(("size", "killed"), [("400Mi", 2), ("300Mi", 0)])
def test_memory_stress_oom_kills_only_over_the_limit(size: str, killed: int) -> None:
    # An idle pod's working set is 60 % of its memory request (docs/control.md): 153.6 MiB of
    # 256 MiB. With a 512 MiB limit a 400 MiB stressor goes over (553.6), a 300 MiB one does not.
    sc = one_service(
        "1/s",
        "exp(1ms)",
        replicas=3,
        duration="10m",
        extra_service={
            "resources": {"requests": {"cpu": 1, "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
        },
    )
    sc = _with(
        sc, {"at": "5m", "fault": {"kind": "memory-stress", "target": "api", "count": 2, "memory": size}}
    )
    r = devopsim.simulate(sc)
    oom = [e for e in r.events if e["kind"] == "pod.oom_killed"]
    assert len(oom) == killed and all(e["t"] == 300.0 for e in oom)
    assert len(r.summary["faults"][0]["affected"]) == killed
