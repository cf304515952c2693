"""Overload probes of several services run as one group per period: each service's own pods, exact times.

Hand-computed: ``api`` has 2 replicas x 2 workers x 100 ms = 20 requests/s each; at 100/s
(50/s per replica) its backlog grows by 30/s per replica, so from the first run on
(t = 5 s, 150 queued) a probe waits ``(queued + 1) x 100 ms / 2`` > 1 s and times out.
Runs at 5, 10 and 15 s fail: with ``failureThreshold: 3`` both replicas leave the set at
exactly t = 15 s (readiness), or are told to stop then (liveness). ``web``, probed in the same
group (same period), serves 10/s on 4 x 8 workers x 5 ms: no queue, never fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from devopsim import simulate

PROBE = {"periodSeconds": 5, "failureThreshold": 3, "timeoutSeconds": 1}


def _scenario(plane: str, kind: str) -> dict[str, Any]:
    return {
        "name": "groups",
        "duration": "1m",
        "seed": 9,
        "plane": plane,
        "traffic": {
            "rate": "110/s",
            "classes": [
                {"name": "heavy", "entry": "api.get", "share": 100 / 110},
                {"name": "light", "entry": "web.get", "share": 10 / 110},
            ],
        },
        "services": {
            "web": {
                "replicas": 4,
                "concurrency": 8,
                f"{kind}Probe": dict(PROBE),
                "endpoints": {"get": {"timeout": "30s", "steps": [{"work": "const(5ms)"}]}},
            },
            "api": {
                "replicas": 2,
                "concurrency": 2,
                f"{kind}Probe": dict(PROBE),
                "endpoints": {"get": {"timeout": "30s", "steps": [{"work": "const(100ms)"}]}},
            },
        },
    }


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_overloaded_service_leaves_the_set_at_the_third_failed_run(plane: str) -> None:
    r = simulate(_scenario(plane, "readiness"))
    gone = [e for e in r.events if e["kind"] == "pod.not_ready"]
    first = [e for e in gone if e["t"] == min(x["t"] for x in gone)]
    assert first[0]["t"] == 15.0
    assert sorted(e["service"] for e in first) == ["api", "api"]
    assert {e["service"] for e in gone} == {"api"}  # web, in the same group, never fails
    assert r.summary["pods"]["readiness_failures"] == len(gone)


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_overloaded_service_is_restarted_at_the_third_failed_run(plane: str) -> None:
    r = simulate(_scenario(plane, "liveness"))
    # The kill is requested at the third failed run; the container stops once its work is done.
    stops = [e for e in r.events if e["kind"] == "pod.container_stopping"]
    assert stops and all(e["reason"] == "Liveness" for e in stops)
    first = [e for e in stops if e["t"] == min(x["t"] for x in stops)]
    assert first[0]["t"] == 15.0 and len(first) == 2
    assert {e["pod"].split("-")[0] for e in stops} == {"api"}
    exits = [e for e in r.events if e["kind"] == "pod.container_exit"]
    assert r.summary["pods"]["liveness_kills"] == len(exits)


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_a_replica_out_of_the_set_drains_its_queue_before_it_is_ready_again(plane: str) -> None:
    """Out of the set, a replica gets no arrivals but still serves what it had queued.

    At 15 s each ``api`` replica holds 30/s x 15 s = 450 requests; it drains at 2 / 100 ms =
    20/s. A probe passes once ``(queued + 1) x 100 ms / 2 <= 1 s``, i.e. 19 queued, at
    15 + (450 - 19) / 20 = 36.55 s; the next run is at 40 s (successThreshold 1): Ready then.
    (The flow plane once dropped the whole backlog when arrivals stopped: Ready at 20 s.)
    """
    sc = _scenario(plane, "readiness")
    sc["duration"] = "45s"
    r = simulate(sc)
    back = [e["t"] for e in r.events if e["kind"] == "pod.ready" and e["service"] == "api" and e["t"] > 15.0]
    assert back and min(back) == 40.0
