"""One service's integrals (``service_total``) against every service's (``service_totals``).

``service_total(s, now)`` exists so that a loop reading one service need not build every
service's totals; it must be ``service_totals(now)[s]`` to the bit: the retired replicas'
totals plus the live replicas' integrals added in slot order, as ``np.bincount`` adds them.
Checked on both planes through a run whose replicas come and go (an HPA scaling ``web``, a
timeline scale-down of ``api`` retiring replicas), and on hand-made arrays with dead slots.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from devopsim.api import _load
from devopsim.engine.runner import Simulation
from devopsim.engine.totals import ServiceTotals, service_total, service_totals, services_cpu

SCENARIO: dict[str, Any] = {
    "duration": "40m",
    "seed": 5,
    "monitoring": {"scrapeInterval": "15s"},
    "traffic": {
        "rate": "ramp(start=50/s, end=400/s, over=30m)",
        "classes": [{"name": "page", "entry": "web.page"}],
    },
    "timeline": [
        {"at": "5m", "scale": {"service": "api", "replicas": 6}},
        {"at": "20m", "scale": {"service": "api", "replicas": 2}},
    ],
    "services": {
        "web": {
            "replicas": 2,
            "concurrency": 16,
            "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}},
            "endpoints": {"page": {"steps": [{"work": "exp(2ms)"}, {"call": "api.get"}]}},
            "autoscaler": {
                "kind": "hpa",
                "minReplicas": 2,
                "maxReplicas": 10,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 50},
                        },
                    }
                ],
            },
        },
        "api": {
            "replicas": 3,
            "concurrency": 8,
            "resources": {"requests": {"cpu": 1}},
            "endpoints": {"get": {"steps": [{"work": "lognormal(mean=5ms, cv=1)"}]}},
        },
    },
}


def _same(a: ServiceTotals, b: ServiceTotals) -> bool:
    return (a.cpu, a.busy, a.occupancy) == (b.cpu, b.busy, b.occupancy)


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_service_total_is_service_totals_entry(plane: str) -> None:
    sim = Simulation(_load({**SCENARIO, "plane": plane}, None))
    n = len(sim.program.services)
    checked: list[float] = []
    retired_seen = [False]

    def check(t: float) -> None:
        every = sim.plane.service_totals(t)
        for s in range(n):
            one = sim.plane.service_total(s, t)
            assert _same(one, every[s]), (t, s, one, every[s])
        # Several services' CPU in one call, as the stateful loop reads a database's.
        for group in ([0], [1], [0, 1], [1, 0], list(range(n))):
            assert sim.plane.service_cpu(group, t) == sum([every[s].cpu for s in group]), (t, group)
        retired = sim.plane.retired if plane == "request" else sim.plane._totals
        retired_seen[0] |= any(r.cpu > 0 for r in retired)
        checked.append(t)

    sim.clock.every(97.0, 2400.0, check, priority=12)
    sim.run()
    assert len(checked) > 20
    assert retired_seen[0]  # replicas were released, so retired totals took part


def test_service_total_adds_in_slot_order() -> None:
    rng = np.random.default_rng(7)
    n, slots = 5, 300
    svc = rng.integers(0, n, slots)
    alive = (rng.random(slots) < 0.6).astype(np.int64)
    # values of very different sizes, so the order of the additions shows in the result
    cpu, busy, occ = (rng.random(slots) * 10.0 ** rng.integers(-8, 8, slots) for _ in range(3))
    retired = [ServiceTotals(float(i), 2.0 * i, 3.0 * i) for i in range(n)]
    every = service_totals(retired, svc, alive, cpu, busy, occ)
    for s in range(n):
        one = service_total(retired, s, svc, alive, cpu, busy, occ)
        assert _same(one, every[s])
        # and by hand: the live replicas of s, in slot order, from 0.0
        acc = 0.0
        for i in range(slots):
            if svc[i] == s and alive[i] == 1:
                acc += float(cpu[i])
        assert one.cpu == retired[s].cpu + acc
    for group in ([0, 3], [4, 1, 2], list(range(n)), []):
        want = sum([service_total(retired, s, svc, alive, cpu, busy, occ).cpu for s in group])
        assert services_cpu(retired, group, svc, alive, cpu) == want
