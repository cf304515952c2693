"""global.yaml's experiment: GCP lost at peak is detected and failed over as its settings imply.

The hour around the 17:30 experiment (start 17:00, the experiment 30 min in, 20 min
warm-up). Expectations from the scenario's own settings, computed here:
detection = first probe at or after the failure + (failureThreshold - 1) x interval
+ timeout; every client moved a TTL later; Europe's requests (35 %) fail in full
until the record changes, then in a share falling linearly to 0 over the TTL.
"""

from __future__ import annotations

import numpy as np
import pytest

from devopsim.api import _load
from devopsim.cloud.frontdoor import failover_expectation
from devopsim.engine.runner import Simulation
from tests.helpers import EXAMPLES

OVERRIDES = {"start": "2026-03-02T17:00:00Z", "duration": "1h", "chaos.0.at": "30m", "warmup": "20m"}


def test_gcp_outage_fails_over_in_the_time_the_health_check_and_ttl_imply() -> None:
    pytest.importorskip("devopsim.chaos")
    loaded = _load(str(EXAMPLES / "global.yaml"), OVERRIDES)
    sc = loaded.scenario
    assert sc.platform is not None and sc.platform.front_door is not None
    fd, hc = sc.platform.front_door, sc.platform.front_door.health_check
    assert hc is not None
    t_fail = 1800.0
    exp = failover_expectation(t_fail, hc.interval, hc.failure_threshold, hc.timeout, fd.ttl)
    assert exp.detection_s == 25.0 and exp.failover_s == 85.0  # 10 s x (3 - 1) + 5 s; + 60 s TTL
    sim = Simulation(loaded)
    s = sim.run().summary

    share = sc.traffic.clients["europe"]  # type: ignore[index]
    assert s["frontdoor"]["clients"]["europe"]["region"] == "gcp/europe-west1"
    (fo,) = [f for f in s["frontdoor"]["failovers"] if f["failed_s"] == t_fail]
    assert fo["detected_s"] == exp.detected_at and fo["moved_s"] == exp.moved_at
    assert fo["clients_moved"] == {"europe": "aws/us-east-1"}  # the nearest healthy region

    # Requests lost at the front door: the diurnal rate x Europe's share x the failing share.
    t = np.linspace(t_fail, exp.moved_at, 20001)
    rate = sc.traffic.rate.rate(t, sc.clock0)
    failing = np.where(t < exp.detected_at, 1.0, 1.0 - (t - exp.detected_at) / fd.ttl)
    want = float(np.trapezoid(rate * share * failing, t))
    assert fo["lost_requests"] == pytest.approx(want, rel=0.005)

    inc = next(i for i in s["incidents"] if i["kind"] == "cloud-outage")
    assert inc["start_s"] == t_fail
    assert inc["mitigated_s"] == exp.detected_at and inc["mitigation"].startswith("failover gcp/europe-west1")
    assert t_fail < inc["detected_s"] <= exp.detected_at
    assert inc["recovered_s"] >= exp.moved_at
    assert inc["users_affected"] >= want * 0.99
    assert s["mttd_s"] == inc["ttd_s"]
