"""A liveness kill honours the probe's ``terminationGracePeriodSeconds``, else the pod's.

External truth: SEMANTICS 2.6/2.7 (KEP-2238): a container killed for a failed liveness or
startup probe gets SIGTERM and the grace period of the probe when it sets one, else of the
pod; it is SIGKILLed when that ends. The overload below makes the liveness probe time out
(``timeoutSeconds: 1``): the probe waited more than 1 s behind the replica's queue, so the
replica holds more than 1 s of work for its 2 workers and cannot drain it in 1 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from devopsim import simulate


def _overload(plane: str, probe_grace: int | None, pod_grace: int = 30) -> dict[str, Any]:
    live: dict[str, Any] = {"periodSeconds": 5, "failureThreshold": 3, "timeoutSeconds": 1}
    if probe_grace is not None:
        live["terminationGracePeriodSeconds"] = probe_grace
    return {
        "name": "grace",
        "duration": "2m",
        "seed": 9,
        "plane": plane,
        "traffic": {"rate": "100/s", "classes": [{"name": "c", "entry": "api.get"}]},
        "services": {
            "api": {
                "replicas": 2,
                "concurrency": 2,
                "terminationGracePeriodSeconds": pod_grace,
                "livenessProbe": live,
                "endpoints": {"get": {"timeout": "30s", "steps": [{"work": "const(100ms)"}]}},
            }
        },
    }


def _stops_and_exits(r: Any) -> list[tuple[float, float, float]]:
    """(stopping t, grace, exit t) per liveness kill, in order."""
    out = []
    exits = [e for e in r.events if e["kind"] == "pod.container_exit"]
    for s in (e for e in r.events if e["kind"] == "pod.container_stopping"):
        x = next(e for e in exits if e["pod"] == s["pod"] and e["t"] >= s["t"])
        out.append((s["t"], s["grace_s"], x["t"]))
    return out


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_probe_grace_overrides_the_pods(plane: str) -> None:
    r = simulate(_overload(plane, probe_grace=1, pod_grace=600))
    kills = _stops_and_exits(r)
    assert kills
    for t, grace, exit_t in kills:
        assert grace == 1
        assert exit_t == pytest.approx(t + 1.0)  # more than 1 s of work held: SIGKILL at the end


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_zero_grace_kills_at_once(plane: str) -> None:
    r = simulate(_overload(plane, probe_grace=0))
    kills = _stops_and_exits(r)
    assert kills and all(exit_t == t for t, _, exit_t in kills)


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_pod_grace_lets_the_container_drain(plane: str) -> None:
    # 30 s of grace: out of the set, the replica finishes its queue (more than 1 s of work,
    # far less than 30 s at 20 requests/s per replica) and exits before the SIGKILL.
    r = simulate(_overload(plane, probe_grace=None, pod_grace=30))
    kills = _stops_and_exits(r)
    assert kills
    for t, grace, exit_t in kills:
        assert grace == 30
        assert t + 1.0 < exit_t < t + 30.0
    killed = [e for e in r.events if e["kind"] == "pod.not_ready"]
    assert len(killed) == 0  # leaving the set on SIGTERM is not a readiness failure
