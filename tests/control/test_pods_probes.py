"""Probes, start-up and crash loops against hand-computed Kubernetes timings.

Kubernetes' rules (reference/SEMANTICS.md 2.6, kubelet docs): a probe first runs
``initialDelaySeconds`` after the container starts, then every ``periodSeconds``;
readiness needs ``successThreshold`` consecutive successes, liveness kills after
``failureThreshold`` consecutive failures; a startup probe holds the others back; a
container that exits is restarted after 10 s, 20 s, 40 s, ... capped at 300 s, reset
after 10 minutes of running. Every expected time below is worked out by hand from
those rules, for a pod created by a timeline ``scale`` at t = 60 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from devopsim import simulate
from devopsim.control.probes import plan
from devopsim.scenario.schema import Service

PLANES = ["flow", "request"]


def _scenario(
    plane: str = "flow", duration: str = "5m", timeline: list[Any] | None = None, **svc: Any
) -> dict[str, Any]:
    return {
        "name": "probes",
        "duration": duration,
        "seed": 3,
        "plane": plane,
        "traffic": {"rate": "20/s", "classes": [{"name": "c", "entry": "api.get"}]},
        "services": {
            "api": {
                "replicas": 1,
                "concurrency": 8,
                "endpoints": {"get": {"steps": [{"work": "exp(5ms)"}]}},
                **svc,
            }
        },
        "timeline": timeline
        if timeline is not None
        else [{"at": "1m", "scale": {"service": "api", "replicas": 2}}],
    }


def _new_pod_events(r: Any, kind: str) -> list[dict[str, Any]]:
    created = [e["pod"] for e in r.events if e["kind"] == "pod.created" and e["t"] > 0]
    return [e for e in r.events if e["kind"] == kind and e.get("pod") in created]


@pytest.mark.parametrize("plane", PLANES)
def test_no_probe_ready_when_process_is_up(plane: str) -> None:
    r = simulate(_scenario(plane, startup="12s"))
    [ready] = _new_pod_events(r, "pod.ready")
    assert ready["t"] == pytest.approx(72.0)  # 60 + startup 12


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        # runs at 65, 75, 85...; the process is up at 72: first success at 75
        ({"initialDelaySeconds": 5, "periodSeconds": 10, "failureThreshold": 3}, 75.0),
        # successThreshold 2: successes at 75 and 85
        ({"initialDelaySeconds": 5, "periodSeconds": 10, "successThreshold": 2}, 85.0),
        # defaults (delay 0, period 10): runs at 60, 70, 80: first success at 80
        ({}, 80.0),
        # a run exactly when the process comes up succeeds: 60 + 12 = 72
        ({"initialDelaySeconds": 12, "periodSeconds": 10}, 72.0),
    ],
)
@pytest.mark.parametrize("plane", PLANES)
def test_readiness_probe_timing(plane: str, probe: dict[str, Any], expected: float) -> None:
    r = simulate(_scenario(plane, startup="12s", readinessProbe=probe))
    [ready] = _new_pod_events(r, "pod.ready")
    assert ready["t"] == pytest.approx(expected)


@pytest.mark.parametrize("plane", PLANES)
def test_liveness_kills_a_slow_starter_then_backs_off(plane: str) -> None:
    # startup 40 s, liveness delay 5, period 10, threshold 3: runs at 65, 75, 85 all fail
    # (process up at 100) -> killed at 85 = 60 + 5 + 2 x 10. Restart after 10 s at 95,
    # killed at 95 + 25 = 120; restart after 20 s at 140, killed at 165; then 40 s...
    live = {"initialDelaySeconds": 5, "periodSeconds": 10, "failureThreshold": 3}
    r = simulate(_scenario(plane, duration="10m", startup="40s", livenessProbe=live))
    exits = _new_pod_events(r, "pod.container_exit")
    assert [e["reason"] for e in exits] == ["Liveness"] * len(exits)
    expected, start, back = [], 60.0, 10.0
    while start + 25 <= 600:
        expected.append(start + 25)
        start = start + 25 + back
        back = min(2 * back, 300)
    assert [e["t"] for e in exits] == pytest.approx(expected)
    assert _new_pod_events(r, "pod.ready") == []
    assert r.summary["pods"]["liveness_kills"] == len(expected)


@pytest.mark.parametrize("plane", PLANES)
def test_startup_probe_protects_a_slow_starter(plane: str) -> None:
    # The same slow starter with a startup probe (period 10, threshold 30): it runs at
    # 60, 70, ..., succeeds at 100 once the process is up; liveness starts after it.
    r = simulate(
        _scenario(
            plane,
            startup="40s",
            startupProbe={"periodSeconds": 10, "failureThreshold": 30},
            livenessProbe={"initialDelaySeconds": 5, "periodSeconds": 10},
        )
    )
    assert _new_pod_events(r, "pod.container_exit") == []
    [ready] = _new_pod_events(r, "pod.ready")
    assert ready["t"] == pytest.approx(100.0)


def test_startup_probe_gives_up() -> None:
    # startup 100 s but the startup probe allows 5 + (3 - 1) x 10 = 25 s: killed at 85.
    r = simulate(_scenario(startup="100s", startupProbe={"initialDelaySeconds": 5, "periodSeconds": 10}))
    first = _new_pod_events(r, "pod.container_exit")[0]
    assert first["t"] == pytest.approx(85.0) and first["reason"] == "StartupProbe"


@pytest.mark.parametrize("plane", PLANES)
def test_crash_on_start_back_off_sequence(plane: str) -> None:
    # v2 crashes as soon as it is up (startup 0): exits at 60, then restarts after
    # 10, 20, 40, 80, 160, 300, 300 ... s (never ran 10 minutes, so no reset).
    deploy = {
        "at": "1m",
        "deploy": {"service": "api", "version": "v2", "changes": {"crashOnStart": True}},
    }
    r = simulate(
        _scenario(
            plane,
            duration="30m",
            timeline=[deploy],
            strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        )
    )
    backs = [e["back_off_s"] for e in r.events if e["kind"] == "pod.crash_loop_backoff"]
    exits = [e["t"] for e in r.events if e["kind"] == "pod.container_exit"]
    seq = [min(10.0 * 2**k, 300.0) for k in range(len(backs))]  # 10, 20, 40, 80, 160, 300, 300...
    assert backs == seq and len(backs) >= 8
    t, want = 60.0, []
    for b in backs:
        want.append(t)
        t += b
    assert exits == pytest.approx(want)
    # the old v1 pod keeps serving (maxUnavailable 0): no request fails for lack of a replica
    assert r.summary["pods"]["crashes"] == len(exits)
    old_ready = [e for e in r.events if e["kind"] == "pod.terminating"]
    assert old_ready == []


def test_plan_matches_the_formula() -> None:
    # time to detect a failure = initialDelaySeconds + failureThreshold x periodSeconds
    # (SEMANTICS 2.6) when counted from the first failing run one period earlier.
    svc = Service.model_validate(
        {
            "startup": 1000.0,
            "livenessProbe": {"initialDelaySeconds": 7, "periodSeconds": 4, "failureThreshold": 5},
            "endpoints": {"a": {"steps": [{"work": "exp(1ms)"}]}},
        }
    )
    p = plan(svc, 50.0)
    assert p.exit == pytest.approx(50 + 7 + (5 - 1) * 4)
    assert p.reason == "Liveness" and p.ready is None
