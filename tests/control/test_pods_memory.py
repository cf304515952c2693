"""Memory leaks, OOM kills and readiness under overload.

Memory model (docs/control.md): working set = 0.6 x memory request (64 MiB without
one) + 256 KiB per request in service + leak x container uptime. The kernel kills the
container the moment it passes its limit, so with a leak alone the kill comes
``(limit - base) / leak`` after each container start (a hand-computed expectation);
restarts follow CrashLoopBackOff, whose delay resets after 10 minutes of running.
"""

from __future__ import annotations

from typing import Any

import pytest

from devopsim import simulate

MI = 1024**2


def _scenario(plane: str, leak: str | float, limit: str, duration: str = "20m", **svc: Any) -> dict[str, Any]:
    return {
        "name": "oom",
        "duration": duration,
        "seed": 5,
        "plane": plane,
        "traffic": {"rate": "20/s", "classes": [{"name": "c", "entry": "api.get"}]},
        "services": {
            "api": {
                "replicas": 1,
                "concurrency": 8,
                "resources": {"requests": {"memory": "100Mi"}, "limits": {"memory": limit}},
                "endpoints": {"get": {"steps": [{"work": "exp(5ms)"}]}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                **svc,
            }
        },
        "timeline": [
            {"at": "1m", "deploy": {"service": "api", "version": "v2", "changes": {"memoryLeak": leak}}}
        ],
    }


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_oom_kill_time_is_headroom_over_leak(plane: str) -> None:
    # base = 0.6 x 100 MiB = 60 MiB; limit 200 MiB; leak 1 MiB/s -> 140 s per container.
    # v2's pod starts at 60 and is Ready at once (startup 0): OOM at 200; back-off 10 s,
    # restart 210, OOM 350; back-off 20 s, restart 370, OOM 510; 40 s -> 550, OOM 690.
    r = simulate(_scenario(plane, "1Mi/s", "200Mi"))
    ooms = [e["t"] for e in r.events if e["kind"] == "pod.oom_killed"]
    headroom = (200 * MI - 0.6 * 100 * MI) / (1 * MI)
    assert headroom == pytest.approx(140.0)
    want, start, back = [], 60.0, 10.0
    while start + headroom <= 1200:
        want.append(start + headroom)
        start += headroom + back
        back = min(2 * back, 300.0)
    assert ooms == pytest.approx(want)
    assert r.summary["pods"]["oom_kills"] == len(want)
    assert r.summary["pods"]["services"]["api"]["oom_kills"] == len(want)


def test_back_off_resets_after_ten_minutes_running() -> None:
    # 140 MiB of headroom and a leak of 1 MiB per 11 s (a bare number is bytes/s): each
    # container runs 140 x 11 = 1540 s, over 10 minutes, so every restart waits 10 s again.
    r = simulate(_scenario("flow", MI / 11, "200Mi", duration="2h"))
    backs = [e["back_off_s"] for e in r.events if e["kind"] == "pod.crash_loop_backoff"]
    ooms = [e["t"] for e in r.events if e["kind"] == "pod.oom_killed"]
    assert len(backs) >= 3 and set(backs) == {10.0}
    assert ooms[0] == pytest.approx(60 + 1540.0, rel=1e-6)
    assert ooms[1] - ooms[0] == pytest.approx(10 + 1540.0, rel=1e-6)


def test_no_leak_no_oom() -> None:
    r = simulate(_scenario("flow", "0Mi/s", "200Mi"))
    assert r.summary["pods"]["oom_kills"] == 0


def test_leak_units() -> None:
    from devopsim.scenario.units import parse_size_rate

    assert parse_size_rate("60Mi/m") == pytest.approx(MI)
    assert parse_size_rate("3600Ki/h") == pytest.approx(1024.0)
    with pytest.raises(ValueError, match="size per time"):
        parse_size_rate("10Mi")


def _overload(plane: str, rate: str) -> dict[str, Any]:
    return {
        "name": "overload",
        "duration": "3m",
        "seed": 9,
        "plane": plane,
        "traffic": {"rate": rate, "classes": [{"name": "c", "entry": "api.get"}]},
        "services": {
            "api": {
                "replicas": 2,
                "concurrency": 2,
                "readinessProbe": {"periodSeconds": 5, "failureThreshold": 3, "timeoutSeconds": 1},
                "endpoints": {"get": {"timeout": "30s", "steps": [{"work": "const(100ms)"}]}},
            }
        },
    }


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_overloaded_replicas_fail_readiness(plane: str) -> None:
    # 2 replicas x 2 workers / 100 ms = 40/s capacity. At 100/s the queues grow by 30/s:
    # after a few seconds a probe waits behind more than 1 s of work (over 20 queued
    # requests per replica) and times out. Three failures in a row, 5 s apart: the first
    # pod leaves the set at the third probe run at the earliest (t = 15 s).
    r = simulate(_overload(plane, "100/s"))
    gone = [e for e in r.events if e["kind"] == "pod.not_ready"]
    assert gone, "an overloaded replica must fail its readiness probe"
    assert min(e["t"] for e in gone) >= 15.0
    assert all(e["reason"] == "Readiness probe failed" for e in gone)
    assert r.summary["pods"]["readiness_failures"] == len(gone)
    # out of the set, its queue drains, the probe passes again and the pod comes back
    back = [e for e in r.events if e["kind"] == "pod.ready" and e["t"] > min(x["t"] for x in gone)]
    assert back


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_light_load_passes_readiness(plane: str) -> None:
    r = simulate(_overload(plane, "10/s"))  # utilisation 25 %
    assert [e for e in r.events if e["kind"] == "pod.not_ready"] == []


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_overloaded_replicas_fail_liveness_and_restart(plane: str) -> None:
    # The same overload with an HTTP liveness probe instead: three timed-out runs 5 s
    # apart restart the container (what it holds fails), at the earliest at t = 15 s.
    data = _overload(plane, "100/s")
    api = data["services"]["api"]
    api["livenessProbe"] = api.pop("readinessProbe")
    r = simulate(data)
    exits = [e for e in r.events if e["kind"] == "pod.container_exit"]
    assert exits and all(e["reason"] == "Liveness" for e in exits)
    assert min(e["t"] for e in exits) >= 15.0
    assert r.summary["pods"]["liveness_kills"] == len(exits)
    tcp = _overload(plane, "100/s")
    tcp["services"]["api"]["livenessProbe"] = {"periodSeconds": 5, "tcpSocket": {"port": 8080}}
    del tcp["services"]["api"]["readinessProbe"]
    assert simulate(tcp).summary["pods"]["liveness_kills"] == 0  # a TCP connect does not queue
