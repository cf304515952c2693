"""A cloud outage in a run becomes one incident with the timeline the settings imply.

GCP (35 % of the clients) dies at 1000 s; health checks every 10 s, 3 failures,
5 s timeout; TTL 60 s; 100 requests/s; 5 s scrapes. By hand: the GeoDNS record
changes at 1025 s (the mitigation), clients have moved by 1085 s (the recovery:
the last 5 s interval with failures ends there), the 5-minute burn reaches 14.4x
the 0.1 % budget after k = ceil(14.4 * 0.001 * 60 / 0.35) = 3 bad intervals
(1015 s), and 100 * 0.35 * (25 + 60 / 2) = 1925 requests fail.
"""

from __future__ import annotations

import math
from functools import partial

import pytest

from devopsim.api import _load
from devopsim.engine.runner import Simulation
from tests.cloud.test_frontdoor_loop import RATE, SHARE, _outage, _scenario


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_cloud_outage_incident(plane: str) -> None:
    sc = _scenario(plane)
    sc["monitoring"] = {"scrapeInterval": "5s"}
    sc["timeline"] = [{"at": "1000s", "fault": {"kind": "cloud-outage", "target": "gcp", "duration": "600s"}}]
    sim = Simulation(_load(sc, None))
    sim.clock.schedule(1000.0, partial(_outage, sim, "cloud-outage"), priority=0)
    sim.clock.schedule(1600.0, partial(_outage, sim, "recover"), priority=0)
    s = sim.run().summary
    (inc,) = s["incidents"]
    k = math.ceil(14.4 * 0.001 * 60 / SHARE - 1e-9)
    assert inc["cause"] == "cloud-outage gcp" and inc["start_s"] == 1000.0
    assert inc["detected_s"] == 1000.0 + 5 * k == 1015.0
    assert inc["detected_by"] == "slo-burn:availability"
    assert inc["mitigated_s"] == 1025.0 and inc["mitigation"].startswith("failover gcp/europe-west1")
    assert inc["recovered_s"] == 1085.0
    assert inc["users_affected"] == pytest.approx(RATE * SHARE * (25 + 30), rel=0.01)
    assert s["mttd_s"] == 15.0 and s["mttr_s"] == 85.0
