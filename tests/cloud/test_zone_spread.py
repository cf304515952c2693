"""Spreading over three zones keeps a service available through a zone outage that takes a
single-zone deployment down for the whole outage.

Six replicas, three nodes (one per zone), constant 60 requests/s of 20 ms work; zone
us-east-1a dies at 20 min for 10 min of a 1 h run. By hand: all in one zone, every
request fails while the zone is out, so availability = 1 - 600 / 3600 = 0.8333; spread
over three zones, the four surviving replicas carry the load (utilisation
60 x 0.02 / 4 = 0.3) and only the requests in flight on the lost ones fail.
"""

from __future__ import annotations

from typing import Any

import pytest

from devopsim.api import _load
from devopsim.engine.runner import Simulation
from tests.helpers import one_region_platform, one_service

OUT_AT, OUT_FOR, RUN = 1200.0, 600.0, 3600.0


def _run(placement: dict[str, Any]) -> dict[str, Any]:
    sc = one_service(
        60,
        "exp(20ms)",
        replicas=6,
        concurrency=4,
        cpu=0.5,
        duration=f"{RUN:g}s",
        plane="flow",
        extra_service={"placement": placement},
    )
    sc["platform"] = one_region_platform(["us-east-1a", "us-east-1b", "us-east-1c"], {"count": 3})
    sc["slos"] = [{"name": "availability", "objective": "99.9%"}]
    sc["timeline"] = [
        {
            "at": f"{OUT_AT:g}s",
            "fault": {"kind": "zone-outage", "target": "us-east-1a", "duration": f"{OUT_FOR:g}s"},
        }
    ]
    return Simulation(_load(sc, None)).run().summary


def test_three_zones_survive_what_one_zone_does_not() -> None:
    pytest.importorskip("devopsim.chaos")
    one = _run({"zones": ["us-east-1a"]})
    three = _run({"spread": "zone"})
    a1, a3 = one["slos"][0]["attained"], three["slos"][0]["attained"]
    assert a1 == pytest.approx(1 - OUT_FOR / RUN, abs=0.01)
    assert a3 >= 0.999
    assert not one["slos"][0]["met"] and three["slos"][0]["met"]
    # The single-zone incident lasts the outage; the spread one hurts (almost) nobody.
    inc1 = next(i for i in one["incidents"] if i["kind"] == "zone-outage")
    assert inc1["start_s"] == OUT_AT
    assert inc1["recovered_s"] == pytest.approx(OUT_AT + OUT_FOR, abs=60.0)
    assert inc1["users_affected"] == pytest.approx(60 * OUT_FOR, rel=0.05)
    inc3 = next(i for i in three["incidents"] if i["kind"] == "zone-outage")
    assert inc3["users_affected"] < 0.01 * inc1["users_affected"]
