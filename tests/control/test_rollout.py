"""Deployment rollouts against the documented rules (reference/SEMANTICS.md section 2).

The invariants are checked on the pod events of the run (created, ready, terminating),
not on the controller's own bookkeeping.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from devopsim import simulate
from devopsim.control.rollout import resolve_fenceposts


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "expected"),
    [
        ("25%", "25%", 10, (3, 2)),  # ceil(2.5) = 3, floor(2.5) = 2 (the documented example)
        ("25%", "25%", 3, (1, 0)),  # ceil(0.75) = 1, floor(0.75) = 0
        ("0%", "10%", 5, (0, 1)),  # floor(0.5) = 0 and surge 0: unavailable becomes 1
        (1, "100%", 4, (1, 4)),
        (0, 5, 3, (0, 3)),  # capped at replicas
    ],
)
def test_resolve_fenceposts(surge: Any, unavailable: Any, replicas: int, expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, replicas) == expected


def _scenario(
    strategy: dict[str, Any], replicas: int = 10, plane: str = "flow", **svc: Any
) -> dict[str, Any]:
    return {
        "name": "rollout",
        "duration": "6m",
        "seed": 1,
        "plane": plane,
        "traffic": {"rate": "100/s", "classes": [{"name": "c", "entry": "api.get"}]},
        "services": {
            "api": {
                "replicas": replicas,
                "concurrency": 16,
                "startup": "10s",
                "terminationGracePeriodSeconds": 5,
                "endpoints": {"get": {"steps": [{"work": "exp(10ms)"}]}},
                "strategy": strategy,
                **svc,
            }
        },
        "timeline": [
            {"at": "1m", "deploy": {"service": "api", "version": "v2", "changes": {"latencyFactor": 1.2}}}
        ],
    }


def _replay(events: list[dict[str, Any]]) -> list[tuple[float, int, int, dict[str, str]]]:
    """(t, ready pods, pods not terminating, version of each such pod) after each instant."""
    version: dict[str, str] = {}
    ready: set[str] = set()
    active: set[str] = set()
    out = []
    for i, e in enumerate(events):
        k = e["kind"]
        if k == "pod.created":
            active.add(e["pod"])
            version[e["pod"]] = e["version"]
        elif k == "pod.ready":
            ready.add(e["pod"])
        elif k == "pod.terminating":
            active.discard(e["pod"])
            ready.discard(e["pod"])
        if i + 1 == len(events) or events[i + 1]["t"] != e["t"]:
            out.append((e["t"], len(ready), len(active), {p: version[p] for p in active}))
    return out


GRID = [
    (s, u, n)
    for n in (3, 10)
    for s in (0, 1, "25%", "50%")
    for u in (0, 1, "25%", "100%")
    if not (s == 0 and u == 0)
]


def _pct(v: Any, n: int, up: bool) -> int:
    if isinstance(v, int):
        return v
    x = float(v.rstrip("%")) * n / 100
    return math.ceil(x) if up else math.floor(x)


@pytest.mark.parametrize(("surge", "unavailable", "n"), GRID, ids=[f"{s}-{u}-{n}" for s, u, n in GRID])
def test_rolling_update_invariants(surge: Any, unavailable: Any, n: int) -> None:
    st = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    r = simulate(_scenario(st, replicas=n))
    s, u = _pct(surge, n, True), _pct(unavailable, n, False)
    if s == 0 and u == 0:
        u = 1
    u = min(u, n)
    states = _replay(r.events)
    for t, ready, active, _ in states:
        if t >= 60.0:
            assert ready >= n - u, (t, ready)
            assert active <= n + s, (t, active)
    _t_end, ready, active, versions = states[-1]
    assert ready == n and active == n and set(versions.values()) == {"v2"}
    [dep] = r.summary["deployments"]
    assert dep["outcome"] == "complete" and dep["to_version"] == "v2"


def test_recreate_shows_the_outage() -> None:
    r = simulate(_scenario({"type": "Recreate"}))
    states = _replay(r.events)
    # Old pods go first; the new ones are created only once every old pod is gone.
    gap = [t for t, ready, _, _ in states if t >= 60.0 and ready == 0]
    assert gap and min(gap) == 60.0
    [dep] = r.summary["deployments"]
    # 100/s hit no ready pod from 60 s until the new pods are ready 10 s after creation.
    assert r.summary["classes"]["c"]["errors"]["unavailable"] > 100 * 9
    assert dep["duration_s"] >= 10.0


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_zero_unavailable_rolling_update_serves_everyone(plane: str) -> None:
    st = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    r = simulate(_scenario(st, replicas=3, plane=plane))
    assert r.summary["classes"]["c"]["errors"]["unavailable"] == 0
    assert r.summary["deployments"][0]["outcome"] == "complete"


def test_rollback_restores_the_previous_revision() -> None:
    sc = _scenario({"type": "RollingUpdate"})
    sc["timeline"].append({"at": "3m", "rollback": {"service": "api"}})
    r = simulate(sc)
    deps = r.summary["deployments"]
    assert [(d["kind"], d["to_version"], d["revision"]) for d in deps] == [
        ("deploy", "v2", 2),
        ("rollback", "v1", 3),
    ]
    assert set(_replay(r.events)[-1][3].values()) == {"v1"}
    dora = r.summary["dora"]
    assert dora["deployments"] == 1 and dora["change_failure_rate"] == 1.0
    # restored when the rollback's rollout completed: from 60 s to at least 180 s + 10 s start-up
    assert dora["mean_time_to_restore_s"] >= 130.0


def test_progress_deadline_is_reported_not_rolled_back() -> None:
    st = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    r = simulate(_scenario(st, replicas=2, progressDeadlineSeconds=5, startup="30s"))
    kinds = [e["kind"] for e in r.events]
    assert "rollout.progress_deadline_exceeded" in kinds
    assert "rollback" not in kinds
    assert r.summary["deployments"][0]["outcome"] == "complete"
