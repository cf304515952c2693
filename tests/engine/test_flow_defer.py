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
from devopsim.traffic.generator import TrafficGenerator

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


def test_every_deferred_piece_is_in_the_band_and_the_horizon_is_extended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A piece is deferred only where its traffic is within 0.5 % of the last tick's (else the
    # replay would count it at the wrong rates). Past the first quiet horizon, the horizon is
    # extended by what is left of the band, so far fewer pieces are checked one by one, and
    # the run is the same, bit for bit, as with piece-by-piece checks only.
    real = flow_plane.FlowPlane._quiet_ahead
    worst: list[float] = []
    checks: list[int] = []

    def spy(self: Any, t_end: float) -> bool:
        t0 = self.now if self._def_from is None else self._def_to
        ok = real(self, t_end)
        if ok and t_end > t0:
            lam = self.traffic.expected(t0, t_end) / (t_end - t0)
            worst.append(float(np.max(np.abs(lam - self._last_lam) / np.abs(self._last_lam))))
        return ok

    real_smooth = TrafficGenerator.smooth

    def count(self: TrafficGenerator, t0: float, t1: float) -> bool:
        checks.append(1)
        return real_smooth(self, t0, t1)

    monkeypatch.setattr(flow_plane.FlowPlane, "_quiet_ahead", spy)
    monkeypatch.setattr(TrafficGenerator, "smooth", count)
    got = simulate(SCENARIO).summary
    extended = len(checks)
    assert len(worst) > 1000
    assert max(worst) <= 0.005 + 1e-12
    checks.clear()
    monkeypatch.setattr(TrafficGenerator, "total_rate", lambda self, t: None)  # no extension
    ref = simulate(SCENARIO).summary
    assert got == ref
    assert extended < 0.7 * len(checks)


def test_total_rate_is_the_rate_of_the_classes_together() -> None:
    from devopsim.engine.streams import Streams
    from devopsim.traffic.patterns import parse_pattern

    gen = TrafficGenerator(["a", "b"], [0.25, 0.75], Streams(1), clock0=3600.0)
    gen.set_pattern(parse_pattern("diurnal(min=100/s, max=900/s, peak=20:00)"), 0.0)
    for t in (0.0, 5_000.0, 40_000.0):
        h = 1e-3
        assert gen.total_rate(t) == pytest.approx(float(gen.expected(t, t + h).sum()) / h, rel=1e-5)
    gen.set_class_pattern(0, parse_pattern("10/s"), 100.0)  # a class on its own: no total to speak of
    assert gen.total_rate(200.0) is None
