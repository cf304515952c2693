"""The front-door loop in a run: a region lost at a known time fails its clients until they move.

Hand computation (constant rate r, the lost region's clients a share s, failure at
t_f on the probe grid): the record changes at t_d = t_f + (F - 1) * interval +
timeout; before that every one of those clients fails, after it the failing
share falls linearly to 0 over the TTL, so the requests lost are
r * s * ((t_d - t_f) + TTL / 2), of which r * s * (3/8) * TTL in the first half
of the TTL and r * s * (1/8) * TTL in the second.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from devopsim.api import _load
from devopsim.engine.runner import Simulation
from tests.helpers import one_service

RATE, SHARE, T_FAIL, T_BACK = 100.0, 0.35, 1000.0, 1600.0
INTERVAL, F, TIMEOUT, TTL = 10.0, 3, 5.0, 60.0


def _scenario(plane: str) -> dict[str, Any]:
    sc = one_service(
        RATE,
        "exp(5ms)",
        replicas=4,
        concurrency=8,
        duration="2400s",
        plane=plane,
        extra_service={"placement": {"clouds": ["aws", "gcp"], "spread": "zone"}},
    )
    sc["platform"] = {
        "clouds": {
            "aws": {"regions": {"us-east-1": {"zones": ["us-east-1a"]}}},
            "gcp": {"regions": {"europe-west1": {"zones": ["europe-west1-b"]}}},
        },
        "frontDoor": {
            "kind": "geodns",
            "ttl": f"{TTL:g}s",
            "healthCheck": {"interval": f"{INTERVAL:g}s", "failureThreshold": F, "timeout": f"{TIMEOUT:g}s"},
        },
    }
    sc["traffic"]["clients"] = {"north-america": 1 - SHARE, "europe": SHARE}
    sc["slos"] = [{"name": "availability", "objective": "99.9%"}]
    return sc


def _outage(sim: Simulation, kind: str, t: float) -> None:
    # What the chaos engine logs when it takes a cloud down and brings it back.
    sim.log.emit(t, "fault.start" if kind != "recover" else "fault.end", fault=kind, target="gcp")


def _run(plane: str) -> tuple[Simulation, dict[str, Any]]:
    sim = Simulation(_load(_scenario(plane), None))
    sim.clock.schedule(T_FAIL, partial(_outage, sim, "cloud-outage"), priority=0)
    sim.clock.schedule(T_BACK, partial(_outage, sim, "recover"), priority=0)
    return sim, sim.run().summary


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_lost_region_fails_its_clients_until_detection_plus_ttl(plane: str) -> None:
    sim, s = _run(plane)
    detected = T_FAIL + (F - 1) * INTERVAL + TIMEOUT
    fd = s["frontdoor"]
    assert fd["regions"] == ["aws/us-east-1", "gcp/europe-west1"]
    assert fd["clients"]["europe"]["region"] == "gcp/europe-west1"
    (fo,) = fd["failovers"]
    assert fo["region"] == "gcp/europe-west1"
    assert fo["first_failed_probe_s"] == T_FAIL
    assert fo["detected_s"] == pytest.approx(detected)
    assert fo["moved_s"] == pytest.approx(detected + TTL)
    assert fo["clients_moved"] == {"europe": "aws/us-east-1"}
    assert fo["recovered_s"] is not None and T_BACK <= fo["recovered_s"] <= T_BACK + INTERVAL
    want = RATE * SHARE * ((detected - T_FAIL) + TTL / 2)
    assert fo["lost_requests"] == pytest.approx(want, rel=1e-3)
    # The data plane fails them (set_class_loss): the flow plane counts expected values,
    # the request plane draws each arrival (Poisson-like: 4 standard deviations).
    tol = 1.0 if plane == "flow" else 4 * want**0.5
    assert fd["losses"] == "data plane (set_class_loss)"
    assert s["classes"]["get"]["errors"]["unavailable"] == pytest.approx(want, abs=tol)
    # They never reached a pod: the service served only the rest.
    served = s["services"]["api"]["requests"]
    assert s["classes"]["get"]["requests"] - served == pytest.approx(want, abs=tol)
    # The error curve decays over the TTL: 3/4 of the TTL's losses fall in its first half.
    loop = next(lp for lp in sim.loops if lp.name == "frontdoor")
    first = sum(x for a, b, x in loop.lost_series if detected <= a and b <= detected + TTL / 2)
    second = sum(x for a, b, x in loop.lost_series if detected + TTL / 2 <= a and b <= detected + TTL)
    assert first == pytest.approx(RATE * SHARE * TTL * 3 / 8, rel=0.02)
    assert second == pytest.approx(RATE * SHARE * TTL * 1 / 8, rel=0.02)
    # The availability SLO counts them.
    slo = s["slos"][0]
    assert slo["requests"] - slo["good"] >= want - tol
    kinds = [e["kind"] for e in sim.log.events if e["kind"].startswith("frontdoor.")]
    assert kinds[:2] == ["frontdoor.unhealthy", "frontdoor.failover"]
    assert "frontdoor.healthy" in kinds


def test_frontdoor_counter_shows_the_failures_to_promql() -> None:
    from devopsim.observe.promql import Engine

    sim, _ = _run("flow")
    eng = Engine(sim.store)

    def failed(t: float) -> float:
        q = 'devopsim_frontdoor_requests_total{outcome="unavailable",client_region="europe"}'
        out = eng.instant(f"sum({q})", t)
        assert isinstance(out, list)
        return out[0].value if out else 0.0

    def every(t: float) -> float:
        out = eng.instant("sum(devopsim_frontdoor_requests_total)", t)
        assert isinstance(out, list)
        return out[0].value

    # Scrapes every 60 s: between 960 and 1020 the region is dead from T_FAIL = 1000 on and
    # not yet detected (detection at 1025), so every European request of [1000, 1020) failed.
    assert failed(960.0) == 0.0
    assert failed(1020.0) == pytest.approx(RATE * SHARE * 20.0, rel=1e-6)
    assert every(1020.0) - every(960.0) == pytest.approx(RATE * 60.0, rel=1e-6)
    # All of them by the end: r s ((t_d - t_f) + TTL / 2).
    want = RATE * SHARE * ((F - 1) * INTERVAL + TIMEOUT + TTL / 2)
    assert failed(2340.0) == pytest.approx(want, rel=1e-6)
    series = eng.instant('devopsim_frontdoor_requests_total{outcome="unavailable"} > 0', 2340.0)
    assert isinstance(series, list)
    assert {(x.labels["client_region"], x.labels["region"]) for x in series} == {
        ("europe", "gcp/europe-west1")
    }
