"""Quiet stretches simulated lazily on the flow plane (``FlowPlane.advance``).

Between two scrapes a platform with 5 s readiness probes asks the plane to advance three
times. In a quiet stretch the plane only notes the time and simulates the stretch as one
piece when someone reads or changes it; probes read ``queue_state``, which needs no
simulation. The reference is the same run with ``FlowPlane.defer = False``, which simulates
every advance as it comes.
"""

from typing import Any

import numpy as np
import pytest

from devopsim import simulate
from devopsim.engine.flow import plane as flow_plane

SCENARIO: dict[str, Any] = {
    "duration": "3h",
    "start": "2026-01-05T17:00:00Z",  # the steepest part of the day's rise
    "seed": 3,
    "plane": "flow",
    "monitoring": {"scrapeInterval": "15s"},
    "traffic": {
        "rate": "diurnal(min=100/s, max=900/s, peak=20:00)",
        "classes": [{"name": "page", "entry": "web.page"}],
    },
    "timeline": [{"at": "47m32s", "scale": {"service": "api", "replicas": 5}}],
    "services": {
        "web": {
            "replicas": 3,
            "concurrency": 16,
            "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}},
            "readinessProbe": {"periodSeconds": 5, "failureThreshold": 3},
            "endpoints": {"page": {"steps": [{"work": "exp(2ms)"}, {"call": "api.get"}]}},
            "autoscaler": {
                "kind": "hpa",
                "minReplicas": 3,
                "maxReplicas": 12,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 60},
                        },
                    }
                ],
            },
        },
        "api": {
            "replicas": 3,
            "concurrency": 8,
            "resources": {"requests": {"cpu": 8}},
            "endpoints": {"get": {"steps": [{"work": "lognormal(mean=5ms, cv=1)"}]}},
        },
    },
}


def _run(monkeypatch: pytest.MonkeyPatch, defer: bool) -> tuple[dict[str, Any], list[str]]:
    calls: list[str] = []
    real = flow_plane.FlowPlane._account

    def spy(self: Any, *args: Any) -> None:
        calls.append("account")
        real(self, *args)

    monkeypatch.setattr(flow_plane.FlowPlane, "defer", defer)
    monkeypatch.setattr(flow_plane.FlowPlane, "_account", spy)
    return simulate(SCENARIO).summary, calls


def test_deferred_quiet_stretches_give_the_same_run(monkeypatch: pytest.MonkeyPatch) -> None:
    ref, ref_calls = _run(monkeypatch, False)
    got, calls = _run(monkeypatch, True)
    r, g = ref["classes"]["page"], got["classes"]["page"]
    # Arrivals are the exact integral of the rate either way.
    assert g["requests"] == pytest.approx(r["requests"], rel=1e-9)
    assert g["ok"] == pytest.approx(r["ok"], rel=2e-3)
    for q in ("mean", "p50", "p99"):
        assert g["latency_s"][q] == pytest.approx(r["latency_s"][q], rel=0.01), q
    for s in ("web", "api"):
        assert got["services"][s]["utilization"] == pytest.approx(ref["services"][s]["utilization"], rel=5e-3)
        assert got["services"][s]["requests"] == pytest.approx(ref["services"][s]["requests"], rel=2e-3)
    # Three advances per scrape (two probes and the scrape): the quiet ones are counted once.
    windows = 3 * 3600 / 15
    assert len(ref_calls) > 2.5 * windows
    assert len(calls) < 1.6 * windows


def test_probes_read_the_queues_as_a_simulated_stretch_leaves_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whenever a probe reads the queues without simulating the deferred stretch, simulating
    # it first gives the same busy workers and queued requests.
    seen = []
    real = flow_plane.FlowPlane.queue_state

    def check(self: Any) -> tuple[np.ndarray, np.ndarray]:
        busy, qlen = (x.copy() for x in real(self))
        deferred = self._def_from is not None
        rp = self.replicas  # simulates the stretch
        np.testing.assert_array_equal(busy, rp.busy)
        np.testing.assert_array_equal(qlen, rp.qlen)
        seen.append(deferred)
        return rp.busy, rp.qlen

    monkeypatch.setattr(flow_plane.FlowPlane, "queue_state", check)
    simulate({**SCENARIO, "duration": "40m"})
    assert sum(seen) > 0.5 * len(seen)  # most probes came while a stretch was deferred


@pytest.mark.parametrize(
    "entry",
    [
        {"at": "20m7s", "traffic": {"rate": "400/s"}},  # between two scrapes, in a quiet stretch
        {"at": "20m7s", "fault": {"kind": "traffic-spike", "target": "get", "factor": 3, "duration": "52s"}},
    ],
)
def test_a_rate_change_between_scrapes_counts_the_stretch_before_it_at_the_old_rate(
    monkeypatch: pytest.MonkeyPatch, entry: dict[str, Any]
) -> None:
    sc = {
        "duration": "40m",
        "seed": 2,
        "plane": "flow",
        "monitoring": {"scrapeInterval": "15s"},
        "traffic": {"rate": "200/s", "classes": [{"name": "get", "entry": "api.get"}]},
        "timeline": [entry],
        "services": {
            "api": {
                "replicas": 2,
                "concurrency": 8,
                "resources": {"requests": {"cpu": 8}},
                "readinessProbe": {"periodSeconds": 5},
                "endpoints": {"get": {"steps": [{"work": "exp(5ms)"}]}},
            }
        },
    }
    got = {}
    for defer in (False, True):
        monkeypatch.setattr(flow_plane.FlowPlane, "defer", defer)
        got[defer] = simulate(sc).summary["classes"]["get"]["requests"]
    assert got[True] == pytest.approx(got[False], rel=1e-9, abs=0.5)
