"""Users see the server's latency plus their region's round trip to the region serving them.

One region (AWS us-east-1), clients 60 % in North America, 40 % in Europe, a
constant 10 ms of work at low load: the class's mean latency is 10 ms plus the
mix of the two round trips (the RTT formula computed here), and its upper
quantiles sit at 10 ms plus the longer one.
"""

from __future__ import annotations

import pytest

from devopsim.api import _load
from devopsim.cloud.geo import FIBRE_KM_PER_S, client_location, great_circle_km, region_location
from devopsim.engine.runner import Simulation
from tests.helpers import one_service


def _rtt(client: str) -> float:
    a, b = client_location(client), region_location("aws", "us-east-1")
    assert a is not None and b is not None
    return 2 * great_circle_km(a, b) * 1.5 / FIBRE_KM_PER_S + 0.003


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_class_latency_adds_the_client_round_trip(plane: str) -> None:
    sc = one_service(20, "const(10ms)", replicas=2, concurrency=16, duration="1h", plane=plane)
    sc["platform"] = {"clouds": {"aws": {"regions": {"us-east-1": {"zones": ["us-east-1a"]}}}}}
    sc["traffic"]["clients"] = {"north-america": 0.6, "europe": 0.4}
    sc["slos"] = [{"name": "fast", "objective": "99%", "latency": "60ms"}]
    sim = Simulation(_load(sc, None))
    s = sim.run().summary
    na, eu = _rtt("north-america"), _rtt("europe")
    assert eu > 0.06 > na  # Europe's round trip alone breaks 60 ms
    lat = s["classes"]["get"]["latency_s"]
    assert lat["mean"] == pytest.approx(0.010 + 0.6 * na + 0.4 * eu, rel=0.01)
    assert s["frontdoor"]["clients"]["europe"]["rtt_s"] == pytest.approx(eu, rel=1e-4)
    if not hasattr(sim.plane, "set_class_delay"):
        assert lat["p90"] == pytest.approx(0.010 + eu, rel=0.01)
        assert lat["p50"] == pytest.approx(0.010 + na, rel=0.02)
        # The 40 % of users in Europe are over 60 ms.
        assert s["slos"][0]["attained"] == pytest.approx(0.6, abs=0.01)
